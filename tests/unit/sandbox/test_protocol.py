"""The demo's protocol (issue 20) on constructed inputs: the dev split is disjoint from train and test,
each method's learning rate is chosen on dev among arms that learned, C2 compares frontiers (a
destructive learning rate does not count against a method that also has a gentle one), the claims
come in two variants with the old rule beside, and the oracle's hacked verdict follows its rule."""

from __future__ import annotations

import json
import random

from semrl.evaluate.tradeoff import frontier_tax
from semrl.sandbox.claims import judge_claims
from semrl.sandbox.protocol import oracle_hacked
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


def test_choose_takes_the_best_eligible_arm_on_dev_and_ties_go_to_the_earlier_multiple():
    dev = {
        a: {"adequacy": {"value": v}}
        for a, v in {"rl_x0.3": 0.30, "rl": 0.30, "rl_x3": 0.50, "sft_x0.3": 0.2, "sft": 0.4}.items()
    }
    chosen = choose(dev, {"rl": ["rl_x0.3", "rl", "rl_x3"]}, eligible={"rl_x0.3", "rl"})
    assert chosen["rl"]["arm"] == "rl_x0.3"  # rl_x3 is best but did not learn; tie -> the earlier multiple
    assert choose(dev, {"sft": ["sft_x0.3", "sft"]})["sft"]["arm"] == "sft"
    assert choose(dev, {"rl": ["rl_x3"]}, eligible=set())["rl"]["arm"] is None


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


def test_claims_come_in_two_variants_read_from_the_chosen_arms_with_the_old_rule_beside():
    rng = random.Random(0)
    n = 40
    good = [rng.choice([0.8, 1.0]) for _ in range(n)]
    oracle = {
        "cold_sft": _oracle([0.4] * n),
        "strong_sft_x0.3": _oracle([0.6] * n),
        "strong_sft": _oracle([0.5] * n),
        "semantic_rl": _oracle([0.4] * n),
        "corrected_rl_x0.3": _oracle(good),
        "corrected_rl": _oracle([0.4] * n),
        "bleu_sem": _oracle(good),
        "bleu_sem_lang": _oracle(good),
    }
    ev = {
        "oracle": oracle,
        "segments": {},
        "transfer_oracle": {},
        "c6": None,
        "trends": {a: LEARNED for a in oracle},
        "tradeoff": {},
        "tradeoffs": {"paper": {}, "corrected": {}},
        "selection": {"sft": "strong_sft_x0.3", "paper": None, "corrected": "corrected_rl_x0.3"},
        "selection_reasons": {"paper": "no arm of paper is eligible"},
        "x1_arms": {"paper": "semantic_rl", "corrected": "corrected_rl"},
    }
    claims = judge_claims(ev)
    keys = [c["id"] + (f" ({c['variant']})" if c.get("variant") else "") for c in claims]
    assert keys == [
        "C1 (paper)",
        "C1 (corrected)",
        "C2 (paper)",
        "C2 (corrected)",
        "C3 (paper)",
        "C3 (corrected)",
        "C4",
        "C5 (paper)",
        "C5 (corrected)",
    ]
    by = {k: c for k, c in zip(keys, claims, strict=True)}
    assert by["C1 (paper)"]["status"] == "not testable" and "no arm of paper" in by["C1 (paper)"]["reason"]
    assert by["C1 (corrected)"]["status"] == "reproduced"  # the chosen x0.3 arm beats the cold start
    old = by["C1 (corrected)"]["evidence"]["old_rule"]
    assert old["arms"]["rl"] == "corrected_rl" and old["status"] == "not reproduced"  # the x1 arm does not
    assert by["C1 (corrected)"]["evidence"]["arms"] == {"rl": "corrected_rl_x0.3", "sft": "strong_sft_x0.3"}


def test_the_oracle_calls_an_arm_hacked_when_its_reward_rose_and_its_adequacy_did_not():
    n = 30
    oracle = {"cold_sft": _oracle([0.5] * n), "flat": _oracle([0.5] * n), "up": _oracle([0.9] * n)}
    assert oracle_hacked("flat", oracle, {"flat": LEARNED})["hacked"] is True
    assert oracle_hacked("up", oracle, {"up": LEARNED})["hacked"] is False
    assert (
        oracle_hacked("flat", oracle, {"flat": FLAT})["hacked"] is False
    )  # reward did not rise: not hacking
