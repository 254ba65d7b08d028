"""Model cards and `semrl export` through the real CLI on a short two-stage run (SFT 4 steps,
GRPO 2 steps on 1.5 semantic + 1.0 language, the general suite for the alignment tax): each
final/ gets a card the hub's parser reads, rewritten with the run's numbers once evaluated, and
the export folder loads with from_pretrained and generates what final/ generates."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import cli_in_process, run_cli, stderr_lines
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
SUITE = ROOT / "configs" / "examples" / "general" / "suite.yaml"


def card_config(tmp_path: Path) -> Path:
    config = {
        "name": "card",
        "seed": 0,
        "model": {
            "tiny": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_layers": 1,
                "num_heads": 2,
                "vocab_size": 400,
            }
        },
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 4},
        "rewards": {
            "rewards": [
                {"type": "semantic", "weight": 1.5, "encoder": "default", "tau": 0.1},
                {"type": "language", "weight": 1.0, "lang": "zh"},
            ]
        },
        "sft": {"examples": 8, "max_steps": 4, "batch_size": 4, "learning_rate": 1.0e-3, "logging_steps": 1},
        "grpo": {
            "max_steps": 2,
            "learning_rate": 1.0e-4,
            "num_generations": 2,
            "prompts_per_step": 2,
            "max_completion_length": 8,
            "logging_steps": 1,
        },
        "eval": {
            "enabled": False,
            "metrics": ["chrf", "sim", "lang"],
            "resamples": 20,
            "max_new_tokens": 8,
            "suite": str(SUITE),
        },
        "arms": [{"name": "rl", "recipe": "two_stage"}],
    }
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def card_run(tmp_path_factory) -> dict:
    """The run trained (cards before evaluation kept aside), then `semrl eval` and `semrl report`."""
    tmp = tmp_path_factory.mktemp("card")
    run = tmp / "run"
    result = run_cli("run", str(card_config(tmp)), "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    before = (Run(run).arm_stage("rl", "grpo") / "final" / "README.md").read_text(encoding="utf-8")
    result = run_cli("eval", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    result = cli_in_process("report", str(run))  # results.json, to compare the card with
    assert result.returncode == 0, result.stderr[-3000:]
    return {"run": run, "before": before}


def load_card(path: Path):
    from huggingface_hub import ModelCard

    return ModelCard.load(path)


def test_every_final_has_a_card_and_no_card_says_none(card_run):
    run = card_run["run"]
    cards = sorted(run.rglob("README.md"))
    assert sorted(cards) == sorted(
        Run(run).arm_stage("rl", stage) / "final" / "README.md" for stage in ("sft", "grpo")
    )
    for card in cards:  # TRL's default card beside final/ is gone, and nothing names the base "None"
        assert not re.search(r"\bNone\b", card.read_text(encoding="utf-8")), card
    for stage, trainers in (("sft", ["sft"]), ("grpo", ["sft", "grpo"])):
        data = load_card(Run(run).arm_stage("rl", stage) / "final" / "README.md").data
        assert data.library_name == "transformers" and data.base_model is None  # a tiny model semrl built
        assert data.tags == ["semrl", *trainers, "trl", "bo", "zh"] and data.language == ["bo", "zh"]


def test_card_is_rewritten_with_the_runs_numbers(card_run):
    run = card_run["run"]
    assert "Not evaluated yet" in card_run["before"] and "model-index" not in card_run["before"]
    card = load_card(Run(run).arm_stage("rl", "grpo") / "final" / "README.md")
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    arm = results["arms"]["rl"]
    [index] = card.data.to_dict()["model-index"]
    [entry] = index["results"]
    assert entry["task"]["type"] == "translation" and entry["dataset"]["split"] == "test"
    assert {m["type"]: m["value"] for m in entry["metrics"]} == pytest.approx(
        {name: value["value"] for name, value in arm["task"].items()}
    )
    assert all("resolved:" not in m["config"] for m in entry["metrics"])  # no local paths published
    text = card.text
    for name, value in arm["task"].items():
        low, high = value["ci95"]
        assert re.search(rf"\| {name} \| {value['value']:.4g} \| \[{low:.4g}, {high:.4g}\]", text), name
    for benchmark, metrics in arm["alignment_tax"].items():  # the tax of every benchmark, with its interval
        for metric, tax in metrics.items():
            assert (
                f"| {benchmark} | {metric} | {tax['base']:.4g} | {tax['tuned']:.4g} | {tax['tax']:.4g} |"
                in text
            )
    assert f"drift/kl_mean | {arm['drift']['drift']['kl_mean']:.4g}" in text
    # the reward, the data (names and counts, never rows), the versions, the seed and the paper
    assert "R = 1.5·semantic + 1·language" in text and "tau 0.1" in text and "all-MiniLM-L6-v2" in text
    assert "`tiny-bo-zh.jsonl` (80 rows after the split)" in text and "4 rows held out" in text
    assert "training rows after the first 8: 72 rows" in text
    rows = [
        json.loads(line) for line in (run / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert not any(row["source"] in text or row["reference"] in text for row in rows)
    assert f"trl {results['versions']['trl']}" in text and "seed 0" in text and "arXiv:2605.14366" in text
    sft = load_card(Run(run).arm_stage("rl", "sft") / "final" / "README.md")
    assert "model-index" not in sft.data.to_dict() and "Not evaluated on its own" in sft.text


def greedy(folder: Path, prompts: list[str]) -> list[list[int]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    outputs = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            out = model.generate(
                **ids, do_sample=False, max_new_tokens=12, pad_token_id=tokenizer.pad_token_id
            )
            outputs.append(out[0, ids["input_ids"].shape[1] :].tolist())
    return outputs


def test_export_loads_and_generates_as_final(card_run, tmp_path):
    run, out = card_run["run"], tmp_path / "upload"
    result = run_cli("export", str(run), "--arm", "rl", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "README.md",
        "eval_results.json",
        "semrl_config.yaml",
    } <= {p.name for p in out.iterdir()}
    prompts = [
        json.loads(line)["source"]
        for line in (run / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    final = Run(run).arm_stage("rl", "grpo") / "final"
    exported = greedy(out, prompts)
    assert len(exported) == 4 and all(exported) and exported == greedy(final, prompts)
    evaluation = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    assert {k: v["value"] for k, v in evaluation["task"].items()} == {
        k: v["value"] for k, v in results["arms"]["rl"]["task"].items()
    }
    assert str(run) not in (out / "eval_results.json").read_text(encoding="utf-8")
    assert (
        load_card(out / "README.md").data.to_dict()["model-index"]
        == load_card(final / "README.md").data.to_dict()["model-index"]
    )


def test_export_refuses_bad_input_with_exit_2(card_run, tmp_path):
    run = card_run["run"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep", encoding="utf-8")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns("*.safetensors", "eval", "figures"))
    manifest = json.loads((unfinished / "manifest.json").read_text(encoding="utf-8"))
    manifest["stages"]["rl/grpo"]["status"] = "running"
    (unfinished / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    cases = [
        ((str(tmp_path), "--arm", "rl", "--out", str(tmp_path / "a")), "not a semrl run directory"),
        (
            (str(run), "--arm", "nope", "--out", str(tmp_path / "b")),
            "no arm named 'nope'; the run's arms are rl",
        ),
        ((str(run), "--arm", "rl", "--out", str(tmp_path / "full")), "already exists and is not empty"),
        (
            (str(unfinished), "--arm", "rl", "--out", str(tmp_path / "c")),
            "has not finished training (rl/grpo)",
        ),
    ]
    for args, message in cases:
        result = cli_in_process("export", *args)
        lines = stderr_lines(result)
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "unfinished"]  # nothing half-written
    assert (tmp_path / "full" / "x.txt").read_text(encoding="utf-8") == "keep"
