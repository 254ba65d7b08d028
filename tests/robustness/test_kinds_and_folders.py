"""Through the real CLI: models of the wrong kind, names looked up late, symlink loops, and
the run folder (`--out` a file, `--resume` or `--out` on someone's own folder) are refused with exit 2,
one line naming the field or path, no traceback, and nothing written (files byte-for-byte unchanged)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import BO_ZH, cli_in_process, experiment, stderr_lines

RL = {"rewards": {"rewards": [{"type": "language", "lang": "zh"}]}}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
    }


def refused(result, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def dry_run(tmp_path: Path, config: Path, *extra: str):
    before = snapshot(tmp_path)
    result = cli_in_process("run", str(config), "--dry-run", "--out", str(tmp_path / "run"), *extra)
    if result.returncode == 2:
        assert snapshot(tmp_path) == before, "a refused dry run wrote something"
    return result


# ---- models of the right kind -----------------------------------------------------------------------


def test_causal_lm_as_reward_model_is_refused_unless_a_new_head_is_asked_for(tmp_path, tiny_lm):
    rewards = {"rewards": [{"type": "reward_model", "model": str(tiny_lm)}]}
    config = experiment(tmp_path, rewards=rewards, arms=[{"name": "rl", "recipe": "grpo"}])
    refused(
        dry_run(tmp_path, config),
        "rewards.0.model: ",
        str(tiny_lm),
        "not a sequence classifier",
        "init_head: true",
    )
    rewards["rewards"][0]["init_head"] = True
    config = experiment(tmp_path, rewards=rewards, arms=[{"name": "rl", "recipe": "grpo"}])
    result = dry_run(tmp_path, config)
    assert result.returncode == 0, result.stderr
    assert "NEW score head with random weights" in result.stderr


def test_classifier_with_two_labels_is_not_a_reward_model(tmp_path, tiny_classifier):
    two = shutil.copytree(tiny_classifier, tmp_path / "two_labels")
    config_json = json.loads((two / "config.json").read_text(encoding="utf-8"))
    config_json["id2label"] = {"0": "bad", "1": "good"}
    config_json["label2id"] = {"bad": 0, "good": 1}
    (two / "config.json").write_text(json.dumps(config_json), encoding="utf-8")
    config = experiment(
        tmp_path,
        rewards={"rewards": [{"type": "reward_model", "model": str(two)}]},
        arms=[{"name": "rl", "recipe": "grpo"}],
    )
    refused(dry_run(tmp_path, config), "rewards.0.model: ", "a classifier with 2 labels")


def test_sentence_encoder_as_policy_is_refused(tmp_path, encoder_folder):
    config = experiment(tmp_path, model={"path": str(encoder_folder)})
    refused(
        dry_run(tmp_path, config),
        "model.path: ",
        str(encoder_folder),
        "a sentence encoder",
        "not a causal language model",
    )


def test_causal_lm_as_encoder_is_refused(tmp_path, tiny_lm):
    config = experiment(tmp_path, eval={"encoder": str(tiny_lm)})
    refused(dry_run(tmp_path, config), "eval.encoder: ", "LlamaForCausalLM", "not a sentence encoder")
    config = experiment(
        tmp_path,
        rewards={"rewards": [{"type": "semantic", "encoder": str(tiny_lm)}]},
        arms=[{"name": "rl", "recipe": "grpo"}],
    )
    refused(dry_run(tmp_path, config), "rewards.0.encoder: ", "not a sentence encoder")


def test_lora_targets_are_matched_against_the_model_on_the_meta_device(tmp_path, tiny_lm):
    lora = {"r": 2, "alpha": 4, "target_modules": ["q_proj", "query"]}
    refused(
        dry_run(tmp_path, experiment(tmp_path, model={"path": str(tiny_lm), "lora": lora})),
        "model.lora.target_modules: 'query' matches no module",
        "q_proj",
    )
    lora["target_modules"] = r".*\.attention\.dense"  # a regex, as peft reads a string
    refused(
        dry_run(tmp_path, experiment(tmp_path, model={"path": str(tiny_lm), "lora": lora})),
        "model.lora.target_modules: ",
        "matches no module",
    )
    lora["target_modules"] = ["self_attn"]  # a module, but not a layer LoRA can adapt
    refused(
        dry_run(tmp_path, experiment(tmp_path, model={"path": str(tiny_lm), "lora": lora})),
        "'self_attn' (LlamaAttention) is not a layer LoRA can adapt",
    )
    lora["target_modules"] = ["q_proj", "v_proj"]
    assert dry_run(tmp_path, experiment(tmp_path, model={"path": str(tiny_lm), "lora": lora})).returncode == 0


# ---- names looked up late, unreadable paths ----------------------------------------------------------


def test_judge_template_with_an_unknown_field_is_refused(tmp_path, tiny_lm):
    judge = {"type": "lm", "model": str(tiny_lm), "template": "{prompt}\n1: {answer_a}\n2: {b}"}
    config = experiment(tmp_path, eval={"judge": judge, "compare": [["s", "base"]]})
    refused(dry_run(tmp_path, config), "eval.judge.template: unknown field {answer_a}", "{prompt}, {a}, {b}")


def test_reward_model_judge_must_be_a_reward_model(tmp_path, tiny_lm):
    config = experiment(
        tmp_path, eval={"judge": {"type": "reward_model", "model": str(tiny_lm)}, "compare": [["s", "base"]]}
    )
    refused(dry_run(tmp_path, config), "eval.judge.model: ", "not a sequence classifier")


def test_lang_metric_needs_a_known_script(tmp_path):
    config = experiment(
        tmp_path,
        task={"type": "translate", "source_lang": "bo", "target_lang": "xx"},
        eval={"metrics": ["chrf", "lang"]},
    )
    refused(dry_run(tmp_path, config), "eval.metrics: lang needs", "task.target_lang", "'xx'")


def loop(folder: Path, name: str) -> Path:
    a, b = folder / name, folder / f"{name}.other"
    os.symlink(b.name, a)
    os.symlink(a.name, b)
    return a


def test_symlink_loops_are_named(tmp_path):
    data = loop(tmp_path, "train.jsonl")
    refused(dry_run(tmp_path, experiment(tmp_path, data)), "data.train: ", str(data), "symlink loop")
    test = loop(tmp_path, "test.jsonl")
    config = experiment(tmp_path)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["data"] = {"train": str(BO_ZH), "test": str(test)}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    refused(dry_run(tmp_path, config), "data.test: ", str(test), "symlink loop")
    corpus = loop(tmp_path, "corpus.txt")
    config = experiment(tmp_path, model={"tiny": {"corpus": [str(corpus)]}})
    refused(dry_run(tmp_path, config), "model.tiny.corpus.0: ", str(corpus), "symlink loop")
    model = loop(tmp_path, "model")
    refused(dry_run(tmp_path, experiment(tmp_path, model={"path": str(model)})), str(model), "symlink loop")


# ---- the run folder -----------------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused_and_left_alone(tmp_path):
    config = experiment(tmp_path)
    target = tmp_path / "results.txt"
    target.write_bytes(b"the user's own notes\n")
    for extra in ([], ["--dry-run"], ["--resume"]):
        result = cli_in_process("run", str(config), "--out", str(target), *extra)
        refused(result, f"--out {target}: is a file")
        assert target.read_bytes() == b"the user's own notes\n"
    refused(cli_in_process("run", str(config), "--out", str(target / "run")), f"{target} is a file")
    assert target.read_bytes() == b"the user's own notes\n"


def test_resume_or_out_on_a_folder_that_is_not_a_run_is_refused_and_left_alone(tmp_path):
    config = experiment(tmp_path)
    folder = tmp_path / "mine"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_text('{"mine": 1}\n', encoding="utf-8")
    (folder / "config.yaml").write_text("my: own\n", encoding="utf-8")
    before = snapshot(folder)
    refused(
        cli_in_process("run", str(config), "--out", str(folder), "--resume"),
        f"--out {folder}: ",
        "not a semrl run",
    )
    assert snapshot(folder) == before
    refused(
        cli_in_process("run", str(config), "--out", str(folder)), "folder is not empty and is not a semrl run"
    )
    assert snapshot(folder) == before
    refused(
        cli_in_process("train", "sft", "--config", str(config), "--out", str(folder), "--resume"),
        "not a semrl run",
    )
    assert snapshot(folder) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(cli_in_process("run", str(config), "--out", str(empty), "--resume"), "nothing to resume")
    assert not any(empty.iterdir())


def test_arm_named_dotdot_writes_nothing_anywhere(tmp_path):
    config = tmp_path / "exp" / "exp.yaml"
    config.parent.mkdir()
    config.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "model": {"tiny": {}},
                "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
                "data": {"train": str(BO_ZH)},
                "arms": [{"name": "..", "recipe": "strong_sft"}],
            }
        ),
        encoding="utf-8",
    )
    before = snapshot(tmp_path)
    refused(
        cli_in_process("run", str(config), "--out", str(tmp_path / "exp" / "run")), "arms.0.name: ", "'..'"
    )
    assert snapshot(tmp_path) == before


# ---- the second line of defence: a name that slips past the first --------------------------------------


def test_a_path_that_resolves_outside_the_run_folder_is_never_written(tmp_path):
    """Names validated by the schema cannot be paths; a name that reaches the writers some other way
    (a caller that builds the config itself) or a symlink planted in the run folder is still refused."""
    from semrl.errors import UserError
    from semrl.pipeline.evaluation import _write
    from semrl.run_folder import Run

    run = Run(tmp_path / "run")
    run.root.mkdir()
    with pytest.raises(UserError, match="outside"):
        run.stage_dir("..", "sft")
    with pytest.raises(UserError, match="outside"):
        run.stage_dir("a/../../elsewhere", "sft")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", run.root / "rl")  # looks like an arm folder, points outside
    with pytest.raises(UserError, match="outside"):
        run.stage_dir("rl", "grpo")
    assert run.stage_dir("ok", "sft") == run.root / "ok" / "sft"
    with pytest.raises(UserError, match="outside"):
        _write(run.root / "eval", {"name": "../../escaped"})
    assert not list(tmp_path.glob("escaped*")) and not list((tmp_path / "elsewhere").iterdir())


def test_eval_name_and_transfer_names_are_not_paths(tmp_path, tiny_lm):
    config = experiment(tmp_path)
    refused(
        cli_in_process(
            "eval",
            "--model",
            str(tiny_lm),
            "--config",
            str(config),
            "--name",
            "../up",
            "--out",
            str(tmp_path / "eval"),
        ),
        "--name: ",
        "'../up'",
    )
    refused(
        cli_in_process(
            "transfer",
            "--config",
            str(config),
            "--from",
            f"../a={tiny_lm}",
            "--from",
            f"b={tiny_lm}",
            "--out",
            str(tmp_path / "t"),
        ),
        "--from",
        "'../a'",
    )
    assert not (tmp_path / "eval").exists() and not (tmp_path / "t").exists()


def test_hub_ids_are_checked_from_the_cached_config(tmp_path, monkeypatch):
    """A hub id whose config.json is in the Hugging Face cache is checked like a folder (no download)."""
    import huggingface_hub.constants

    from semrl.checks.models import check_encoder_kind, check_policy, check_scorer
    from semrl.errors import UserError

    def cached(repo: str, config: dict) -> None:
        folder = tmp_path / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("abc123", encoding="utf-8")
        (folder / "snapshots" / "abc123").mkdir(parents=True)
        (folder / "snapshots" / "abc123" / "config.json").write_text(json.dumps(config), encoding="utf-8")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    cached("org/encoder", {"architectures": ["BertModel"], "model_type": "bert"})
    cached("org/lm", {"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    with pytest.raises(
        UserError, match="model.path: org/encoder is a BertModel model, not a causal language model"
    ):
        check_policy("org/encoder", "model.path")
    check_policy("org/lm", "model.path")
    check_encoder_kind("org/encoder", "eval.encoder")
    with pytest.raises(
        UserError, match="rewards.0.model: org/lm is a LlamaForCausalLM model.*init_head: true"
    ):
        check_scorer("org/lm", "rewards.0.model")
    check_policy("org/not-cached", "model.path")  # nothing cached: left to the availability check
