"""`semrl eval` with `parallel: 2` evaluates the arms and their checkpoints in worker processes with
the same results as the sequential path; `eval.curve_arms` limits the checkpoint curves.

One real run through the CLI (tiny model, three arms sharing a cold-start SFT, checkpoints every
3 steps, the example general suite), copied twice; `semrl eval` on each copy, one with parallel=1
and one with parallel=2 (parallel is a runtime setting, not part of the run's identity).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
SUITE = ROOT / "configs" / "examples" / "general" / "suite.yaml"
PLUGIN = ROOT / "tests" / "data" / "plugins" / "length_ratio.py"  # a metric from outside semrl
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
CURVE_ARMS = ["rl_a", "cold_sft"]  # rl_b: no curve


def semrl(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=ENV)


def experiment(encoder: Path, **extra) -> dict:
    return {
        "name": "par-eval",
        "seed": 0,
        "parallel": 1,  # training; each copy sets its own
        "plugins": [str(PLUGIN)],
        "model": {
            "tiny": {
                "vocab_size": 512,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_layers": 2,
                "num_heads": 4,
            }
        },
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 8},
        "rewards": {
            "rewards": [
                {
                    "type": "semantic",
                    "weight": 1.5,
                    "encoder": str(encoder),
                    "against": "reference",
                    "tau": 0.0,
                },
                {"type": "language", "weight": 1.0, "lang": "zh", "threshold": 0.95},
            ]
        },
        "sft": {"examples": 48, "epochs": 1, "learning_rate": 3.0e-3, "batch_size": 8, "logging_steps": 2},
        "grpo": {
            "max_steps": 3,
            "learning_rate": 1.0e-4,
            "num_generations": 4,
            "prompts_per_step": 4,
            "max_completion_length": 12,
            "logging_steps": 1,
        },
        "decoding": {"max_new_tokens": 12},
        "eval": {
            "enabled": False,
            "suite": str(SUITE),
            "encoder": str(encoder),
            "resamples": 50,
            "metrics": ["bleu", "chrf", "sim", "lang", "length_ratio"],
            "metric_options": {"length_ratio": {"against": "source"}},
            "curve_every": 3,
            "curve_arms": CURVE_ARMS,
        },
        "arms": [
            {"name": "rl_a", "recipe": "two_stage"},
            {"name": "rl_b", "recipe": "two_stage", "grpo": {"learning_rate": 3.0e-4}},
            {"name": "cold_sft", "recipe": "sft"},
        ],
        **extra,
    }


def set_parallel(run_dir: Path, parallel: int) -> None:
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["parallel"] = parallel
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict:
    from semrl.models.tiny import build_tiny_encoder

    tmp = tmp_path_factory.mktemp("parallel_eval")
    rows = [json.loads(line) for line in BO_ZH.read_text(encoding="utf-8").splitlines()]
    encoder = build_tiny_encoder(
        tmp / "encoder", [r["source"] for r in rows] + [r["reference"] for r in rows]
    )
    config = tmp / "exp.yaml"
    config.write_text(
        yaml.safe_dump(experiment(encoder), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    result = semrl("run", str(config), "--out", str(tmp / "trained"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = {"config": config, "encoder": encoder, "trained": tmp / "trained"}
    for name, parallel in (("serial", 1), ("parallel", 2)):
        run_dir = tmp / name
        shutil.copytree(tmp / "trained", run_dir, symlinks=True)  # shared stages stay relative links
        set_parallel(run_dir, parallel)
        start = time.time()
        result = semrl("eval", str(run_dir))
        out[f"{name}_seconds"] = time.time() - start
        assert result.returncode == 0, result.stderr[-3000:]
        out[name], out[f"{name}_stderr"] = run_dir, result.stderr
    print(f"\nsemrl eval: serial {out['serial_seconds']:.1f}s, parallel=2 {out['parallel_seconds']:.1f}s")
    return out


def without_seconds(value):
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def eval_files(run_dir: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(run_dir / "eval")): p for p in sorted((run_dir / "eval").rglob("*")) if p.is_file()
    }


def test_parallel_evaluation_equals_the_sequential_one(evaluated):
    assert "parallel: " in evaluated["parallel_stderr"] and "worker processes" in evaluated["parallel_stderr"]
    assert "parallel: " not in evaluated["serial_stderr"]
    serial, parallel = eval_files(evaluated["serial"]), eval_files(evaluated["parallel"])
    assert set(serial) == set(parallel)
    assert {
        "base.json",
        "rl_a.json",
        "rl_b.json",
        "cold_sft.json",
        "rl_a.outputs.jsonl",
        "curves/base.json",
    } <= set(serial)
    for name, path in serial.items():
        if name.endswith(".json") and "/" not in name:  # eval/<model>.json: timings differ
            a = json.loads(path.read_text(encoding="utf-8").replace(str(evaluated["serial"]), "RUN"))
            b = json.loads(
                parallel[name].read_text(encoding="utf-8").replace(str(evaluated["parallel"]), "RUN")
            )
            assert without_seconds(a) == without_seconds(b), name
        else:  # outputs, curve points (which name their checkpoint's path)
            a = path.read_text(encoding="utf-8").replace(str(evaluated["serial"]), "RUN")
            assert a == parallel[name].read_text(encoding="utf-8").replace(
                str(evaluated["parallel"]), "RUN"
            ), name
    assert (
        "leaked semaphore" not in evaluated["parallel_stderr"]
    )  # workers ended by SIGTERM leave nothing behind
    rl_a = json.loads(serial["rl_a.json"].read_text(encoding="utf-8"))
    assert rl_a["alignment_tax"] and rl_a["drift"]  # the workers had the base's per-item results
    # the plugin's metric, scored in the workers (which import the plugin the config names) as in the
    # main process, against the sources as its option asks
    assert rl_a["task"]["length_ratio"]["signature"] == "length_ratio|chars"
    outputs = [
        json.loads(line) for line in serial["rl_a.outputs.jsonl"].read_text(encoding="utf-8").splitlines()
    ]
    assert [row["seg_length_ratio"] for row in outputs] == [
        len(row["hypothesis"]) / max(len(row["source"]), 1) for row in outputs
    ]


def test_curve_arms_limits_the_curves(evaluated):
    run_dir = evaluated["parallel"]
    for arm in ("rl_a", "rl_b", "cold_sft"):
        result = json.loads((run_dir / "eval" / f"{arm}.json").read_text(encoding="utf-8"))
        assert ("curve" in result) == (arm in CURVE_ARMS), arm
        assert (run_dir / "eval" / "curves" / arm).is_dir() == (arm in CURVE_ARMS), arm
    steps = [
        point["step"]
        for point in json.loads((run_dir / "eval" / "rl_a.json").read_text(encoding="utf-8"))["curve"]
    ]
    assert steps == [0, 3, 6, 9]  # base, two SFT checkpoints, the GRPO one (offset by the SFT's 6 steps)
    # the cold-start SFT checkpoints are shared by rl_a and cold_sft: evaluated once (2 shared + 1 GRPO)
    assert "3 arms, 3 checkpoints" in evaluated["parallel_stderr"]


def test_an_unknown_curve_arm_is_a_config_error(evaluated):
    from semrl.errors import UserError
    from semrl.experiment_config import load_experiment

    with pytest.raises(UserError, match=r"eval\.curve_arms: 'nope' is not an arm"):
        load_experiment(evaluated["config"], ["eval.curve_arms=[rl_a, nope]"])


@pytest.mark.slow  # ~40 s; the parallel evaluation itself stays in CI
def test_worker_errors_keep_the_exit_codes(evaluated, tmp_path):
    run_dir = tmp_path / "broken"
    shutil.copytree(evaluated["trained"], run_dir, symlinks=True)
    set_parallel(run_dir, 2)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["stages"]["rl_b/grpo"]["status"] = "running"
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = semrl("eval", str(run_dir))  # a user error (exit 2), before any evaluation
    assert result.returncode == 2 and "arm rl_b has not finished training" in result.stderr, result.stderr[
        -2000:
    ]
    assert not (run_dir / "eval" / "base.json").exists()
    manifest["stages"]["rl_b/grpo"]["status"] = "done"
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    import torch
    from safetensors.torch import load, save_file

    weights_file = Run(run_dir).arm_stage("rl_b", "grpo") / "final" / "model.safetensors"
    whole = weights_file.read_bytes()
    weights_file.write_bytes(whole[: len(whole) // 2])  # a cut file: named before any evaluation
    result = semrl("eval", str(run_dir))
    assert (
        result.returncode == 2 and f"{weights_file.parent}: model.safetensors is truncated" in result.stderr
    )
    assert not (run_dir / "eval" / "base.json").exists()
    weights = load(whole)
    weights[next(iter(weights))] = torch.zeros(1)  # whole, but not this model's: fails in the worker
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    result = semrl("eval", str(run_dir))  # a bug-like failure inside a worker: exit 1 with its traceback
    assert result.returncode == 1, result.stderr[-2000:]
    assert "safetensors" in result.stderr.lower() or "error" in result.stderr.lower()
    assert not (run_dir / "eval" / "rl_b.json").exists()
    assert (run_dir / "eval" / "rl_a.json").exists()  # submitted before rl_b: not cancelled by its error
