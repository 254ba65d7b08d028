"""The stall diagnosis of a real GRPO stage (run_grpo under the pipeline's record_stage, TRL's
GRPOTrainer, the tiny Llama, MiniLM): the stall/* keys reach log_history.json, metrics.json and the
manifest, agree with what TRL wrote beside them (completions.jsonl holds each logged batch's terms
and advantages), and the report's tables show them."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import sample_lines
from semrl.experiment_config import GRPOSpec
from semrl.pipeline.experiment import record_stage
from semrl.report.stall import stall_table
from semrl.report.tables import all_tables, markdown
from semrl.rewards import RewardConfig
from semrl.run_folder import Run
from semrl.train.grpo import run_grpo
from semrl.train.settings import StageSettings

GROUP = 4
SUMMARY = ("first", "last", "mean", "n")


def grpo_stage(
    tiny_lm: Path, root: Path, rewards: dict, **grpo: object
) -> tuple[list[dict], dict, list[dict], dict]:
    """Three logged steps of two prompts x four completions, as arm `rl`'s grpo stage of a run in
    `root`; (log history, metrics.json, completions.jsonl, the manifest's stages)."""
    records = [
        {"prompt": f"{zh} =>", "reference": bo}
        for zh, bo in zip(sample_lines("zh.txt")[:8], sample_lines("bo.txt")[:8], strict=True)
    ]
    spec = GRPOSpec(
        max_steps=3,
        num_generations=GROUP,
        prompts_per_step=2,
        max_completion_length=8,
        learning_rate=1e-3,
        temperature=1.0,
        logging_steps=1,
        save_steps=100,
        **grpo,
    )
    config = RewardConfig.model_validate(rewards)
    run, out = Run(root), root / "rl" / "grpo"
    record_stage(
        run,
        "rl/grpo",
        out,
        lambda: run_grpo(StageSettings(seed=0), spec, config, str(tiny_lm), records, out, "cpu"),
    )
    history = json.loads((out / "log_history.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "completions.jsonl").read_text(encoding="utf-8").splitlines()]
    return [entry for entry in history if "reward" in entry], metrics, rows, run.manifest()["stages"]


def groups(rows: list[dict], step: int) -> list[list[dict]]:
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["step"] == step:
            by_prompt[json.dumps(row["prompt"])].append(row)
    assert all(len(group) == GROUP for group in by_prompt.values())
    return list(by_prompt.values())


@pytest.fixture(scope="module")
def contrast_stage(tiny_lm, tmp_path_factory):
    rewards = {
        "rewards": [
            {"type": "semantic", "weight": 1.5, "tau": 0.0, "contrast": {"bank": 8, "k": 2}},
            {"type": "language", "weight": 1.0, "lang": "bo", "mode": "continuous"},
        ]
    }
    return grpo_stage(tiny_lm, tmp_path_factory.mktemp("stall") / "run", rewards)


def test_every_logged_step_has_the_stall_keys_and_they_match_the_logged_batch(contrast_stage):
    steps, _, rows, _ = contrast_stage
    assert [entry["step"] for entry in steps] == [1, 2, 3]
    for entry in steps:
        keys = {
            "stall/std/semantic",
            "stall/std/language",
            "stall/std_total",
            "stall/advantage_abs",
            "frac_reward_zero_std",
            *(f"stall/{kind}/semantic" for kind in ("floored", "rank_disagreement", "discordant_pairs")),
            *(f"stall/{kind}/semantic" for kind in ("std_cosine", "std_contrast")),
        }
        assert keys <= set(entry)
        assert all(math.isfinite(entry[key]) for key in keys)
        assert {k for k in entry if k.startswith("stall/") and k.endswith("/language")} == {
            "stall/std/language"
        }
        assert 0.0 <= entry["stall/rank_disagreement/semantic"] <= 1.0
        assert 0.0 <= entry["stall/discordant_pairs/semantic"] <= entry["stall/rank_disagreement/semantic"]
        # recomputed from completions.jsonl, TRL's own record of the batch this step learned from
        batch = groups(rows, entry["step"])
        for term in ("semantic", "language"):
            spread = statistics.mean(statistics.stdev(r["rewards"][term] for r in g) for g in batch)
            assert entry[f"stall/std/{term}"] == pytest.approx(spread, abs=1e-6)
        total = statistics.mean(statistics.stdev(r["reward"] for r in g) for g in batch)
        assert entry["stall/std_total"] == pytest.approx(total, abs=1e-5)
        advantage = statistics.mean(abs(r["advantage"]) for g in batch for r in g)
        assert entry["stall/advantage_abs"] == pytest.approx(advantage, abs=1e-6)
        if entry["stall/floored/semantic"] == 1.0:  # every s' at or below tau: the term pays 0 throughout
            assert entry["reward/semantic"] == 0.0 and entry["stall/std/semantic"] == 0.0
    assert max(entry["stall/advantage_abs"] for entry in steps) > 0.1  # the continuous language term varies


def test_metrics_json_summarises_each_stall_key_and_the_report_shows_the_table(contrast_stage):
    steps, metrics, _, stages = contrast_stage
    for key in ("stall/std/semantic", "stall/advantage_abs", "stall/rank_disagreement/semantic"):
        assert set(metrics[key]) == set(SUMMARY)
        logged = [entry[key] for entry in steps]
        assert metrics[key]["mean"] == pytest.approx(sum(logged) / len(logged))
        assert (metrics[key]["first"], metrics[key]["last"], metrics[key]["n"]) == (logged[0], logged[-1], 3)
    assert metrics["frac_reward_zero_std"]["n"] == 3 and "reward_std" in metrics

    tables = all_tables({"arms": {}, "training": stages})  # results.json's training: the manifest's stages
    title, header, rows = next(t for t in tables if t[0].startswith("Stall diagnosis"))
    assert header[:3] == ["stage", "std semantic", "std language"]
    assert {"mean abs advantage", "≤ tau semantic", "reordered by semantic (groups / pairs)"} <= set(header)
    assert rows[0][0] == "rl/grpo"
    mean_adv = rows[0][header.index("mean abs advantage")]
    assert mean_adv.startswith(f"{metrics['stall/advantage_abs']['mean']:.3f} (")
    print(markdown((title, header, rows)))
    assert "| rl/grpo |" in markdown((title, header, rows))
    arms = stall_table({"corrected_rl_x1": metrics, "sft": {"loss": {"first": 1.0}}}, first="arm")
    assert arms is not None and arms[1][0] == "arm" and [row[0] for row in arms[2]] == ["corrected_rl_x1"]


def test_a_reward_that_pays_every_completion_alike_gives_zero_advantage(tiny_lm, tmp_path):
    """The semantic term varies inside each group, but a language gate no output can pass (Arabic
    script from a policy that has never seen it) multiplies the total by 0: no group has any
    spread, and TRL's advantages are all 0."""
    rewards = {
        "rewards": [{"type": "semantic", "weight": 1.0, "tau": 0.0}],
        "gate": {"type": "language", "lang": "ar"},
    }
    steps, metrics, _, _ = grpo_stage(tiny_lm, tmp_path / "run", rewards)
    assert len(steps) == 3
    for entry in steps:
        assert entry["reward"] == 0.0 and entry["stall/std/gate/language"] == 0.0
        assert entry["stall/std_total"] == 0.0
        assert entry["frac_reward_zero_std"] == 1.0
        assert entry["stall/advantage_abs"] == 0.0
        assert not any("rank_disagreement" in key for key in entry)  # no contrast: nothing to reorder
        assert 0.0 <= entry["stall/floored/semantic"] <= 1.0
    assert metrics["stall/std/semantic"]["mean"] > 0.0  # the term had spread; the gate took it away
    assert metrics["stall/advantage_abs"] == {"first": 0.0, "last": 0.0, "mean": 0.0, "n": 3}


def test_with_one_reward_function_per_term_each_term_still_has_its_spread(tiny_lm, tmp_path):
    """normalize_then_sum hands TRL each term as its own function: the spreads come from TRL's
    per-function columns, and match completions.jsonl as under the composed reward."""
    rewards = {
        "rewards": [
            {"type": "semantic", "weight": 1.0, "tau": 0.0},
            {"type": "language", "weight": 0.5, "lang": "bo", "mode": "continuous"},
        ]
    }
    steps, _, rows, _ = grpo_stage(
        tiny_lm, tmp_path / "run", rewards, multi_objective_aggregation="normalize_then_sum"
    )
    for entry in steps:
        batch = groups(rows, entry["step"])
        for term in ("semantic", "language"):
            spread = statistics.mean(statistics.stdev(r["rewards"][term] for r in g) for g in batch)
            assert entry[f"stall/std/{term}"] == pytest.approx(spread, abs=1e-6)
        total = statistics.mean(
            statistics.stdev(r["rewards"]["semantic"] + 0.5 * r["rewards"]["language"] for r in g)
            for g in batch
        )
        assert entry["stall/std_total"] == pytest.approx(total, abs=1e-5)
        advantage = statistics.mean(abs(r["advantage"]) for g in batch for r in g)
        assert entry["stall/advantage_abs"] == pytest.approx(advantage, abs=1e-6)
