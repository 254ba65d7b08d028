"""Reliability through the real CLI: every malformed input of tests/data/bad/ refused (or repaired)
with its own message, all problems at once, NaN stops a stage with a checkpoint, Ctrl-C stops
cleanly and resumes, SIGKILL at several points resumes to identical results with no invalid file."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from conftest import (
    BO_ZH,
    cli_in_process,
    experiment,
    run_cli,
    start_semrl,
    stderr_lines,
    write_jsonl,
)
from semrl.experiment_config import load_experiment
from semrl.recipes.plan import planned_folder
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad"
CASES = yaml.safe_load((BAD / "cases.yaml").read_text(encoding="utf-8"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_corpus_is_large_enough():
    assert len(CASES) >= 60
    assert all((BAD / case["file"]).exists() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["file"])
def test_malformed_input_gets_its_own_message(case, tmp_path):
    path = BAD / case["file"]
    config = path if case["kind"] == "config" else experiment(tmp_path, path)
    result = cli_in_process("run", str(config), "--dry-run", "--out", str(tmp_path / "run"))
    expected_exit = case.get("exit", 2)
    assert result.returncode == expected_exit, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = stderr_lines(result)
    if expected_exit == 2:
        assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
        assert not (tmp_path / "run").exists()
    else:
        assert all(line.startswith("semrl: warning: ") for line in lines), result.stderr
    for fragment in case["expect"]:
        assert fragment in result.stderr, (fragment, result.stderr)


def test_one_megabyte_line_is_refused(tmp_path):
    data = write_jsonl(
        tmp_path / "huge.jsonl",
        [{"source": "ཀ" * 1_048_576, "reference": "大"}, {"source": "ཁ", "reference": "小"}],
    )
    result = run_cli("run", str(experiment(tmp_path, data)), "--dry-run")
    assert result.returncode == 2
    assert (
        "line 1: field 'source' is 1,048,576 characters long (limit 100,000; set data.max_chars"
        in result.stderr
    )


@pytest.fixture()
def model_copy(tiny_lm, tmp_path) -> Path:
    import shutil

    target = tmp_path / "model"
    shutil.copytree(tiny_lm, target)
    return target


def test_tokenizer_without_pad_or_eos_is_refused(model_copy, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_copy)
    tokenizer.pad_token = None
    tokenizer.eos_token = None
    tokenizer.save_pretrained(model_copy)
    config = experiment(tmp_path, model={"path": str(model_copy)})
    result = run_cli("run", str(config), "--dry-run")
    assert result.returncode == 2 and "tokenizer has neither a pad nor an eos token" in result.stderr, (
        result.stderr
    )


def test_chat_template_always_needs_a_template(model_copy, tmp_path):
    (model_copy / "chat_template.jinja").unlink(missing_ok=True)
    settings = json.loads((model_copy / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings.pop("chat_template", None)
    (model_copy / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    config = experiment(
        tmp_path,
        model={"path": str(model_copy)},
        task={"type": "translate", "source_lang": "bo", "target_lang": "zh", "chat_template": "always"},
    )
    result = run_cli("run", str(config), "--dry-run")
    assert result.returncode == 2 and "task.chat_template: 'always', but the tokenizer" in result.stderr, (
        result.stderr
    )


def test_trust_remote_code_is_announced(tmp_path):
    config = experiment(tmp_path, model={"tiny": {}, "trust_remote_code": True})
    result = run_cli("run", str(config), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "trust_remote_code is ON" in result.stderr


# ---- numerical safety ------------------------------------------------------------------------


def poison(folder: Path, key_part: str, value: float) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in weights if key_part in k)
    weights[key][0, 0] = value
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_nan_in_the_loss_stops_the_stage_with_a_checkpoint(model_copy, tmp_path):
    poison(model_copy, "layers.0.mlp.down_proj", float("inf"))
    config = experiment(
        tmp_path,
        model={"path": str(model_copy)},
        sft={"epochs": 3, "batch_size": 8, "logging_steps": 1, "save_steps": 1000},
    )
    result = run_cli("train", "sft", "--config", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "non-finite" in result.stderr
        and "at step 1" in result.stderr
        and "stopped instead of training on" in result.stderr
    )
    assert (tmp_path / "run" / "train" / "sft" / "checkpoint-1" / "trainer_state.json").exists()
    assert not (tmp_path / "run" / "train" / "sft" / "final").exists()
    stage = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))["stages"][
        "train/sft"
    ]
    assert stage["status"] == "stopped" and "step 1" in stage["reason"]


def test_nan_reward_names_the_component_and_stops(tiny_classifier, tmp_path):
    import shutil

    rm = tmp_path / "rm"
    shutil.copytree(tiny_classifier, rm)
    poison(rm, "score", float("nan"))
    config = experiment(
        tmp_path,
        rewards={
            "rewards": [
                {"type": "language", "lang": "zh"},
                {"type": "reward_model", "model": str(rm), "name": "judge"},
            ]
        },
        grpo={
            "max_steps": 6,
            "num_generations": 2,
            "prompts_per_step": 2,
            "max_completion_length": 4,
            "logging_steps": 1,
            "save_steps": 1000,
        },
    )
    result = run_cli("train", "grpo", "--config", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert "non-finite reward/judge (nan) at step 1" in result.stderr, result.stderr
    assert (tmp_path / "run" / "train" / "grpo" / "checkpoint-1").exists()


# ---- interruption ----------------------------------------------------------------------------


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    config = experiment(
        tmp_path,
        sft={"epochs": 8, "batch_size": 8, "save_steps": 2, "logging_steps": 1},
        eval={"enabled": False},
    )
    args = ["run", str(config), "--out", str(tmp_path / "run")]
    victim = start_semrl(args, env=ENV)
    stage = tmp_path / "run" / planned_folder(load_experiment(config), "s", "sft")
    deadline = time.time() + 300
    while not (stage / "checkpoint-2" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=300)
    assert victim.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert "interrupted at step" in err and "resume with: semrl run" in err and "--resume" in err
    step = int(err.split("interrupted at step ")[1].split(";")[0])
    assert (stage / f"checkpoint-{step}" / "trainer_state.json").exists()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["s/sft"]["status"] == "stopped"
    resumed = run_cli(*args, "--resume", env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["s/sft"]["status"] == "done"
    history = json.loads((stage / "log_history.json").read_text(encoding="utf-8"))
    steps = [e["step"] for e in history if "loss" in e]
    assert steps[0] == 1 and steps[-1] > step and step in steps  # one history across the interruption
    final_state = json.loads(
        max(
            stage.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1])
        ).read_text(encoding="utf-8")
    )
    assert steps[-1] == final_state["max_steps"]


# ---- crash safety ----------------------------------------------------------------------------


def assert_every_file_valid(root: Path, include_checkpoints: bool) -> int:
    """Every JSON, JSONL, YAML and PNG file under root parses; returns how many were checked."""
    checked = 0
    for path in root.rglob("*"):
        if not path.is_file() or (
            not include_checkpoints and any(p.startswith("checkpoint-") for p in path.parts)
        ):
            continue
        if path.name.startswith(".") and path.suffix == ".tmp":
            continue  # an atomic write's temporary file; never read
        if any(
            part.endswith(".tmp") or part.startswith("tmp-checkpoint-")
            for part in path.relative_to(root).parts
        ):
            continue  # a folder being written before its rename (save_final's final.tmp); never read
        if path.suffix == ".json":
            text = path.read_text(encoding="utf-8")
            assert text.strip(), f"{path}: empty JSON file"
            json.loads(text)
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)
        elif path.suffix == ".yaml":
            yaml.safe_load(path.read_text(encoding="utf-8"))
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), path
        else:
            continue
        checked += 1
    return checked


def _crash_config(tmp_path: Path, config: dict | None = None) -> Path:
    """Cold start over two epochs, then GRPO over two epochs of its 8 rows with the semantic reward:
    resuming inside the second epoch of either stage must replay the prompt order and the reward's
    embeddings of an uninterrupted run. The reward draws a contrast bank when the
    GRPO stage starts and takes tau from the cold-start model's samples (`tau: cold_start`), so the
    two things a stage computes before its first step are covered too (the plain reward's resume is
    the same path without them; the slow example case runs it)."""
    config = config or {
        "name": "crash",
        "seed": 0,
        "model": {"tiny": {}},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 6},
        "rewards": {
            "rewards": [
                {
                    "type": "semantic",
                    "weight": 1.5,
                    "encoder": "default",
                    "tau": "cold_start",
                    "contrast": {"bank": 16, "k": 3, "mode": "csls"},
                },
                {"type": "language", "lang": "zh"},
            ]
        },
        "sft": {
            "examples": 70,
            "epochs": 2,
            "batch_size": 8,
            "learning_rate": 1.0e-3,
            "save_steps": 6,
            "logging_steps": 2,
        },
        "grpo": {
            "max_steps": 8,
            "learning_rate": 1.0e-4,
            "num_generations": 4,
            "prompts_per_step": 2,
            "max_completion_length": 12,
            "save_steps": 2,
            "logging_steps": 1,
        },
        "eval": {"metrics": ["bleu", "chrf", "lang"], "resamples": 50, "max_new_tokens": 12},
        "arms": [{"name": "rl", "recipe": "two_stage"}],
    }
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _complete_checkpoints(run: Path) -> set[str]:
    found = set()
    for state in run.glob("*/*/checkpoint-*/trainer_state.json"):
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except ValueError:
            continue
        found.add(str(state.parent.relative_to(run)))
    return found


TIMINGS = {
    "seconds",
    "train_runtime_s",
    "train_runtime",
    "created",
    "finished",
    "started",
    "step_time",
    "train_samples_per_second",
    "train_steps_per_second",
    "run_dir",
    "timings",
}


def without_timings(value):
    """results.json minus what measures time or names the folder: the rest must match exactly."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def kill_at_every_checkpoint(config: Path, run: Path, later_points) -> list[str]:
    """Start (then resume) the run, SIGKILL it the moment each new complete checkpoint of any stage
    appears, then at each later point (evaluation, report); returns where the kills landed."""
    killed, points = [], list(later_points)
    while True:
        args = ["run", str(config), "--out", str(run)]
        if (run / "manifest.json").exists():
            args.append("--resume")
        seen = _complete_checkpoints(run)
        victim = start_semrl(args, env=ENV)
        landed = None
        while victim.poll() is None and landed is None:
            new = _complete_checkpoints(run) - seen
            if new:
                landed = sorted(new)[0]
            elif points and points[0][1](run):
                landed = points.pop(0)[0]
            else:
                time.sleep(0.005)
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
        _, err = victim.communicate()
        if landed is None or victim.returncode == 0:
            assert victim.returncode == 0, err[-3000:]
            return killed
        killed.append(landed)
        assert assert_every_file_valid(run, include_checkpoints=False) > 0


LATER_POINTS = [
    ("evaluation", lambda run: (run / "eval").is_dir() and any((run / "eval").iterdir())),
    ("report", lambda run: (run / "figures").is_dir()),
]


def assert_resumed_run_identical(straight: Path, run: Path, stages: list[str]) -> None:
    for stage in stages:
        folders = [Run(root).arm_stage(*stage.split("/")) for root in (straight, run)]
        a = load_file(str(folders[0] / "final" / "model.safetensors"))
        b = load_file(str(folders[1] / "final" / "model.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), stage
        metrics = [json.loads((folder / "metrics.json").read_text(encoding="utf-8")) for folder in folders]
        assert without_timings(metrics[0]) == {
            **without_timings(metrics[1]),
            "final_model": metrics[0]["final_model"],
        }, stage
    results = [json.loads((root / "results.json").read_text(encoding="utf-8")) for root in (straight, run)]
    assert json.dumps(without_timings(results[0])).replace(str(straight), "RUN") == json.dumps(
        without_timings(results[1])
    ).replace(str(run), "RUN")


def test_sigkill_at_every_checkpoint_then_resume_is_identical(tmp_path):
    config = _crash_config(tmp_path)
    straight = run_cli("run", str(config), "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]

    run = tmp_path / "victim"
    killed = kill_at_every_checkpoint(config, run, LATER_POINTS)
    sft, grpo = (planned_folder(load_experiment(config), "rl", stage) for stage in ("sft", "grpo"))
    expected = {f"{sft}/checkpoint-{s}" for s in (6, 12, 18)} | {
        f"{grpo}/checkpoint-{s}" for s in (2, 4, 6, 8)
    }
    assert expected <= set(killed), killed  # every checkpoint of both stages (the report may finish first)
    assert "evaluation" in killed, killed
    assert assert_every_file_valid(run, include_checkpoints=True) > 10
    assert_resumed_run_identical(tmp_path / "straight", run, ["rl/sft", "rl/grpo"])
    assert (run / "report.html").exists() and (run / "summary.md").exists()
    samples = [
        (Run(root).arm_stage("rl", "grpo") / "tau_cold_start.jsonl").read_text(encoding="utf-8")
        for root in (tmp_path / "straight", run)
    ]
    assert (
        samples[0] == samples[1] and len(samples[0].splitlines()) == 8
    )  # the sample: capped at the 8 GRPO rows
    metrics = json.loads((Run(run).arm_stage("rl", "grpo") / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["tau_cold_start"]["semantic"]["n"] == 8


@pytest.mark.slow
def test_example_killed_at_every_checkpoint_resumes_identically(tmp_path):
    """The same on configs/examples/tiny-bo-zh.yaml (both arms, its run encoder, the general suite)."""
    example = yaml.safe_load((ROOT / "configs" / "examples" / "tiny-bo-zh.yaml").read_text(encoding="utf-8"))
    example["data"]["train"] = str(ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl")
    example["eval"]["suite"] = str(ROOT / "configs" / "examples" / "general" / "suite.yaml")
    config = _crash_config(tmp_path, example)
    straight = run_cli("run", str(config), "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = kill_at_every_checkpoint(config, tmp_path / "victim", LATER_POINTS)
    assert any("grpo/checkpoint" in k for k in killed) and any("sft/checkpoint" in k for k in killed), killed
    assert_resumed_run_identical(
        tmp_path / "straight", tmp_path / "victim", ["semantic_rl/sft", "semantic_rl/grpo", "strong_sft/sft"]
    )


def test_a_resume_with_the_same_config_continues_and_a_changed_value_is_refused(tmp_path):
    """`--resume` continues a run only under the config it started with (runtime settings aside)."""
    config = experiment(tmp_path, sft={"max_steps": 1, "batch_size": 4}, eval={"enabled": False})
    out = tmp_path / "run"
    assert cli_in_process("run", str(config), "--out", str(out)).returncode == 0
    assert cli_in_process("run", str(config), "--out", str(out), "--resume").returncode == 0
    changed = cli_in_process("run", str(config), "--out", str(out), "--resume", "sft.learning_rate=0.5")
    assert changed.returncode == 2 and "the config differs from the run being resumed" in changed.stderr
