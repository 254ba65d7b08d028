"""The one definition of the alignment tax at matched quality (semrl.evaluate.tradeoff) on hand-made
curves: the frontier takes a side's gentlest point that reaches the quality, whatever the order of
its points; levels sit inside the overlap of both sides' ranges; the run report reads it per arm."""

from __future__ import annotations

import random

import pytest

from semrl.evaluate.tradeoff import (
    LEVELS,
    MIN_OVERLAP,
    compare_frontiers,
    frontier_index,
    frontier_tax,
    matched_levels,
    matched_quality,
)

GENTLE = [(0.2, 0.0), (0.3, 1.0), (0.4, 2.0)]
DESTRUCTIVE = [(0.2, 0.0), (0.35, 60.0), (0.45, 90.0)]


def test_the_frontier_takes_the_gentle_point_and_the_destructive_one_only_where_nothing_else_reaches():
    pooled = GENTLE + DESTRUCTIVE
    assert frontier_tax(pooled, 0.3) == 1.0
    assert frontier_tax(pooled, 0.38) == 2.0  # the destructive 0.45 point reaches too, at 90
    assert frontier_tax(pooled, 0.42) == 90.0  # only the destructive point gets there
    assert frontier_tax(pooled, 0.46) is None
    assert frontier_tax(pooled, 0.1) == 0.0  # the base reaches every level below its own quality


def test_the_frontier_reads_a_non_monotone_curve_by_what_each_point_reaches_not_by_step_order():
    # quality rises, dips, rises again; tax jumps at step 1 and falls back at step 2
    curve = [(0.1, 0.0), (0.5, 10.0), (0.45, 2.0), (0.6, 5.0)]
    assert frontier_tax(curve, 0.4) == 2.0  # step 2 reaches 0.4 at 2, not the first crossing's 7.5
    assert frontier_tax(curve, 0.48) == 5.0  # 0.45 no longer reaches; of 0.5 and 0.6 the cheaper
    assert frontier_index(curve, 0.48) == 3
    assert frontier_tax(curve, 0.61) is None


def test_the_frontier_never_falls_as_the_quality_asked_for_rises():
    rng = random.Random(3)
    points = [(rng.random(), rng.uniform(-5, 20)) for _ in range(30)]
    grid = [i / 100 for i in range(101)]
    taxes = [frontier_tax(points, q) for q in grid]
    top = max(q for q, _ in points)
    reached = [t for q, t in zip(grid, taxes, strict=True) if q <= top]
    assert reached == sorted(reached) and None not in reached
    assert reached[0] == min(t for _, t in points)
    assert all(t is None for q, t in zip(grid, taxes, strict=True) if q > top)


def test_a_tie_in_tax_goes_to_the_first_point():
    assert frontier_index([(0.5, 1.0), (0.7, 1.0), (0.9, 3.0)], 0.4) == 0


def test_levels_are_the_fixed_fractions_of_the_overlap_and_a_thin_or_missing_overlap_is_not_testable():
    a = [(0.2, 0.0), (0.8, 1.0)]
    b = [(0.4, 0.0), (1.0, 3.0)]
    where = matched_levels(a, b)
    assert where.overlap == (0.4, 0.8) and where.reason == ""
    assert where.levels == pytest.approx([0.4 + f * 0.4 for f in LEVELS])
    apart = matched_levels(a, [(0.9, 0.0), (1.0, 1.0)])
    assert apart.levels == [] and "overlap by 0.000" in apart.reason
    thin = matched_levels(a, [(0.8 - MIN_OVERLAP / 2, 0.0), (1.0, 1.0)])
    assert thin.levels == [] and f"< {MIN_OVERLAP}" in thin.reason
    assert matched_levels(a, []).reason == "a side has no points"


def test_compare_frontiers_subtracts_the_second_sides_frontier_and_says_none_where_one_side_stops():
    a = GENTLE
    b = [(0.2, 0.0), (0.5, 4.0)]
    rows = compare_frontiers(a, b, [0.25, 0.45])
    assert [(r.tax_a, r.tax_b, r.difference) for r in rows] == [(1.0, 4.0, -3.0), (None, 4.0, None)]
    assert rows[0].index_a == 1 and rows[0].index_b == 1


def _point(step: int, target: float, tax: float, half: float = 0.5) -> dict:
    return {"step": step, "target": {"value": target}, "tax": {"tax": tax, "ci95": [tax - half, tax + half]}}


def test_the_report_compares_arms_by_their_frontiers_with_each_chosen_checkpoints_own_interval():
    results = {
        "arms": {
            "rl": {
                "curve": [
                    _point(0, 0.2, 0.0, 0.0),
                    _point(1, 0.5, 3.0),
                    _point(2, 0.45, 1.0),
                    _point(3, 0.8, 4.0),
                ]
            },
            "sft": {"curve": [_point(0, 0.2, 0.0, 0.0), _point(1, 0.6, 5.0, 1.0), _point(2, 0.9, 8.0, 1.0)]},
            "no_curve": {},
        }
    }
    rows = matched_quality(results)["rl vs sft"]  # overlap [0.2, 0.8]
    assert [r["target"] for r in rows] == pytest.approx([0.26, 0.38, 0.5, 0.62, 0.74])
    assert [r["rl"]["step"] for r in rows] == [2, 2, 1, 3, 3]
    assert [r["rl"]["tax"] for r in rows] == [1.0, 1.0, 3.0, 4.0, 4.0]
    assert rows[0]["rl"]["ci95"] == [0.5, 1.5]  # step 2's own interval
    assert [r["sft"]["tax"] for r in rows] == [5.0, 5.0, 5.0, 8.0, 8.0]
    assert [r["difference"] for r in rows] == pytest.approx([-4.0, -4.0, -2.0, -4.0, -4.0])


def test_the_report_leaves_out_a_pair_whose_quality_ranges_do_not_overlap():
    results = {
        "arms": {
            "low": {"curve": [_point(0, 0.1, 0.0), _point(1, 0.3, 1.0)]},
            "high": {"curve": [_point(0, 0.5, 0.0), _point(1, 0.9, 1.0)]},
        }
    }
    assert matched_quality(results) == {}


def test_the_report_table_names_the_checkpoint_each_frontier_tax_comes_from():
    from semrl.report.tables import matched_table

    results = {
        "arms": {
            "a": {"curve": [_point(0, 0.2, 0.0), _point(10, 0.6, 3.0), _point(20, 0.5, 1.0)]},
            "b": {"curve": [_point(0, 0.2, 0.0), _point(10, 0.7, 5.0)]},
        }
    }
    results["matched_quality"] = matched_quality(results)
    table = matched_table(results)
    assert table is not None
    title, _, rows = table
    assert "no joint bootstrap" in title
    assert rows[0][1:] == ["0.2400", "1.00 [0.50, 1.50] (step 20)", "5.00 [4.50, 5.50] (step 10)", "-4.00"]
