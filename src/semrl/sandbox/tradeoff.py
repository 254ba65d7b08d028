"""C2 as a fair test: the alignment tax of each method at the same oracle adequacy.

Every arm's checkpoint curve (step 0 = the base, then each kept checkpoint) is re-scored with the
oracle. Two ways to pool a method's learning-rate arms:

- `frontier` (the rule since issue 20): a user picks a method's best learning rate and checkpoint,
  so the trade-off a method offers is its frontier, the lowest tax any of its points (every
  learning rate, every checkpoint) pays while reaching at least adequacy q. A learning rate that
  destroys the base does not count against a method that also has a gentle one.
- `mean` (the old rule, reported beside): at q, the mean over the arms whose curve reaches q of
  that arm's tax interpolated at the first crossing of q.

Levels are spread over the adequacy range both methods reach. The interval is a joint bootstrap:
each resample draws the test items and every general benchmark's items once and applies the draw
to every point of both methods (the frontier is recomputed in each resample), so the pairing across
points is kept. A frontier is a minimum over points, so a method with more points gains a little
from noise; the resampled minimum carries that noise into the interval.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from semrl.evaluate.benchmarks import PRIMARY
from semrl.evaluate.stats import percentile_interval
from semrl.files import atomic_savefig
from semrl.sandbox.grammar import Meaning
from semrl.sandbox.oracle import judge
from semrl.sandbox.world import World

LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # positions inside the overlap, fixed in advance
MIN_OVERLAP = 0.05  # adequacy range both methods must share for a comparison to mean anything


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


def _tax_at(curve: list[tuple[float, float]], q: float) -> float | None:
    """Tax where the curve (in step order) first reaches adequacy q, linearly interpolated."""
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if min(x0, x1) <= q <= max(x0, x1):
            return y0 if x1 == x0 else y0 + (y1 - y0) * (q - x0) / (x1 - x0)
    return None


def _method_tax(curves: list[list[tuple[float, float]]], q: float, pool: str = "mean") -> float | None:
    if pool == "frontier":  # the lowest tax of any point that reaches at least q
        reached = [t for curve in curves for a, t in curve if a >= q]
        return float(min(reached)) if reached else None
    taxes = [t for t in (_tax_at(c, q) for c in curves) if t is not None]
    return float(np.mean(taxes)) if taxes else None


def compare_methods(
    eval_dir: Path,
    results: dict[str, Any],
    methods: dict[str, list[str]],
    world: World,
    meanings: list[Meaning],
    resamples: int = 1000,
    seed: int = 0,
    pool: str = "frontier",
) -> dict[str, Any]:
    """Tax of `methods['rl']` minus `methods['sft']` at matched oracle adequacy, with a joint bootstrap;
    `pool`: frontier (lowest tax over every point of a method) or mean (over its arms)."""
    import json

    base_detail = json.loads((eval_dir / "curves" / "base.json").read_text(encoding="utf-8"))
    base_items = base_detail["general_items"]
    arrays: dict[str, list[tuple[int, np.ndarray, dict[str, np.ndarray]]]] = {}
    for arms in methods.values():
        for arm in arms:
            points = (results["arms"].get(arm) or {}).get("curve") or []
            series = []
            for point in sorted(points, key=lambda p: p["step"]):
                detail = json.loads((eval_dir / point["detail"]).read_text(encoding="utf-8"))
                series.append((point["step"], *_point_arrays(detail, meanings, world, base_items)))
            if len(series) >= 2:
                arrays[arm] = series
    benches = sorted({b for series in arrays.values() for _, _, losses in series for b in losses})

    def curves_for(method: str, item_idx: np.ndarray | None, bench_idx: dict[str, np.ndarray] | None):
        out = []
        for arm in methods[method]:
            if arm not in arrays:
                continue
            curve = []
            for _, adequacy, losses in arrays[arm]:
                a = adequacy if item_idx is None else adequacy[item_idx]
                taxes = [
                    (losses[b] if bench_idx is None else losses[b][bench_idx[b]]).mean()
                    for b in benches
                    if b in losses
                ]
                curve.append((float(a.mean()), float(np.mean(taxes)) if taxes else 0.0))
            out.append(curve)
        return out

    point_curves = {m: curves_for(m, None, None) for m in methods}
    ranges = {
        m: (
            min((x for c in cs for x, _ in c), default=None),
            max((x for c in cs for x, _ in c), default=None),
        )
        for m, cs in point_curves.items()
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
        "pool": pool,
        "quality_axis": "oracle adequacy",
        "tax_axis": (
            "overall tax: mean over " + ", ".join(benches) + " of base - tuned on each one's primary score "
            "(QA F1, MC accuracy), in points"
        ),
    }
    bounds = [(lo, hi) for lo, hi in ranges.values() if lo is not None and hi is not None]
    if len(bounds) < len(ranges):
        return {**detail, "testable": False, "reason": "a method has no checkpoint curve"}
    low = max(lo for lo, _ in bounds)
    high = min(hi for _, hi in bounds)
    detail["overlap"] = [low, high]
    if high - low < MIN_OVERLAP:
        return {
            **detail,
            "testable": False,
            "reason": f"the methods' adequacy ranges overlap by {max(high - low, 0):.3f} < {MIN_OVERLAP}",
        }
    levels = [low + f * (high - low) for f in LEVELS]
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
        curves = {m: curves_for(m, item_idx, bench_idx) for m in methods}
        for j, q in enumerate(levels):
            rl, sft = _method_tax(curves["rl"], q, pool), _method_tax(curves["sft"], q, pool)
            if rl is not None and sft is not None:
                samples[r, j] = rl - sft
    rows = []
    for j, q in enumerate(levels):
        rl, sft = _method_tax(point_curves["rl"], q, pool), _method_tax(point_curves["sft"], q, pool)
        column = samples[:, j][~np.isnan(samples[:, j])]
        rows.append(
            {
                "adequacy": q,
                "tax_rl": rl,
                "tax_sft": sft,
                "difference": None if rl is None or sft is None else rl - sft,
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
