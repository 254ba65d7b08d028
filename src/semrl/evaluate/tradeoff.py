"""The trade-off between target quality and alignment tax: arms compared at matched quality along
their checkpoint curves (the paper's central comparison)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _at(target: float, points: list, key) -> float:
    """`key` of the tax dicts along `points` (target value, tax), linearly interpolated at `target`."""
    xs = [p[0] for p in points]
    return float(np.interp(target, xs, [key(p[1]) for p in points]))


def matched_quality(results: dict[str, Any], levels: int = 5) -> dict[str, Any]:
    """Compare arms' alignment tax at the same target quality, interpolated along their curves.

    For each pair of arms with curves, target levels are spread over the range both reach; each
    arm's tax (and its interval bounds) is linearly interpolated at those levels. The intervals are
    the interpolated per-checkpoint intervals, not a joint bootstrap.
    """
    curves = {}
    for name, arm in results["arms"].items():
        # sort by target value only (stable): the tax dicts are not comparable when two checkpoints tie
        points = sorted(
            ((p["target"]["value"], p["tax"]) for p in arm.get("curve") or [] if p.get("tax")),
            key=lambda point: point[0],
        )
        if len(points) >= 2:
            curves[name] = points
    out: dict[str, Any] = {}
    names = list(curves)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            low = max(curves[a][0][0], curves[b][0][0])
            high = min(curves[a][-1][0], curves[b][-1][0])
            if low >= high:
                continue
            rows = []
            for q in np.linspace(low, high, levels):
                entry: dict[str, Any] = {"target": float(q)}
                for name in (a, b):
                    entry[name] = {
                        "tax": _at(q, curves[name], lambda t: t["tax"]),
                        "ci95": [
                            _at(q, curves[name], lambda t: t["ci95"][0]),
                            _at(q, curves[name], lambda t: t["ci95"][1]),
                        ],
                    }
                entry["difference"] = entry[a]["tax"] - entry[b]["tax"]
                rows.append(entry)
            out[f"{a} vs {b}"] = rows
    return out
