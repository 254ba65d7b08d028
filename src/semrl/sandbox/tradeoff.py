"""C2 as a fair test: the alignment tax of each method at the same oracle adequacy.

Every arm's checkpoint curve (step 0 = the base, then each kept checkpoint) is re-scored with the
oracle. A method's tax at adequacy q is its frontier over every point of every learning-rate arm
(semrl.evaluate.tradeoff, the definition the run report uses too), compared at fixed fractions of
the adequacy range both methods reach.

The interval is a joint bootstrap: each resample draws the test items and every general
benchmark's items once and applies the draw to every point of both methods (the frontier is
recomputed in each resample), so the pairing across points is kept. A frontier is a minimum over
points, so a method with more points gains a little from noise; the resampled minimum carries that
noise into the interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semrl.api import (
    PRIMARY,
    Point,
    atomic_savefig,
    compare_frontiers,
    matched_levels,
    percentile_interval,
    read_json,
)
from semrl.sandbox.grammar import Meaning
from semrl.sandbox.oracle import judge
from semrl.sandbox.world import World


def _point_arrays(
    detail: dict[str, Any],
    meanings: list[Meaning],
    world: World,
    base_items: dict[str, dict[str, list[float]]],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per test item adequacy, and per benchmark the per item loss (base - point) on its primary score."""
    adequacy = np.array(
        [
            judge(h, m, world.lexicon, "l").adequacy
            for h, m in zip(detail["hypotheses"], meanings, strict=True)
        ]
    )
    losses = {}
    for bench, items in detail["general_items"].items():
        metric = next((m for m in PRIMARY if m in items), None)
        if metric and metric in base_items.get(bench, {}):
            losses[bench] = np.asarray(base_items[bench][metric], dtype=float) - np.asarray(
                items[metric], dtype=float
            )
    return adequacy, losses


def compare_methods(
    eval_dir: Path,
    results: dict[str, Any],
    methods: dict[str, list[str]],
    world: World,
    meanings: list[Meaning],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Frontier tax of `methods['rl']` minus `methods['sft']` at matched oracle adequacy, each method's
    points pooled over its arms, with a joint bootstrap over test and general items."""
    base_detail = read_json(eval_dir / "curves" / "base.json")
    base_items = base_detail["general_items"]
    arrays: dict[str, list[tuple[int, np.ndarray, dict[str, np.ndarray]]]] = {}
    for arms in methods.values():
        for arm in arms:
            points = (results["arms"].get(arm) or {}).get("curve") or []
            series = []
            for point in sorted(points, key=lambda p: p["step"]):
                detail = read_json(eval_dir / point["detail"])
                series.append((point["step"], *_point_arrays(detail, meanings, world, base_items)))
            if len(series) >= 2:
                arrays[arm] = series
    benches = sorted({b for series in arrays.values() for _, _, losses in series for b in losses})

    def points_for(
        method: str, item_idx: np.ndarray | None, bench_idx: dict[str, np.ndarray] | None
    ) -> list[Point]:
        """(adequacy, tax) of every point of every arm of `method`, on the items drawn."""
        out = []
        for arm in methods[method]:
            for _, adequacy, losses in arrays.get(arm, []):
                a = adequacy if item_idx is None else adequacy[item_idx]
                taxes = [
                    (losses[b] if bench_idx is None else losses[b][bench_idx[b]]).mean()
                    for b in benches
                    if b in losses
                ]
                out.append((float(a.mean()), float(np.mean(taxes)) if taxes else 0.0))
        return out

    estimate = {m: points_for(m, None, None) for m in methods}
    ranges = {
        m: (min((x for x, _ in ps), default=None), max((x for x, _ in ps), default=None))
        for m, ps in estimate.items()
    }
    detail = {
        "methods": methods,
        "curves": {
            arm: [
                {
                    "step": s,
                    "adequacy": float(a.mean()),
                    "tax": float(np.mean([loss.mean() for loss in losses.values()])) if losses else 0.0,
                }
                for s, a, losses in series
            ]
            for arm, series in arrays.items()
        },
        "ranges": ranges,
        "levels": [],
        "quality_axis": "oracle adequacy",
        "tax_axis": (
            "overall tax: mean over " + ", ".join(benches) + " of base - tuned on each one's primary score "
            "(QA F1, MC accuracy), in points"
        ),
    }
    if not all(estimate.values()):
        return {**detail, "testable": False, "reason": "a method has no checkpoint curve"}
    overlap, levels, reason = matched_levels(estimate["rl"], estimate["sft"])
    detail["overlap"] = list(overlap) if overlap else None
    if reason:
        return {**detail, "testable": False, "reason": reason}
    rng = np.random.default_rng(seed)
    n_items = len(meanings)
    sizes = {
        b: len(next(losses[b] for series in arrays.values() for _, _, losses in series if b in losses))
        for b in benches
    }
    samples = np.full((resamples, len(levels)), np.nan)
    for r in range(resamples):
        item_idx = rng.integers(0, n_items, n_items)
        bench_idx = {b: rng.integers(0, n, n) for b, n in sizes.items()}
        drawn = {m: points_for(m, item_idx, bench_idx) for m in methods}
        for j, level in enumerate(compare_frontiers(drawn["rl"], drawn["sft"], levels)):
            if level.difference is not None:
                samples[r, j] = level.difference
    rows = []
    for j, level in enumerate(compare_frontiers(estimate["rl"], estimate["sft"], levels)):
        column = samples[:, j][~np.isnan(samples[:, j])]
        rows.append(
            {
                "adequacy": level.quality,
                "tax_rl": level.tax_a,
                "tax_sft": level.tax_b,
                "difference": level.difference,
                "ci95": percentile_interval(column) if len(column) > resamples // 2 else None,
            }
        )
    means = np.nanmean(samples, axis=1)
    means = means[~np.isnan(means)]
    diffs = [row["difference"] for row in rows if row["difference"] is not None]
    detail["levels"] = rows
    detail["mean_difference"] = {
        "value": float(np.mean(diffs)) if diffs else None,
        "ci95": percentile_interval(means) if len(means) > resamples // 2 else None,
    }
    return {
        **detail,
        "testable": bool(diffs),
        "reason": "" if diffs else "no level where both methods have a tax",
    }


def tradeoff_figure(analysis: dict[str, Any], path: Path, label: str = "") -> Path | None:
    """Tax against oracle adequacy for every arm of both methods, the overlap shaded."""
    if not analysis.get("curves"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {"rl": "tab:blue", "sft": "tab:red"}
    for method, arms in analysis["methods"].items():
        for arm in arms:
            curve = analysis["curves"].get(arm)
            if curve:
                ax.plot(
                    [p["adequacy"] for p in curve],
                    [p["tax"] for p in curve],
                    marker="o",
                    ms=3,
                    color=colours.get(method, "gray"),
                    alpha=0.8,
                    label=arm,
                )
    if analysis.get("overlap") and analysis["overlap"][1] > analysis["overlap"][0]:
        ax.axvspan(*analysis["overlap"], color="gray", alpha=0.12, label="overlap")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("oracle adequacy (test set)")
    ax.set_ylabel("overall alignment tax (points)")
    ax.set_title(
        "Alignment tax along training, per learning rate (blue: "
        f"RL{', ' + label + ' reward' if label else ''}; "
        "red: SFT)",
        fontsize=9,
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path
