"""Stops under `accelerate launch` with two CPU processes (gloo): Ctrl-C and a non-finite loss stop
every rank at the same step with one consistent checkpoint, and `--resume` then finishes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import semrl
from conftest import complete_checkpoints, free_port, poisoned_copy, start_until_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
# semrl's own source files, as the launched processes import them (same interpreter and environment)
SEMRL_PACKAGE = Path(semrl.__file__).parent


def semrl_frames(traceback_text: str, package: Path = SEMRL_PACKAGE) -> list[str]:
    """Traceback frames in semrl's own source files. Matched by the package's folder, not by a folder
    name: a clone in a folder named `semrl` puts its .venv, and so torch's files, under `/semrl/` too."""
    roots = {str(package), str(package.resolve())}
    files = re.findall(r'File "([^"]+\.py)"', traceback_text)
    return [file for file in files if any(file.startswith(root + os.sep) for root in roots)]


def test_semrl_frames_are_found_by_the_package_folder_not_by_a_folder_named_semrl(tmp_path):
    clone = tmp_path / "semrl"  # `git clone .../semrl` makes this folder
    package = clone / "src" / "semrl"
    torch_frame = clone / ".venv" / "lib" / "python3.11" / "site-packages" / "torch" / "run.py"
    own_frame = package / "train" / "common.py"
    text = (
        f'Traceback (most recent call last):\n  File "{torch_frame}", line 9, in main\n'
        f'  File "{own_frame}", line 3, in stop\nKeyboardInterrupt\n'
    )
    assert semrl_frames(text, package) == [str(own_frame)]
    assert semrl_frames(text.replace(f'  File "{own_frame}", line 3, in stop\n', ""), package) == []


def accelerate(*args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "semrl",
        *args,
    ]


def sft_config(tmp_path: Path, **model) -> Path:
    config = {
        "name": "mp",
        "model": model or {"tiny": {}},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 4},
        "sft": {"epochs": 30, "batch_size": 4, "learning_rate": 1.0e-3, "save_steps": 2, "logging_steps": 1},
    }
    path = tmp_path / "mp.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.slow  # ~60 s; a non-finite loss stopping both ranks stays in CI
def test_ctrl_c_under_two_processes_stops_every_rank_at_one_step(tmp_path):
    config, out = sft_config(tmp_path), tmp_path / "run"
    args = accelerate("train", "sft", "--config", str(config), "--out", str(out))
    stage = out / "train" / "sft"
    # the terminal sends Ctrl-C to the whole foreground group: launcher, torchrun and both ranks
    victim = start_until_checkpoint(args, stage, ENV, stdout=subprocess.PIPE)
    os.killpg(victim.pid, signal.SIGINT)
    _, err = victim.communicate(timeout=600)
    assert victim.returncode != 0
    # torchrun's agent reports its own SignalException with a traceback; no semrl frame may appear
    assert semrl_frames(err) == [], err[-3000:]
    steps = {int(s) for s in re.findall(r"interrupted at step (\d+)", err)}
    assert len(steps) == 1, err[-3000:]  # every rank that reports names the same step
    step = steps.pop()
    assert step in complete_checkpoints(stage)
    assert not (stage / "final").exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["train/sft"]["status"] == "stopped"

    resumed = subprocess.run(args + ["--resume"], env=ENV, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["train/sft"]["status"] == "done"
    history = json.loads((stage / "log_history.json").read_text(encoding="utf-8"))
    logged = [entry["step"] for entry in history if "loss" in entry]
    assert logged == list(range(1, logged[-1] + 1))  # one history across the stop, no step twice


def test_non_finite_loss_under_two_processes_stops_both_ranks(tiny_lm, tmp_path):
    model = poisoned_copy(tiny_lm, tmp_path / "model", "layers.0.mlp.down_proj", float("inf"))
    config, out = sft_config(tmp_path, path=str(model)), tmp_path / "run"
    result = subprocess.run(
        accelerate("train", "sft", "--config", str(config), "--out", str(out)),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode != 0
    assert "non-finite" in result.stderr and "at step 1" in result.stderr, result.stderr[-3000:]
    assert "at step 2" not in result.stderr
    stage = out / "train" / "sft"
    assert complete_checkpoints(stage) == [1]
    assert not (stage / "final").exists()
    stage_entry = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["stages"]["train/sft"]
    assert stage_entry["status"] == "stopped" and "step 1" in stage_entry["reason"]
