"""The sandbox's claim rules and analyses on constructed inputs: each status is reachable, no claim
depends on the training reward's trend, and the trade-off compares methods only where their curves
overlap."""

from __future__ import annotations

import json
import random

import pytest

from semrl.sandbox.claims import NON_INFERIORITY_MARGIN, judge_claims
from semrl.sandbox.grammar import random_meaning, realise_l
from semrl.sandbox.measures import chance_adequacy, judge_outputs
from semrl.sandbox.world import World, WorldSpec

LEARNED = {"value": 0.3, "ci95": [0.1, 0.5], "learned": True}
FLAT = {"value": 0.01, "ci95": [-0.05, 0.07], "learned": False}


def _oracle(adequacy: list[float], purity: list[float] | None = None) -> dict:
    return {
        "adequacy": {"items": adequacy, "value": sum(adequacy) / len(adequacy)},
        "purity": {"items": purity or [1.0] * len(adequacy)},
    }


def _evidence(rl: list[float], cold: list[float], sft: list[float], trend=LEARNED, **extra) -> dict:
    n = len(rl)
    ev = {
        "oracle": {
            "semantic_rl": _oracle(rl),
            "cold_sft": _oracle(cold),
            "strong_sft": _oracle(sft),
            "bleu_sem": _oracle(rl, [0.7] * n),
            "bleu_sem_lang": _oracle(rl, [1.0] * n),
        },
        "segments": {
            "strong_sft:bleu": [40.0 + (i % 3) for i in range(n)],
            "semantic_rl:bleu": [20.0 + (i % 5) for i in range(n)],
        },
        "trends": {"semantic_rl": trend, "bleu_sem": trend, "bleu_sem_lang": trend},
        "tradeoff": {
            "testable": False,
            "methods": {"rl": ["semantic_rl"], "sft": ["strong_sft"]},
            "reason": "no curves",
        },
        "transfer_oracle": {},
        "c6": None,
    }
    ev.update(extra)
    return ev


def _by_id(claims):
    return {c["id"]: c for c in claims}


def test_every_claim_has_a_status_a_reason_and_the_boolean():
    rng = random.Random(0)
    rl = [rng.choice([0.8, 1.0]) for _ in range(40)]
    claims = judge_claims(_evidence(rl, [0.4] * 40, [0.6] * 40))
    for c in claims:
        assert c["status"] in ("reproduced", "not reproduced", "not testable")
        assert c["reproduced"] == (c["status"] == "reproduced") and c["reason"]
    by = _by_id(claims)
    assert by["C1"]["status"] == "reproduced"  # RL adequacy clearly above the cold start
    assert by["C3"]["status"] == "reproduced"  # SFT keeps more BLEU, RL's meaning is not worse
    assert by["C4"]["status"] == "reproduced"  # purity drops without the language reward
    assert by["C2"]["status"] == "not testable" and by["C5"]["status"] == "not testable"


def test_a_flat_training_reward_does_not_decide_a_claim_the_outputs_do():
    flat = _by_id(judge_claims(_evidence([1.0] * 40, [0.2] * 40, [0.5] * 40, trend=FLAT)))
    rose = _by_id(judge_claims(_evidence([1.0] * 40, [0.2] * 40, [0.5] * 40, trend=LEARNED)))
    for cid in ("C1", "C3", "C4"):
        assert flat[cid]["status"] == rose[cid]["status"] == "reproduced"


def test_c1_not_reproduced_when_rl_is_no_better_than_cold_start():
    same = [0.6, 0.8] * 20
    assert _by_id(judge_claims(_evidence(same, same, same)))["C1"]["status"] == "not reproduced"


def test_c3_needs_meaning_within_the_margin():
    worse = [0.2] * 40  # RL far below SFT in adequacy, although SFT has more BLEU
    c3 = _by_id(judge_claims(_evidence(worse, worse, [0.9] * 40)))["C3"]
    assert c3["status"] == "not reproduced" and str(NON_INFERIORITY_MARGIN) in c3["reason"]


def test_c5_is_not_testable_when_both_transferred_models_are_at_chance():
    chance = {"chance": 0.3, "rl": _oracle([0.0, 0.33] * 20), "sft": _oracle([0.0, 0.33] * 20)}
    for entry in ("rl", "sft"):
        chance[entry]["adequacy"]["ci95"] = [0.10, 0.22]
    c5 = _by_id(judge_claims(_evidence([1.0] * 40, [0.2] * 40, [0.5] * 40, transfer_oracle=chance)))["C5"]
    assert c5["status"] == "not testable" and "chance" in c5["reason"]
    good = {"chance": 0.1, "rl": _oracle([0.9, 1.0] * 20), "sft": _oracle([0.9, 1.0] * 20)}
    for entry in ("rl", "sft"):
        good[entry]["adequacy"]["ci95"] = [0.9, 1.0]
    c5 = _by_id(judge_claims(_evidence([1.0] * 40, [0.2] * 40, [0.5] * 40, transfer_oracle=good)))["C5"]
    assert c5["status"] == "reproduced"


def test_c2_status_follows_the_joint_interval():
    def tradeoff(ci):
        return {
            "testable": True,
            "methods": {"rl": ["semantic_rl"], "sft": ["strong_sft"]},
            "mean_difference": {"value": sum(ci) / 2, "ci95": ci},
            "levels": [],
        }

    ev = _evidence([1.0] * 40, [0.2] * 40, [0.5] * 40)
    assert _by_id(judge_claims({**ev, "tradeoff": tradeoff([-9.0, -2.0])}))["C2"]["status"] == "reproduced"
    assert _by_id(judge_claims({**ev, "tradeoff": tradeoff([-9.0, 2.0])}))["C2"]["status"] == "not reproduced"
    none_learned = {"testable": False, "methods": {"rl": [], "sft": ["strong_sft"]}, "reason": ""}
    assert _by_id(judge_claims({**ev, "tradeoff": none_learned}))["C2"]["status"] == "not testable"


def test_oracle_verdicts_split_covered_and_uncovered_concepts_and_count_distinct_outputs():
    world = World(WorldSpec(seed=4))
    rng = random.Random(0)
    meanings = [random_meaning(rng, world.sizes) for _ in range(30)]
    perfect = judge_outputs([realise_l(m, world.lexicon, rng) for m in meanings], meanings, world)
    assert perfect["adequacy"]["value"] == 1.0 and perfect["distinct"] == 30
    assert perfect["coverage"]["covered"]["value"] == 1.0 and perfect["coverage"]["uncovered"]["value"] == 1.0
    one = realise_l(meanings[0], world.lexicon)
    constant = judge_outputs([one] * 30, meanings, world)
    assert constant["distinct"] == 1 and constant["adequacy"]["value"] < 0.5
    # the chance line: one uniformly random concept per slot
    sizes = world.sizes
    assert chance_adequacy(world) == pytest.approx(sum(1 / sizes[s] for s in sizes) / 5)


def test_tradeoff_compares_pooled_methods_only_where_the_curves_overlap(tmp_path):
    """Constructed curves: SFT gains adequacy with a steep tax, RL with a small one; the joint
    bootstrap interval then lies below zero. Without overlap the comparison is not testable."""
    from semrl.sandbox.tradeoff import compare_methods

    world = World(WorldSpec(seed=4))
    rng = random.Random(1)
    meanings = [random_meaning(rng, world.sizes) for _ in range(40)]
    wrong = [world.corrupt(world.corrupt(m, rng), rng) for m in meanings]
    eval_dir = tmp_path / "eval"
    (eval_dir / "curves").mkdir(parents=True)
    base_items = {"qa": {"f1": [100.0] * 30}}
    (eval_dir / "curves" / "base.json").write_text(
        json.dumps({"hypotheses": [""] * 40, "general_items": base_items})
    )

    def point(arm, step, share_right, f1):
        hyps = [
            realise_l(m if i < share_right * 40 else w, world.lexicon)
            for i, (m, w) in enumerate(zip(meanings, wrong, strict=True))
        ]
        path = f"curves/{arm}/step-{step}.json"
        (eval_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (eval_dir / path).write_text(json.dumps({"hypotheses": hyps, "general_items": {"qa": {"f1": f1}}}))
        return {"step": step, "detail": path}

    def f1(lost_share):
        return [0.0 if i < lost_share * 30 else 100.0 for i in range(30)]

    results = {
        "arms": {
            "sft": {
                "curve": [
                    point("sft", 1, 0.0, f1(0.0)),
                    point("sft", 2, 0.5, f1(0.4)),
                    point("sft", 3, 1.0, f1(0.8)),
                ]
            },
            "rl": {
                "curve": [
                    point("rl", 1, 0.0, f1(0.0)),
                    point("rl", 2, 0.5, f1(0.05)),
                    point("rl", 3, 1.0, f1(0.1)),
                ]
            },
        }
    }
    analysis = compare_methods(
        eval_dir, results, {"sft": ["sft"], "rl": ["rl"]}, world, meanings, resamples=200
    )
    assert analysis["testable"] and analysis["mean_difference"]["ci95"][1] < 0
    assert len(analysis["levels"]) == 5 and all(row["difference"] < 0 for row in analysis["levels"])
    results["arms"]["rl"]["curve"] = [point("rl", 1, 0.0, f1(0.0)), point("rl", 2, 0.0, f1(0.0))]
    apart = compare_methods(eval_dir, results, {"sft": ["sft"], "rl": ["rl"]}, world, meanings, resamples=50)
    assert not apart["testable"] and "overlap" in apart["reason"]
