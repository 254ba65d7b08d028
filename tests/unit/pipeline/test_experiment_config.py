"""Experiment configs and data: validation up front, overrides, dry runs, loaders and splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, write_jsonl
from semrl.data.loading import load_table, require_columns
from semrl.data.splits import split_rows
from semrl.errors import UserError
from semrl.experiment_config import load_experiment

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "configs" / "examples" / "tiny-bo-zh.yaml"
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"


def config_with(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["data"]["train"] = str(BO_ZH)
    if data.get("eval", {}).get("suite"):
        data["eval"]["suite"] = str(EXAMPLE.parent / data["eval"]["suite"])
    for key, value in changes.items():
        node = data
        parts = key.split("__")
        for part in parts[:-1]:
            node = node[part]
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def assert_exit_2(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(line) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in line[0], line[0]


EXPERIMENTS = sorted(
    p for p in (ROOT / "configs" / "paper").glob("*.yaml") if not p.name.endswith("suite.yaml")
) + sorted((ROOT / "configs" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    if "rm-transfer" in path.name:
        from semrl.studies.rm.config import load_transfer_config

        config = load_transfer_config(path)
        assert config.data.files and all(Path(f.path).is_file() for f in config.data.files)
        return
    exp = load_experiment(path)
    assert exp.arms and exp.name


RECOMMENDED = sorted((ROOT / "configs" / "paper").glob("*-recommended.yaml"))


@pytest.mark.parametrize("path", RECOMMENDED, ids=lambda p: p.name)
def test_recommended_recipe_is_the_paper_recipe_with_kl_and_dev_selection(path):
    """docs/concepts/rewards.md recommends the paper's recipe plus two mechanisms, and nothing else."""
    exp = load_experiment(path)
    paper = load_experiment(path.with_name(path.name.replace("-recommended", "")))
    assert exp.grpo.beta == 0.04 and paper.grpo.beta == 0.0
    assert exp.grpo.select is not None and exp.grpo.select.metric != "sim"  # not the training reward
    assert exp.grpo.model_copy(update={"beta": 0.0, "select": None}) == paper.grpo
    for section in ("model", "task", "data", "encoder", "rewards", "sft", "decoding"):
        assert getattr(exp, section) == getattr(paper, section), section
    assert [a.name for a in exp.arms] == ["semantic_rl", "strong_sft"]


def test_shipped_suite_loads():
    from semrl.evaluate.suite import load_suite

    suite, items = load_suite(ROOT / "configs" / "examples" / "general" / "suite.yaml")
    assert [b.type for b in suite.benchmarks] == ["qa", "qa", "mc", "nll", "kl"]
    assert all(items[b.name] for b in suite.benchmarks)


def test_paper_presets_carry_the_published_settings():
    exp = load_experiment(ROOT / "configs" / "paper" / "bo-zh-mt.yaml")
    assert exp.model.path == "Qwen/Qwen3-4B"
    assert (exp.model.lora.r, exp.model.lora.alpha, exp.model.lora.dropout) == (64, 128, 0.05)
    assert (exp.sft.learning_rate, exp.sft.epochs, exp.sft.examples, exp.sft.scheduler) == (
        2e-5,
        2,
        5000,
        "cosine",
    )
    assert exp.sft.batch_size * exp.sft.grad_accum == 32
    assert (
        exp.grpo.learning_rate,
        exp.grpo.num_generations,
        exp.grpo.temperature,
        exp.grpo.top_p,
        exp.grpo.epochs,
    ) == (5e-7, 8, 0.8, 0.9, 1)
    weights = {spec.type: spec.weight for spec in exp.rewards.rewards}
    assert weights == {"semantic": 1.5, "language": 1.0}


def test_overrides_are_validated_like_the_file(tmp_path):
    exp = load_experiment(config_with(tmp_path), ["grpo.learning_rate=1e-6", "arms.1.recipe=sft", "seed=7"])
    assert exp.grpo.learning_rate == 1e-6 and exp.arms[1].recipe == "sft" and exp.seed == 7
    with pytest.raises(UserError, match="grpo.lerning_rate"):
        load_experiment(config_with(tmp_path), ["grpo.lerning_rate=1e-6"])
    with pytest.raises(UserError, match="key=value"):
        load_experiment(config_with(tmp_path), ["grpo.learning_rate"])


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = run_cli("run", str(config_with(tmp_path)), "--out", str(out), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "semantic_rl" in result.stdout and "strong_sft" in result.stdout and "first 48" in result.stdout
    assert not out.exists()


BAD_CONFIGS = {
    "unknown_key": ({"sft__epochz": 3}, ["exp.yaml", "sft.epochz", "unknown key"]),
    "wrong_type": ({"grpo__num_generations": "eight"}, ["exp.yaml", "grpo.num_generations"]),
    "bad_recipe": ({"arms": [{"name": "x", "recipe": "rlhf"}]}, ["exp.yaml", "arms.0.recipe"]),
    "bad_arm_override": (
        {"arms": [{"name": "x", "recipe": "two_stage", "sft": {"epochz": 1}}]},
        ["exp.yaml", "arms.x.sft", "epochz"],
    ),
    "no_rewards_for_grpo": ({"rewards": None}, ["exp.yaml", "give `rewards:`"]),
    "two_stage_without_n": ({"sft__examples": None}, ["sft.examples"]),
    "missing_data_file": ({"data__train": "/no/such/train.jsonl"}, ["/no/such/train.jsonl", "not found"]),
    "missing_model_path": ({"model": {"path": "/no/such/model"}}, ["/no/such/model", "does not exist"]),
    "model_path_and_tiny": ({"model": {"path": "/x", "tiny": {}}}, ["exp.yaml", "exactly one"]),
    "unknown_data_role": ({"data__columns": {"target": "reference"}}, ["data.columns", "target"]),
    "bad_reward_in_arm": (
        {
            "arms": [
                {
                    "name": "x",
                    "recipe": "two_stage",
                    "rewards": {"rewards": [{"type": "bleu", "weight": 1, "lang": "zh", "n": 4}]},
                }
            ]
        },
        ["exp.yaml", "arms.0.rewards"],
    ),
    "reference_free_needs_source_reward": (
        {"arms": [{"name": "trr", "recipe": "train_reinforce_recover"}]},
        ["arms.trr", "reference-free"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_and_writes_nothing(tmp_path, case):
    changes, fragments = BAD_CONFIGS[case]
    out = tmp_path / "run"
    result = run_cli("run", str(config_with(tmp_path, **changes)), "--out", str(out))
    assert_exit_2(result, *fragments)
    assert not out.exists(), "nothing may be written for a config that fails validation"


def test_bad_data_rows_are_listed_with_lines(tmp_path):
    rows = [json.loads(line) for line in BO_ZH.read_text(encoding="utf-8").splitlines()]
    rows[3]["reference"] = "  "
    del rows[7]["source"]
    rows[9]["source"] = 42
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    out = tmp_path / "run"
    result = run_cli("run", str(config_with(tmp_path, data__train=str(bad))), "--out", str(out))
    assert_exit_2(
        result, "bad.jsonl", "line 4", "empty", "line 8", "missing column 'source'", "line 10", "text"
    )
    assert not out.exists()


def test_existing_run_needs_resume(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"stages": {}}', encoding="utf-8")
    result = run_cli("run", str(config_with(tmp_path)), "--out", str(out))
    assert_exit_2(result, "--resume")


def test_loaders_read_every_format(tmp_path):
    (tmp_path / "a.csv").write_text('source,reference\n"ཀ་ཁ","甲,乙"\nཁ,乙\n', encoding="utf-8")
    (tmp_path / "a.tsv").write_text("source\treference\nཀ\t甲\n", encoding="utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"source": ["ཀ", "ཁ"], "reference": ["甲", "乙"]}), tmp_path / "a.parquet")
    assert load_table(str(tmp_path / "a.csv"))[0]["reference"] == "甲,乙"
    assert load_table(str(tmp_path / "a.tsv"))[0]["__line__"] == 2
    assert [r["source"] for r in load_table(str(tmp_path / "a.parquet"))] == ["ཀ", "ཁ"]
    (tmp_path / "b.csv").write_text("source,reference\nx,y,z\n", encoding="utf-8")
    with pytest.raises(UserError, match="b.csv: line 2: 3 fields"):
        load_table(str(tmp_path / "b.csv"))
    with pytest.raises(UserError, match="not loadable as a datasets id"):
        load_table("nobody/no-such-dataset")
    with pytest.raises(UserError, match="missing column 'reference'"):
        require_columns([{"source": "x", "__line__": 1}], "f.jsonl", {"reference": "reference"})


def test_splits_are_deterministic():
    rows = list(range(100))
    assert split_rows(rows, 0.1, 0) == split_rows(rows, 0.1, 0)
    train, test = split_rows(rows, 0.1, 0)
    assert len(test) == 10 and sorted(train + test) == rows
    assert split_rows(rows, 0.1, 1) != split_rows(rows, 0.1, 0)
    assert len(split_rows(rows, 7, 0)[1]) == 7


def test_few_shot_and_column_mapping(tmp_path):
    from semrl.data.task_rows import load_task_rows

    exp = load_experiment(
        config_with(tmp_path, data__few_shot=5, data__columns={"source": "reference", "reference": "source"})
    )
    train, test = load_task_rows(exp)
    assert len(train) == 5 and len(test) == 12
    assert "\u0f00" <= train[0]["reference"][0] <= "\u0fff"  # roles swapped: the target is Tibetan
    again, _ = load_task_rows(exp)
    assert again == train


def test_model_tiny_command_builds_loadable_models(tmp_path):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(BO_ZH.read_text(encoding="utf-8"), encoding="utf-8")
    for kind in ("lm", "classifier", "encoder"):
        result = run_cli(
            "model",
            "tiny",
            "--out",
            str(tmp_path / kind),
            "--corpus",
            str(corpus),
            "--kind",
            kind,
            "--size",
            "tiny",
        )
        assert result.returncode == 0, result.stderr
        files = [p.name for p in (tmp_path / kind).rglob("*") if p.is_file()]
        assert any(name.endswith(".safetensors") for name in files)  # safe format only, never pickle
        assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files), files
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "lm")
    assert tokenizer.pad_token and tokenizer.eos_token and tokenizer.chat_template
    text = "ཨ་མས་ཇ་འཐུང་གི་འདུག 妈妈在喝茶。"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level BPE round-trips any script
    messages = [{"role": "user", "content": "ཀ"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).endswith(
        "<|assistant|>"
    )
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    assert lm.config.model_type == "llama" and lm.config.pad_token_id == tokenizer.pad_token_id
    assert (tmp_path / "lm" / "model.safetensors").exists()
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path / "classifier").config.num_labels == 1
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(tmp_path / "encoder"), device="cpu").encode(["ཀ"]).shape == (1, 32)
    bad = run_cli("model", "tiny", "--out", str(tmp_path / "x"), "--size", "huge")
    assert bad.returncode == 2 and "--size" in bad.stderr


def test_report_to_must_be_installed(tmp_path):
    result = run_cli(
        "run", str(config_with(tmp_path, report_to="wandb")), "--out", str(tmp_path / "run"), "--dry-run"
    )
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        assert_exit_2(result, "report_to", "wandb")
    else:
        assert result.returncode == 0
