"""Claim C6 (reward-model transfer) judged from per-pair correctness vectors: not testable when the
H-trained RM did not learn H, reproduced when it is not worse on L than the machine-translated-L RM
by more than the margin, not reproduced otherwise."""

from __future__ import annotations

import pytest

from semrl.sandbox.rm_claim import LEARNED, MARGIN, c6_claim


def hits(correct: int, n: int) -> list[float]:
    return [1.0] * correct + [0.0] * (n - correct)


def rm_result(h_on_h: list[float], h_on_l: list[float], l_on_l: list[float], ceiling: list[float]) -> dict:
    return {
        "per_pair": {"rm_h_on_h": h_on_h, "rm_h_on_l": h_on_l, "rm_l_on_l": l_on_l, "ceiling_on_l": ceiling},
        "resamples": 500,
        "seed": 0,
    }


def check_shape(claim: dict) -> None:
    assert claim["id"] == "C6" and claim["statement"]
    assert claim["status"] in ("reproduced", "not reproduced", "not testable")
    assert claim["reproduced"] == (claim["status"] == "reproduced")
    assert isinstance(claim["reason"], str) and claim["reason"]


def test_c6_not_testable_when_the_h_rm_did_not_learn_h():
    # 65% on held-out H, but with 20 pairs the interval reaches well below 0.6: not learned
    claim = c6_claim(rm_result(hits(13, 20), hits(18, 20), hits(10, 20), hits(19, 20)))
    check_shape(claim)
    assert claim["status"] == "not testable" and not claim["reproduced"]
    assert claim["evidence"]["rm_h_on_h"]["ci95"][0] <= LEARNED
    assert "did not learn H" in claim["reason"]
    assert c6_claim({})["status"] == "not testable"  # no RM results at all


def test_c6_reproduced_when_h_rm_is_at_least_as_good_on_l():
    # the H RM learned H (95/100) and is as good on L as the machine-translated-L RM
    same = [1.0, 0.0] * 50
    claim = c6_claim(rm_result(hits(95, 100), same, same, hits(90, 100)))
    check_shape(claim)
    assert claim["status"] == "reproduced" and claim["reproduced"]
    diff = claim["evidence"]["h_minus_mt_l_on_l"]
    assert diff["difference"] == 0.0 and diff["ci95"][0] > -MARGIN
    assert claim["evidence"]["ceiling_on_l"]["accuracy"] == 0.9


def test_c6_not_reproduced_when_h_rm_is_clearly_worse_on_l():
    # the H RM learned H but is at chance on L while the mtL RM gets 90%: far more than 5 points worse
    claim = c6_claim(rm_result(hits(95, 100), [1.0, 0.0] * 50, hits(90, 100), hits(95, 100)))
    check_shape(claim)
    assert claim["status"] == "not reproduced" and not claim["reproduced"]
    diff = claim["evidence"]["h_minus_mt_l_on_l"]
    assert diff["difference"] == pytest.approx(-0.4) and diff["ci95"][1] < -MARGIN


def test_c6_margin_is_a_lower_bound_on_the_paired_interval():
    # 3 points worse (the paper's gap size, in the other direction) with a tight paired interval:
    # reproduced; the same 3-point gap from many disagreements (interval past -5 points): not
    l_on_l = hits(900, 1000)
    tight = l_on_l[:]
    tight[:30] = [0.0] * 30  # the H RM misses 30 pairs the mtL RM gets and agrees on the rest
    claim = c6_claim(rm_result(hits(95, 100), tight, l_on_l, []))
    assert claim["evidence"]["h_minus_mt_l_on_l"]["difference"] == pytest.approx(-0.03)
    assert claim["status"] == "reproduced"
    noisy_h = [1.0] * 60 + [0.0] * 40  # right on pairs 0-59
    noisy_l = [0.0] * 37 + [1.0] * 63  # right on pairs 37-99
    claim = c6_claim(rm_result(hits(95, 100), noisy_h, noisy_l, []))
    assert claim["evidence"]["h_minus_mt_l_on_l"]["difference"] == pytest.approx(-0.03)
    assert claim["status"] == "not reproduced"
    assert claim["evidence"]["h_minus_mt_l_on_l"]["ci95"][0] < -MARGIN
    assert "ceiling_on_l" not in claim["evidence"]  # no ceiling vector given
