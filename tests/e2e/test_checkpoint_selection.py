"""grpo.select through the real CLI: a two-arm run (one shared SFT, two GRPO stages of 3 steps with a
checkpoint every step) where arm `rl` holds out 2 of its GRPO rows as dev rows and chooses by chrF,
and arm `tie` reads a dev file whose references no checkpoint can match (every score 0), so the tie
rule picks step 1. The chosen weights are final/: what the evaluation, the card and the export use."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import BO_ZH, cli_in_process, run_cli, stderr_lines, write_jsonl
from semrl.run_folder import Run

GRPO = {
    "max_steps": 3,
    "save_steps": 1,
    "learning_rate": 1.0e-3,
    "num_generations": 2,
    "prompts_per_step": 2,
    "max_completion_length": 8,
    "logging_steps": 1,
}


def config(tmp_path: Path, **overrides) -> Path:
    data = {
        "name": "select",
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
                {"type": "semantic", "weight": 1.0, "encoder": "default", "tau": 0.0},
                {"type": "language", "weight": 1.0, "lang": "zh"},
            ]
        },
        "sft": {"examples": 74, "max_steps": 3, "batch_size": 4, "learning_rate": 1.0e-3, "logging_steps": 1},
        "grpo": {**GRPO, "select": {"dev": 2, "metric": "chrf"}},
        "eval": {"metrics": ["chrf"], "resamples": 20, "max_new_tokens": 8},
        "arms": [{"name": "rl", "recipe": "two_stage"}],
        **overrides,
    }
    path = tmp_path / "select.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights(stage: Path, name: str) -> str:
    return sha256(stage / name / "model.safetensors")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("select")
    unmatched = write_jsonl(  # references in a script the model never writes: every chrF is 0
        tmp / "dev.jsonl",
        [{"source": "ཨ་མས་ཇ་འཐུང་གི་འདུག", "reference": "𝔮𝔮𝔮𝔵𝔵"}, {"source": "ཁོང་", "reference": "𝔷𝔷𝔮"}],
    )
    arms = [
        {"name": "rl", "recipe": "two_stage"},
        {"name": "tie", "recipe": "two_stage", "grpo": {"select": {"dev": "dev.jsonl"}}},
    ]
    path = config(tmp, arms=arms)
    assert unmatched.parent == path.parent  # the dev file is named relative to the config
    result = run_cli("run", str(path), "--out", str(tmp / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run"


def test_the_chosen_checkpoint_is_final_and_recorded(run):
    stage = Run(run).arm_stage("rl", "grpo")
    selection = json.loads((stage / "selection.json").read_text(encoding="utf-8"))
    scores = {c["step"]: c["score"] for c in selection["candidates"]}
    assert sorted(scores) == [1, 2, 3] and selection["final_step"] == 3 and selection["metric"] == "chrf"
    best = max(scores.values())
    assert selection["chosen_step"] == min(step for step, score in scores.items() if score == best)
    chosen = selection["chosen"]
    assert chosen == ("final" if selection["chosen_step"] == 3 else f"checkpoint-{selection['chosen_step']}")
    # final/ holds the chosen step's weights, byte for byte (the last checkpoint's when step 3 wins)
    assert weights(stage, "final") == weights(stage, f"checkpoint-{selection['chosen_step']}")
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["selection"]["chosen_step"] == selection["chosen_step"]
    assert metrics["selection"]["candidates"] == [{"step": s, "score": scores[s]} for s in (1, 2, 3)]
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["rl/grpo"]["metrics"]["selection"] == metrics["selection"]


def test_the_tie_rule_keeps_the_earliest_step_and_every_consumer_uses_it(run, tmp_path):
    stage = Run(run).arm_stage("tie", "grpo")
    selection = json.loads((stage / "selection.json").read_text(encoding="utf-8"))
    assert [c["score"] for c in selection["candidates"]] == [0.0, 0.0, 0.0]
    assert selection["chosen_step"] == 1 and "tied at steps 1, 2, 3" in selection["reason"]
    assert weights(stage, "final") == weights(stage, "checkpoint-1") != weights(stage, "checkpoint-3")
    # the dev file's rows were scored, the stage trained on all its own rows
    assert len((stage / "dev.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    assert json.loads((stage / "metrics.json").read_text(encoding="utf-8"))["prompts"] == 6
    # the evaluation generated with final/ = checkpoint-1
    evaluation = json.loads((run / "eval" / "tie.json").read_text(encoding="utf-8"))
    assert evaluation["model"] == str(stage / "final")
    # the export carries checkpoint-1's weights, and the card and the report say so
    out = tmp_path / "export"
    result = cli_in_process("export", str(run), "--arm", "tie", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sha256(out / "model.safetensors") == weights(stage, "checkpoint-1")
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## Checkpoint selection" in card and "the checkpoint of step 1 of 3" in card
    assert "`dev.jsonl` (2 rows)" in card
    summary = (run / "summary.md").read_text(encoding="utf-8")
    assert "## Checkpoint selection (dev split)" in summary
    assert "| tie/grpo | 1 | 1: 0, 2: 0, 3: 0 |" in summary


def test_dev_rows_are_held_out_of_grpo_training(run):
    stage = Run(run).arm_stage("rl", "grpo")
    dev = [json.loads(line) for line in (stage / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    rest = [
        json.loads(line) for line in (run / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    ][74:]
    assert len(dev) == 2 and all(
        row in [{k: v for k, v in r.items() if k != "__line__"} for r in rest] for row in dev
    )
    assert json.loads((stage / "metrics.json").read_text(encoding="utf-8"))["prompts"] == 4
    trained = {
        row["source"]
        for row in rest
        for line in (stage / "completions.jsonl").read_text(encoding="utf-8").splitlines()
        if row["source"] in json.dumps(json.loads(line)["prompt"], ensure_ascii=False)
    }
    # 3 steps of 2 prompts walk all 4 training rows, and never a dev row
    assert trained == {row["source"] for row in rest} - {row["source"] for row in dev}
    assert len(trained) == 4


def test_resume_after_a_kill_during_selection_neither_retrains_nor_rescores(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    stage = Run(copy).arm_stage("rl", "grpo")
    before = json.loads((stage / "selection.json").read_text(encoding="utf-8"))
    history = (stage / "log_history.json").read_text(encoding="utf-8")
    first = stage / "selection" / "step-1.jsonl"
    first_mtime = first.stat().st_mtime_ns
    # the state a kill after scoring step 1 leaves: the stage running, one cached score, final/ and
    # metrics.json (written once selection is done) gone
    (stage / "metrics.json").unlink()
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["stages"]["rl/grpo"]["status"] = "running"
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    partial = {k: v for k, v in before.items() if k not in ("chosen", "chosen_step", "score", "reason")}
    partial["candidates"] = before["candidates"][:1]
    (stage / "selection.json").write_text(json.dumps(partial), encoding="utf-8")
    shutil.rmtree(stage / "final")
    checkpoints = sorted(p.name for p in stage.glob("checkpoint-*"))
    config_path = copy / "config.yaml"
    result = run_cli("run", str(config_path), "--out", str(copy), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((stage / "selection.json").read_text(encoding="utf-8"))
    assert first.stat().st_mtime_ns == first_mtime  # step 1 was not scored again, 2 and 3 were
    assert [(c["step"], c["score"]) for c in after["candidates"]] == [
        (c["step"], c["score"]) for c in before["candidates"]
    ]
    for field in ("chosen_step", "chosen", "reason", "final_step", "trained"):
        assert after[field] == before[field], field
    assert (stage / "log_history.json").read_text(encoding="utf-8") == history
    assert sorted(p.name for p in stage.glob("checkpoint-*")) == checkpoints
    assert weights(stage, "final") == weights(Run(run).arm_stage("rl", "grpo"), "final")


def test_eval_with_other_scoring_settings_finds_the_trained_folders(run, tmp_path):
    """A GRPO stage with selection is named by the eval settings selection scores with, so
    `semrl eval RUN eval.resamples=...` plans other folder names; it reads the ones the run recorded."""
    from semrl.experiment_config import load_experiment
    from semrl.recipes.plan import planned_folder

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    replanned = planned_folder(load_experiment(copy / "config.yaml", ["eval.resamples=30"]), "rl", "grpo")
    assert copy / replanned != Run(copy).arm_stage("rl", "grpo")
    result = run_cli("eval", str(copy), "--arm", "rl", "eval.resamples=30")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((copy / "eval" / "rl.json").read_text(encoding="utf-8"))["model"].startswith(
        str(Run(copy).arm_stage("rl", "grpo"))
    )


def test_selecting_with_the_rewards_own_encoder_is_refused(tmp_path):
    path = config(tmp_path, grpo={**GRPO, "select": {"dev": 2, "metric": "sim", "encoder": "default"}})
    result = cli_in_process("run", str(path), "--dry-run")
    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert "grpo.select: metric sim with encoder default is the encoder of the stage's reward term" in line
    assert "games that reward best" in line and "allow_reward_metric: true" in line
    path = config(tmp_path, grpo={**GRPO, "select": {"dev": 2, "metric": "sim", "allow_reward_metric": True}})
    assert cli_in_process("run", str(path), "--dry-run").returncode == 0


def test_a_bad_dev_file_or_size_is_refused_naming_it(tmp_path):
    bad = write_jsonl(tmp_path / "dev.jsonl", [{"source": "ཁོང་", "reference": "他"}, {"source": "ཁོང་"}])
    path = config(tmp_path, grpo={**GRPO, "select": {"dev": str(bad)}})
    result = cli_in_process("run", str(path), "--dry-run")
    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert str(bad) in line and "line 2" in line and "reference" in line
    path = config(tmp_path, grpo={**GRPO, "select": {"dev": 6}})  # two_stage's GRPO has 80 - 74 rows
    result = cli_in_process("run", str(path), "--dry-run")
    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert "grpo.select.dev: 6 rows held out of the stage's 6 leave none to train on" in line
    test = write_jsonl(tmp_path / "test.jsonl", [{"source": "ཁོང་", "reference": "他"}] * 3)
    (tmp_path / "same-test.jsonl").symlink_to(test)
    for dev in (test, tmp_path / "same-test.jsonl"):  # the file itself, or another name for it
        data = {"train": str(BO_ZH), "test": str(test)}
        path = config(tmp_path, data=data, grpo={**GRPO, "select": {"dev": str(dev)}})
        result = cli_in_process("run", str(path), "--dry-run")
        assert result.returncode == 2, result.stderr
        [line] = stderr_lines(result)
        assert line.startswith("semrl: error: grpo.select.dev: ") and "is data.test" in line, line
