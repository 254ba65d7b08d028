"""The demo's protocol on constructed inputs: the dev split is disjoint from train and test, each
method's point (arm, checkpoint) is chosen on dev over every arm, C1 is "not reproduced" when no RL
point beats the cold start on dev, the claims come once per variant, and the oracle's class of an
RL arm (hacked, learned, flat) follows its rule."""

from __future__ import annotations

import json
import random

from semrl.evaluate.tradeoff import frontier_tax
from semrl.sandbox.claims import judge_claims
from semrl.sandbox.protocol import oracle_verdict
from semrl.sandbox.selection import choose
from semrl.sandbox.world import WorldSpec, write_world

LEARNED = {"value": 0.3, "ci95": [0.1, 0.5], "learned": True}
FLAT = {"value": 0.01, "ci95": [-0.05, 0.07], "learned": False}


def test_the_dev_split_is_unbiased_and_disjoint_from_train_and_test(tmp_path):
    spec = WorldSpec.model_validate({"parallel": {"train": 200, "test": 40, "dev": 30}})
    write_world(spec, tmp_path)
    rows = {
        name: [
            json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        for name in ("mt_train", "mt_test", "mt_dev")
    }
    dev = {tuple(r["meaning"]) for r in rows["mt_dev"]}
    assert len(rows["mt_dev"]) == 30 and len(dev) == 30
    assert not dev & {tuple(r["meaning"]) for r in rows["mt_train"] + rows["mt_test"]}
    agents = {r["meaning"][0] for r in rows["mt_dev"]}
    assert max(agents) >= spec.parallel.bias["agent"]  # not restricted to the narrow data's concepts


def _dev(values: dict[str, dict[int, float]]) -> dict[str, dict[int, dict]]:
    return {
        arm: {step: {"adequacy": {"value": v}, "model": f"{arm}/{step}"} for step, v in steps.items()}
        for arm, steps in values.items()
    }


def test_choose_takes_the_best_point_over_arms_and_checkpoints_ties_to_the_earlier_multiple_then_step():
    dev = _dev({"rl_x0.3": {20: 0.30, 40: 0.35}, "rl": {20: 0.35, 40: 0.2}, "rl_x3": {20: 0.1, 40: 0.3}})
    chosen = choose(dev, {"rl": ["rl_x0.3", "rl", "rl_x3"]})["rl"]
    assert (chosen["arm"], chosen["step"], chosen["key"]) == ("rl_x0.3", 40, "rl_x0.3@40")
    assert chosen["model"] == "rl_x0.3/40" and len(chosen["dev_adequacy"]) == 6
    tied = choose(_dev({"a": {10: 0.5, 20: 0.5}, "b": {5: 0.5}}), {"m": ["a", "b"]})["m"]
    assert tied["key"] == "a@10"  # the earlier multiple, then the earlier step
    assert choose(dev, {"none": ["missing"]})["none"]["arm"] is None


def test_the_frontier_keeps_a_methods_gentle_learning_rate_over_its_destructive_one():
    gentle = [(0.2, 0.0), (0.3, 1.0), (0.4, 2.0)]
    destructive = [(0.2, 0.0), (0.35, 60.0), (0.45, 90.0)]
    assert frontier_tax(gentle + destructive, 0.3) == 1.0
    assert frontier_tax(gentle + destructive, 0.42) == 90.0  # only the destructive arm gets there
    assert frontier_tax(gentle, 0.5) is None


def _oracle(values):
    return {
        "adequacy": {"items": values, "value": sum(values) / len(values)},
        "purity": {"items": [1.0] * len(values)},
    }


def _ev(oracle, selection, beats):
    return {
        "oracle": oracle,
        "segments": {},
        "transfer_oracle": {},
        "c6": None,
        "tradeoffs": {v: {} for v in selection if v != "sft"},
        "selection": selection,
        "selection_reasons": {},
        "beats_cold": beats,
    }


def test_claims_come_once_per_variant_read_from_the_chosen_points():
    rng = random.Random(0)
    n = 40
    good = [rng.choice([0.8, 1.0]) for _ in range(n)]
    oracle = {
        "cold_sft": _oracle([0.4] * n),
        "strong_sft_x0.3@20": _oracle([0.6] * n),
        "semantic_rl@40": _oracle([0.4] * n),
        "retrieval_rl_x0.3@60": _oracle(good),
        "bleu_sem": _oracle(good),
        "bleu_sem_lang": _oracle(good),
    }
    selection = {"sft": "strong_sft_x0.3@20", "paper": "semantic_rl@40", "retrieval": "retrieval_rl_x0.3@60"}
    beats = {
        "paper": {"beats": False, "point_dev_adequacy": 0.2, "cold_dev_adequacy": 0.25},
        "retrieval": {"beats": True, "point_dev_adequacy": 0.3, "cold_dev_adequacy": 0.25},
    }
    claims = judge_claims(_ev(oracle, selection, beats))
    keys = [c["id"] + (f" ({c['variant']})" if c.get("variant") else "") for c in claims]
    assert keys == [
        "C1 (paper)",
        "C1 (retrieval)",
        "C2 (paper)",
        "C2 (retrieval)",
        "C3 (paper)",
        "C3 (retrieval)",
        "C4",
        "C5 (paper)",
        "C5 (retrieval)",
    ]
    by = {k: c for k, c in zip(keys, claims, strict=True)}
    # no RL point beat the cold start on dev: not reproduced (not "not testable"), without reading test
    assert by["C1 (paper)"]["status"] == "not reproduced" and "on dev" in by["C1 (paper)"]["reason"]
    assert by["C1 (retrieval)"]["status"] == "reproduced"  # the chosen point beats the cold start on test
    assert by["C1 (retrieval)"]["evidence"]["arms"] == {
        "rl": "retrieval_rl_x0.3@60",
        "sft": "strong_sft_x0.3@20",
    }
    # a point that beat the cold start on dev but not on test is read on test: not reproduced
    beats["paper"] = {"beats": True, "point_dev_adequacy": 0.3, "cold_dev_adequacy": 0.25}
    again = {c["id"] + f" ({c.get('variant')})": c for c in judge_claims(_ev(oracle, selection, beats))}
    assert again["C1 (paper)"]["status"] == "not reproduced"
    assert "interval does not exclude 0" in again["C1 (paper)"]["reason"]


def test_the_oracle_classes_an_arm_learned_hacked_or_flat():
    n = 30
    oracle = {"cold_sft": _oracle([0.5] * n), "flat": _oracle([0.5] * n), "up": _oracle([0.9] * n)}
    assert oracle_verdict("flat", oracle, {"flat": LEARNED})["class"] == "hacked"
    assert oracle_verdict("up", oracle, {"up": LEARNED})["class"] == "learned"
    assert oracle_verdict("up", oracle, {"up": FLAT})["class"] == "learned"  # meaning rose without the reward
    assert oracle_verdict("flat", oracle, {"flat": FLAT})["class"] == "flat"
    assert oracle_verdict("missing", oracle, {})["class"] is None


def test_candidate_points_are_the_last_stages_checkpoints_and_its_final_model(tmp_path):
    from semrl.sandbox.selection import candidate_points

    grpo = tmp_path / "rl" / "grpo"
    for folder in ("checkpoint-20", "checkpoint-40", "final", "checkpoint-60-broken"):
        (grpo / folder).mkdir(parents=True)
    for folder in ("checkpoint-20", "checkpoint-40", "final"):
        (grpo / folder / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "rl" / "sft" / "final").mkdir(parents=True)  # the cold start is not a candidate
    stages = {key: {"folder": key} for key in ("rl/sft", "rl/grpo")}
    (tmp_path / "manifest.json").write_text(json.dumps({"stages": stages}), encoding="utf-8")
    (grpo / "metrics.json").write_text(json.dumps({"steps": 50}), encoding="utf-8")
    assert candidate_points(tmp_path, "rl") == [
        (20, grpo / "checkpoint-20"),
        (40, grpo / "checkpoint-40"),
        (50, grpo / "final"),
    ]
    (grpo / "metrics.json").write_text(json.dumps({"steps": 40}), encoding="utf-8")
    assert candidate_points(tmp_path, "rl")[-1] == (40, grpo / "checkpoint-40")  # final = last checkpoint
    assert candidate_points(tmp_path, "missing") == []
