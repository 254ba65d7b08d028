"""The oracle-free side of GRPO through the real CLI: the monitors (monitor/distinct, monitor/hub,
monitor/retrieval) in log_history.json, TensorBoard and completions.jsonl; `tau: cold_start` taken
from the starting model's own samples (recomputable from the saved sample, read back on resume,
generated the way TRL generates); and the reward-hacking warning, which fires when the reward pays
one constant sentence and the tiny policy collapses onto it, and not on a run that learns each
row's own answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import complete_checkpoints, free_port, run_cli, sample_lines, start_semrl
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
MONITORS = ("monitor/distinct", "monitor/hub", "monitor/retrieval")
CONSTANT = "妈妈在喝茶。"
COLD = {
    "tau": {"from": "cold_start", "quantile": 0.3, "sample": 12},
    "contrast": {"bank": 16, "k": 3, "mode": "csls"},
}
EVAL = {"metrics": ["chrf"], "resamples": 20, "max_new_tokens": 4}


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    from semrl.models.tiny import build_tiny_encoder

    return build_tiny_encoder(
        tmp_path_factory.mktemp("encoder"), sample_lines("bo.txt") + sample_lines("zh.txt")
    )


def write_config(
    tmp_path: Path,
    encoder: Path,
    data: Path = BO_ZH,
    semantic: dict | None = None,
    grpo: dict | None = None,
    evaluate: dict | None = None,
) -> Path:
    """bo -> zh on a tiny policy straight from the base model (recipe grpo), one semantic term."""
    config = {
        "name": "monitors",
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
        "data": {"train": str(data), "test_size": 4},
        "rewards": {
            "rewards": [
                {
                    "type": "semantic",
                    "weight": 1.0,
                    "encoder": str(encoder),
                    "against": "reference",
                    "tau": 0.0,
                    **(semantic or {}),
                }
            ]
        },
        "grpo": {
            "max_steps": 4,
            "learning_rate": 1.0e-3,
            "num_generations": 4,
            "prompts_per_step": 2,
            "max_completion_length": 8,
            "logging_steps": 1,
            "save_steps": 100,
            **(grpo or {}),
        },
        "eval": evaluate or {"enabled": False},
        "arms": [{"name": "rl", "recipe": "grpo"}],
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_monitors_and_cold_start_tau_reach_every_log_and_the_report(tiny_encoder, tmp_path):
    """One short stage with contrast and tau: cold_start, through `semrl run` with TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_config(tmp_path, tiny_encoder, semantic=COLD, evaluate=EVAL)),
        "--out",
        str(out),
        "report_to=tensorboard",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stage = Run(out).arm_stage("rl", "grpo")
    logged = [
        e for e in json.loads((stage / "log_history.json").read_text(encoding="utf-8")) if "reward" in e
    ]
    assert [e["step"] for e in logged] == [1, 2, 3, 4]
    assert all(set(MONITORS) <= set(e) for e in logged), logged[0]
    assert all(0.0 <= e["monitor/distinct"] <= 1.0 and 0.0 <= e["monitor/retrieval"] <= 1.0 for e in logged)

    events = sorted((stage / "runs").glob("*/events.out.tfevents.*"))
    accumulator = EventAccumulator(str(events[0].parent), size_guidance={"scalars": 0})
    accumulator.Reload()
    for key in MONITORS:
        assert [p.step for p in accumulator.Scalars(f"train/{key}")] == [1, 2, 3, 4], key

    by_step = {e["step"]: e for e in logged}
    rows = read_rows(stage / "completions.jsonl")
    assert {row["step"] for row in rows} == {1, 2, 3, 4}
    for row in rows:
        assert row["monitors"] == pytest.approx({key: by_step[row["step"]][key] for key in MONITORS})

    # tau: the 0.3-quantile of the saved sample's scores, recomputed here, is what the stage used
    sample = read_rows(stage / "tau_cold_start.jsonl")
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    entry = metrics["tau_cold_start"]["semantic"]
    assert (entry["quantile"], entry["n"], entry["sample"], entry["sample_file"]) == (
        0.3,
        12,
        12,
        "tau_cold_start.jsonl",
    )
    assert len(sample) == 12 and len({row["row"] for row in sample}) == 12
    sources = {json.loads(line)["source"] for line in BO_ZH.read_text(encoding="utf-8").splitlines()}
    assert all(row["prompt"][-1]["content"].split("\n")[-1] in sources for row in sample)  # the GRPO prompts
    assert all(isinstance(row["completion"], str) for row in sample)
    scores = [row["scores"]["semantic"] for row in sample]
    assert entry["value"] == float(np.quantile(scores, 0.3))

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["training"]["rl/grpo"]["metrics"]["tau_cold_start"] == metrics["tau_cold_start"]
    assert (
        results["training"]["rl/grpo"]["metrics"]["hacking"]["warning"] is False
    )  # 4 steps: too short to tell
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "tau from the cold start" in summary and f"{entry['value']:.4f}" in summary
    assert "Reward hacking monitors" in summary
    assert (out / "figures" / "monitors.png").exists() and "figures/monitors.png" in results["figures"]


def test_a_resumed_stage_reads_its_cold_start_tau_back(tiny_encoder, tmp_path):
    """Killed after its first checkpoint, the stage resumes with the tau of the saved sample and
    does not sample again: the test rewrites the saved scores, and the resumed stage uses them."""
    config = write_config(tmp_path, tiny_encoder, semantic=COLD, grpo={"max_steps": 40, "save_steps": 2})
    out = tmp_path / "run"
    stage = out / "train" / "grpo"
    args = ["train", "grpo", "--config", str(config), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    victim = start_semrl(args, env=env)
    while not complete_checkpoints(stage) and victim.poll() is None:
        time.sleep(0.02)
    assert victim.poll() is None, victim.communicate()[1][-3000:]
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    saved = read_rows(stage / "tau_cold_start.jsonl")
    tampered = [{**row, "scores": {"semantic": round(0.01 * i - 0.05, 4)}} for i, row in enumerate(saved)]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in tampered)
    (stage / "tau_cold_start.jsonl").write_text(text, encoding="utf-8")

    resumed = run_cli(*args, "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (stage / "tau_cold_start.jsonl").read_text(encoding="utf-8") == text  # not sampled again
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    expected = float(np.quantile([row["scores"]["semantic"] for row in tampered], 0.3))
    assert metrics["tau_cold_start"]["semantic"]["value"] == expected


@pytest.mark.slow  # two runs, one of them two processes (~40 s on 2 cores)
def test_two_processes_share_rank_zeros_cold_start_tau(tiny_encoder, tmp_path):
    """Under `accelerate launch` rank 0 samples and broadcasts: every rank scores with one tau,
    the same sample and value as a one-process run of the same config."""
    config = write_config(tmp_path, tiny_encoder, semantic={"tau": {"from": "cold_start", "sample": 16}})
    accelerate = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    samples = []
    for name, launcher in (("one", [sys.executable]), ("two", accelerate)):
        out = tmp_path / name
        result = subprocess.run(
            [*launcher, "-m", "semrl", "train", "grpo", "--config", str(config), "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        stage = out / "train" / "grpo"
        metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
        samples.append(
            ((stage / "tau_cold_start.jsonl").read_text(encoding="utf-8"), metrics["tau_cold_start"])
        )
    assert samples[0] == samples[1]


@pytest.mark.parametrize("chat", [True, False], ids=["messages", "text"])
def test_cold_start_samples_as_trl_generates(tiny_lm, tmp_path, chat):
    """The cold start's completions are TRL's own: the same prompt ids as GRPOTrainer's tokenizer
    path and, under the same seed and batch, the same sampled completions."""
    import torch
    from datasets import Dataset

    from semrl.experiment_config import GRPOSpec
    from semrl.models.loading import load_causal_lm, load_tokenizer
    from semrl.models.prompts import encode_prompts
    from semrl.text.decoding import strip_broken_tail
    from semrl.train.cold_start import sample_completions
    from semrl.train.grpo import grpo_config, resumable_grpo_trainer
    from semrl.train.settings import StageSettings

    tokenizer = load_tokenizer(str(tiny_lm))
    if not chat:
        tokenizer.chat_template = None
    texts = [f"Translate into Chinese.\n{line}" for line in sample_lines("bo.txt")[:8]]
    prompts = [[{"role": "user", "content": t}] for t in texts] if chat else [t + "\n" for t in texts]
    spec = GRPOSpec(
        max_steps=1, num_generations=4, prompts_per_step=2, max_completion_length=8, temperature=1.0
    )
    args = grpo_config(StageSettings(seed=0), spec, tmp_path / "grpo", "cpu")
    trainer = resumable_grpo_trainer()(
        model=load_causal_lm(str(tiny_lm), "auto", "cpu"),
        reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
    )
    ids = trainer._tokenize_prompts(prompts)[0]
    assert [list(row) for row in ids] == encode_prompts(tokenizer, prompts, args.chat_template_kwargs)
    trainer.model.eval()
    torch.manual_seed(3)
    theirs = tokenizer.batch_decode(
        trainer._generate_single_turn(ids, None, {}, 1)[0], skip_special_tokens=True
    )
    theirs = [strip_broken_tail(text) for text in theirs]  # what the reward scores of TRL's sample
    assert sample_completions(trainer.model, tokenizer, prompts, args, 3, "cpu") == theirs


def test_hacking_warning_fires_when_the_reward_pays_one_sentence(tiny_encoder, tmp_path):
    """Every row's reference is the same sentence while the prompts differ: the reward pays that one
    sentence, and at a high learning rate the tiny policy collapses onto it within 50 steps."""
    rows = [json.loads(line) for line in BO_ZH.read_text(encoding="utf-8").splitlines()]
    data = tmp_path / "constant.jsonl"
    data.write_text(
        "".join(json.dumps({**row, "reference": CONSTANT}, ensure_ascii=False) + "\n" for row in rows),
        encoding="utf-8",
    )
    config = write_config(
        tmp_path,
        tiny_encoder,
        data=data,
        evaluate=EVAL,
        grpo={"max_steps": 50, "learning_rate": 2.0e-2, "max_completion_length": 3},
    )
    out = tmp_path / "run"
    result = run_cli("run", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    warning = [line for line in result.stderr.splitlines() if "likely reward hacking" in line]
    assert len(warning) == 1, result.stderr[-3000:]
    assert warning[0].startswith(
        "semrl: warning: rl/grpo: reward rising while outputs grow less specific: "
        "likely reward hacking (reward +"
    )
    assert warning[0].endswith("between steps 1-10 and 41-50)"), warning[0]

    hacking = json.loads((Run(out).arm_stage("rl", "grpo") / "metrics.json").read_text(encoding="utf-8"))[
        "hacking"
    ]
    assert hacking["warning"] is True and hacking["steps"] == {"first": [1, 10], "last": [41, 50]}
    assert hacking["trends"]["reward"]["ci95"][0] > 0 and hacking["trends"]["monitor/distinct"]["ci95"][1] < 0
    assert warning[0].endswith(hacking["message"])
    last = [
        row for row in read_rows(Run(out).arm_stage("rl", "grpo") / "completions.jsonl") if row["step"] == 50
    ]
    assert len({row["completion"] for row in last}) < len(last)  # the collapse: the same output repeated
    assert all(CONSTANT[:-1] in row["completion"] for row in last)
    assert hacking["message"] in (out / "summary.md").read_text(encoding="utf-8")
    assert hacking["message"] in (out / "report.html").read_text(encoding="utf-8")


def test_hacking_warning_stays_silent_on_a_run_that_learns(tiny_encoder, tmp_path):
    """The reward pays each row's own reference: it rises, and the completions come to sit nearer
    their own reference than the batch's others (retrieval rises), so no warning."""
    config = write_config(tmp_path, tiny_encoder, grpo={"max_steps": 50, "learning_rate": 1.0e-2})
    out = tmp_path / "run"
    result = run_cli("train", "grpo", "--config", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "likely reward hacking" not in result.stderr
    hacking = json.loads((out / "train" / "grpo" / "metrics.json").read_text(encoding="utf-8"))["hacking"]
    trends = hacking["trends"]
    assert hacking["warning"] is False and hacking["message"] is None
    assert trends["reward"]["learned"] is True, trends["reward"]["reason"]  # it did learn
    assert trends["monitor/retrieval"]["ci95"][1] >= 0 and trends["monitor/distinct"]["ci95"][1] >= 0


# ---- the rule itself, on log histories the test writes -------------------------------------------


def history(reward, distinct=None, retrieval=None) -> list[dict]:
    """A GRPO-like log: one entry per logged step (every 2 steps), then the Trainer's summary."""
    entries = []
    for i, value in enumerate(reward):
        entry = {"step": 2 * (i + 1), "reward": value, "loss": 0.0}
        if distinct is not None:
            entry["monitor/distinct"] = distinct[i]
        if retrieval is not None:
            entry["monitor/retrieval"] = retrieval[i]
        entries.append(entry)
    return entries + [{"step": 2 * len(reward), "train_runtime": 1.0, "train_loss": 0.0}]


def wiggle(start: float, slope: float, n: int = 30) -> list[float]:
    return [start + slope * i + 0.01 * ((-1) ** i) for i in range(n)]


@pytest.mark.parametrize("falling", ["distinct", "retrieval"])
def test_rule_fires_when_reward_rises_and_a_monitor_falls(falling):
    from semrl.train.hacking import hacking_check

    monitors = {"distinct": wiggle(0.9, 0.0), "retrieval": wiggle(0.6, 0.0)}
    monitors[falling] = wiggle(0.9, -0.02)
    check = hacking_check(history(wiggle(0.2, 0.01), **monitors))
    assert check["warning"] is True
    assert check["steps"] == {"first": [2, 12], "last": [50, 60]}  # fifths of 30 logged steps: 6 each
    assert check["message"].startswith(
        "reward rising while outputs grow less specific: likely reward hacking (reward +"
    )
    assert check["message"].endswith("between steps 2-12 and 50-60)")
    assert f"{falling} -" in check["message"]
    assert check == hacking_check(history(wiggle(0.2, 0.01), **monitors))  # seeded: the same every time


@pytest.mark.parametrize(
    "reward, distinct, retrieval",
    [
        (wiggle(0.2, 0.01), wiggle(0.9, 0.0), wiggle(0.5, 0.01)),  # learns: reward and retrieval rise
        (wiggle(0.5, 0.0), wiggle(0.9, -0.02), wiggle(0.6, -0.01)),  # collapses, but the reward does not rise
        (wiggle(0.2, 0.01), None, None),  # no semantic term: no monitors logged, nothing to say
        (wiggle(0.2, 0.01)[:3], wiggle(0.9, -0.02)[:3], None),  # too short for a trend
    ],
    ids=["learns", "flat-reward", "no-monitors", "too-short"],
)
def test_rule_stays_silent(reward, distinct, retrieval):
    from semrl.train.hacking import hacking_check

    check = hacking_check(history(reward, distinct, retrieval))
    assert check["warning"] is False and check["message"] is None
    assert set(check["trends"]) == {"reward", "monitor/retrieval", "monitor/distinct"}
