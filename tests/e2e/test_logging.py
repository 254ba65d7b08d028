"""Logging a user can open: `report_to: tensorboard` writes event files beside the stage's
checkpoints and `report_to: wandb` writes an offline run, each holding every reward component,
the KL, the loss and the completion length. Exercised through the real CLI on tiny local models."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, sample_lines

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
# what a user looks for: each reward component, the KL, the loss and the completion length
WANTED = ("reward/semantic", "reward/language", "kl", "loss", "completions/mean_length")


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A locally built sentence encoder, so the semantic reward needs no download."""
    from semrl.models.tiny import build_tiny_encoder

    return build_tiny_encoder(
        tmp_path_factory.mktemp("encoder"), sample_lines("bo.txt") + sample_lines("zh.txt")
    )


def grpo_config(tmp_path: Path, encoder: Path) -> Path:
    """bo -> zh, the paper's 1.5 semantic + 1.0 language; beta > 0 so TRL computes (and logs) the KL."""
    config = {
        "name": "tiny-logging",
        "model": {
            "tiny": {
                "vocab_size": 384,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_layers": 1,
                "num_heads": 2,
            }
        },
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 4},
        "rewards": {
            "rewards": [
                {
                    "type": "semantic",
                    "weight": 1.5,
                    "encoder": str(encoder),
                    "against": "reference",
                    "tau": 0.0,
                },
                {"type": "language", "weight": 1.0, "lang": "zh"},
            ]
        },
        "grpo": {
            "max_steps": 2,
            "learning_rate": 1.0e-3,
            "num_generations": 4,
            "prompts_per_step": 2,
            "max_completion_length": 8,
            "logging_steps": 1,
            "save_steps": 100,
            "beta": 0.04,
        },
        "sft": {"max_steps": 2, "batch_size": 4, "logging_steps": 1, "save_steps": 100},
        "eval": {"enabled": False},
        "parallel": 1,  # `semrl run`: both stages in one process, one after the other
        "arms": [
            {"name": "sft", "recipe": "sft"},
            {"name": "rl", "recipe": "grpo"},
        ],  # `train grpo` ignores arms
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_tensorboard_event_files_hold_every_reward_component(tiny_encoder, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = run_cli(
        "train",
        "grpo",
        "--config",
        str(grpo_config(tmp_path, tiny_encoder)),
        "--out",
        str(out),
        "report_to=tensorboard",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = sorted((out / "train" / "grpo" / "runs").glob("*/events.out.tfevents.*"))
    assert len(events) == 1, list((out / "train" / "grpo").rglob("*"))
    accumulator = EventAccumulator(str(events[0].parent), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    for key in WANTED:
        assert f"train/{key}" in tags, (key, sorted(tags))
        points = accumulator.Scalars(f"train/{key}")
        assert [p.step for p in points] == [1, 2]
        assert all(math.isfinite(p.value) for p in points), (key, points)


def wandb_records(path: Path) -> list:
    """The records of an offline run's `run-<id>.wandb` file (what `wandb sync` uploads): a LevelDB-style
    log (7-byte header, 32 KiB blocks of chunks: crc32, length, type) of protobuf Records. wandb 0.31
    ships no Python reader for it, and an offline run writes no wandb-summary.json."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", data[:7]
    pos, chunks, records = 7, [], []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        chunks.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            records.append(record)
            chunks = []
    return records


def test_wandb_offline_runs_one_per_stage_with_every_reward_component(tiny_encoder, tmp_path):
    """`semrl run` trains an SFT arm then a GRPO arm in one process: each stage must get its own
    finished wandb run (transformers' callback would reuse the first and never finish it)."""
    pytest.importorskip("wandb")
    (tmp_path / "wb").mkdir()
    out = tmp_path / "run"
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path / "wb"),
        "WANDB_SILENT": "true",
        "WANDB_PROJECT": "semrl-test",
        "HF_HUB_OFFLINE": "1",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    result = run_cli(
        "run", str(grpo_config(tmp_path, tiny_encoder)), "--out", str(out), "report_to=wandb", env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wandb:" not in result.stderr  # WANDB_SILENT keeps the progress line alone
    runs = {}
    for folder in (tmp_path / "wb" / "wandb").glob("offline-run-*"):
        records = wandb_records(next(folder.glob("run-*.wandb")))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.project == "semrl-test"
        exits = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
        assert exits == [0], (run.display_name, "the stage finished its wandb run")
        runs[run.display_name] = records
    assert sorted(runs) == ["run/rl/grpo", "run/sft/sft"], sorted(runs)
    history: dict[str, list[float]] = {}
    for record in runs["run/rl/grpo"]:
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                history.setdefault(item.key or "/".join(item.nested_key), []).append(
                    json.loads(item.value_json)
                )
    for key in WANTED:
        values = history.get(f"train/{key}")
        assert values and len(values) == 2 and all(math.isfinite(v) for v in values), (key, sorted(history))


@pytest.mark.parametrize("logger", [pytest.param("tensorboard", marks=pytest.mark.slow), "wandb"])
def test_preflight_accepts_an_installed_logger(logger, tiny_encoder, tmp_path):
    pytest.importorskip(logger)
    result = run_cli(
        "run",
        str(grpo_config(tmp_path, tiny_encoder)),
        "--out",
        str(tmp_path / "run"),
        "--dry-run",
        f"report_to={logger}",
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("logger", [pytest.param("tensorboard", marks=pytest.mark.slow), "wandb"])
def test_preflight_refuses_a_missing_logger_in_one_line(logger, tiny_encoder, tmp_path):
    """The package hidden from this one process (sys.modules[name] = None: find_spec says absent)."""
    argv = [
        "semrl",
        "run",
        str(grpo_config(tmp_path, tiny_encoder)),
        "--out",
        str(tmp_path / "run"),
        "--dry-run",
        f"report_to={logger}",
    ]
    code = (
        f"import sys, runpy; sys.modules[{logger!r}] = None; sys.argv = {argv!r}; "
        "runpy.run_module('semrl', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "report_to" in lines[0] and logger in lines[0] and "not installed" in lines[0], lines[0]
    assert not (tmp_path / "run").exists()
