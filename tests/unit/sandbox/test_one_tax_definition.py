"""The run report and the sandbox's C2 read the same curves the same way: fed the same (adequacy,
tax) points, the report's matched_quality and the sandbox's compare_methods give the same levels
and the same frontier taxes, a method's learning-rate arms pooled into one frontier."""

from __future__ import annotations

import json
import random

import pytest

from semrl.evaluate.tradeoff import matched_quality
from semrl.sandbox.grammar import random_meaning, realise_l
from semrl.sandbox.tradeoff import compare_methods
from semrl.sandbox.world import World, WorldSpec

N_ITEMS, N_QA = 40, 30


def test_the_report_and_the_sandbox_give_the_same_frontier_taxes_on_the_same_points(tmp_path):
    world = World(WorldSpec(seed=4))
    rng = random.Random(1)
    meanings = [random_meaning(rng, world.sizes) for _ in range(N_ITEMS)]
    wrong = [world.corrupt(world.corrupt(m, rng), rng) for m in meanings]
    eval_dir = tmp_path / "eval"
    (eval_dir / "curves").mkdir(parents=True)
    (eval_dir / "curves" / "base.json").write_text(
        json.dumps({"hypotheses": [""] * N_ITEMS, "general_items": {"qa": {"f1": [100.0] * N_QA}}})
    )

    def point(arm: str, step: int, share_right: float, lost_share: float) -> dict:
        hyps = [
            realise_l(m if i < share_right * N_ITEMS else w, world.lexicon)
            for i, (m, w) in enumerate(zip(meanings, wrong, strict=True))
        ]
        f1 = [0.0 if i < lost_share * N_QA else 100.0 for i in range(N_QA)]
        path = f"curves/{arm}/step-{step}.json"
        (eval_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (eval_dir / path).write_text(json.dumps({"hypotheses": hyps, "general_items": {"qa": {"f1": f1}}}))
        return {"step": step, "detail": path}

    shape = {  # (share of items right, share of QA items lost) per checkpoint
        "rl": [(0.0, 0.0), (0.5, 0.3), (0.4, 0.1), (1.0, 0.4)],  # non-monotone: step 2 is cheaper
        "sft_gentle": [(0.0, 0.0), (0.5, 0.1), (0.7, 0.2)],
        "sft_harsh": [(0.0, 0.0), (0.6, 0.6), (1.0, 0.9)],
    }
    results = {
        "arms": {arm: {"curve": [point(arm, s, *p) for s, p in enumerate(ps)]} for arm, ps in shape.items()}
    }
    methods = {"sft": ["sft_gentle", "sft_harsh"], "rl": ["rl"]}
    sandbox = compare_methods(eval_dir, results, methods, world, meanings, resamples=20)
    assert sandbox["testable"]

    def as_report_points(arms: list[str]) -> list[dict]:
        return [
            {"step": p["step"], "target": {"value": p["adequacy"]}, "tax": {"tax": p["tax"], "ci95": [0, 0]}}
            for arm in arms
            for p in sandbox["curves"][arm]
        ]

    report = matched_quality({"arms": {m: {"curve": as_report_points(arms)} for m, arms in methods.items()}})
    rows = report["sft vs rl"]
    assert [r["target"] for r in rows] == pytest.approx([lv["adequacy"] for lv in sandbox["levels"]])
    assert [r["rl"]["tax"] for r in rows] == pytest.approx([lv["tax_rl"] for lv in sandbox["levels"]])
    assert [r["sft"]["tax"] for r in rows] == pytest.approx([lv["tax_sft"] for lv in sandbox["levels"]])
    assert [-r["difference"] for r in rows] == pytest.approx([lv["difference"] for lv in sandbox["levels"]])
    # the pooled SFT frontier uses both arms: the gentle one low down, the harsh one above its reach
    gentle_top = max(p["adequacy"] for p in sandbox["curves"]["sft_gentle"])
    assert {r["sft"]["tax"] for r in rows if r["target"] <= gentle_top} <= {
        p["tax"] for p in sandbox["curves"]["sft_gentle"]
    }
    assert any(r["target"] > gentle_top for r in rows)
    assert {r["sft"]["tax"] for r in rows if r["target"] > gentle_top} <= {
        p["tax"] for p in sandbox["curves"]["sft_harsh"]
    }
