"""The trade-off between target quality and alignment tax: one definition of "the tax at matched
quality", used by the run report and by the sandbox's claim C2 alike.

A side's (an arm's, or a method's over all its arms) tax at quality q is its **frontier**: the
lowest tax among its points (every checkpoint, step 0 the base included) whose quality is at least
q. A user keeps the checkpoint that suits them, so a destructive checkpoint or learning rate does
not count against a side that also has a gentle one, and the frontier needs no monotone curve.
Two sides are compared at levels fixed in advance as fractions (LEVELS) of the quality range both
reach, and only where that overlap is at least MIN_OVERLAP wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # positions inside the overlap, fixed in advance
MIN_OVERLAP = 0.05  # quality range both sides must share for a comparison to mean anything

Point = tuple[float, float]  # (quality, tax)


def frontier_index(points: Sequence[Point], q: float) -> int | None:
    """Index of the lowest-tax point whose quality reaches `q` (the first such on a tie), None when
    no point reaches it; the index lets a caller show that point's own step and interval."""
    reached = [i for i, (quality, _) in enumerate(points) if quality >= q]
    return min(reached, key=lambda i: points[i][1]) if reached else None


def frontier_tax(points: Sequence[Point], q: float) -> float | None:
    """The side's tax at quality `q`: the lowest tax of any point reaching at least `q`."""
    i = frontier_index(points, q)
    return None if i is None else float(points[i][1])


class Levels(NamedTuple):
    """Where two sides are compared: the shared quality range, the levels in it, and why there are
    none (`reason` is empty when the comparison is testable)."""

    overlap: tuple[float, float] | None
    levels: list[float]
    reason: str


def matched_levels(
    a: Sequence[Point],
    b: Sequence[Point],
    fractions: Sequence[float] = LEVELS,
    min_overlap: float = MIN_OVERLAP,
) -> Levels:
    """The quality levels at which `a` and `b` are compared: `fractions` of the range both reach
    (from the higher of their lowest qualities to the lower of their highest). Below its lowest
    point a side was never observed, above its highest it has no frontier, hence the overlap."""
    if not a or not b:
        return Levels(None, [], "a side has no points")
    low = max(min(q for q, _ in a), min(q for q, _ in b))
    high = min(max(q for q, _ in a), max(q for q, _ in b))
    if high <= low or high - low < min_overlap:
        return Levels(
            (low, high), [], f"the quality ranges overlap by {max(high - low, 0):.3f} < {min_overlap}"
        )
    return Levels((low, high), [low + f * (high - low) for f in fractions], "")


class Level(NamedTuple):
    """One level of a comparison: each side's frontier point (index into its points) and tax."""

    quality: float
    index_a: int | None
    index_b: int | None
    tax_a: float | None
    tax_b: float | None

    @property
    def difference(self) -> float | None:
        """Tax of `a` minus tax of `b` (negative: `a` pays less), None where a side has no frontier."""
        return None if self.tax_a is None or self.tax_b is None else self.tax_a - self.tax_b


def compare_frontiers(a: Sequence[Point], b: Sequence[Point], levels: Sequence[float]) -> list[Level]:
    """Both sides' frontiers at each level. Inside the overlap both always have one; a bootstrap
    resample evaluated at the point estimate's levels may not, hence the optional taxes."""
    rows = []
    for q in levels:
        i, j = frontier_index(a, q), frontier_index(b, q)
        rows.append(
            Level(
                float(q),
                i,
                j,
                None if i is None else float(a[i][1]),
                None if j is None else float(b[j][1]),
            )
        )
    return rows


def matched_quality(
    results: dict[str, Any], fractions: Sequence[float] = LEVELS, min_overlap: float = MIN_OVERLAP
) -> dict[str, Any]:
    """Every pair of arms with curves, compared by their frontiers at matched target quality.

    Each arm is one side; its points are its curve's checkpoints (target value, overall tax). Pairs
    whose quality ranges overlap by less than `min_overlap` (in the target metric's units) are left
    out. Each arm's `tax` and `ci95` at a level are those of its frontier point, named by `step`:
    that checkpoint's own paired-bootstrap interval against the base. There is no joint bootstrap
    here (the sandbox's C2 has one), so the interval ignores that the point was chosen as the lowest
    of several, which biases the frontier down a little, and the difference has no interval.
    """
    curves: dict[str, list[dict[str, Any]]] = {}
    for name, arm in results["arms"].items():
        kept = [p for p in arm.get("curve") or [] if p.get("tax")]
        if kept:
            curves[name] = kept
    out: dict[str, Any] = {}
    names = list(curves)
    for k, a in enumerate(names):
        for b in names[k + 1 :]:
            points = {
                name: [(p["target"]["value"], p["tax"]["tax"]) for p in curves[name]] for name in (a, b)
            }
            where = matched_levels(points[a], points[b], fractions, min_overlap)
            if where.reason:
                continue
            rows = []
            for level in compare_frontiers(points[a], points[b], where.levels):
                entry: dict[str, Any] = {"target": level.quality}
                for name, index in ((a, level.index_a), (b, level.index_b)):
                    assert index is not None  # inside the overlap both sides reach every level
                    chosen = curves[name][index]
                    entry[name] = {
                        "tax": chosen["tax"]["tax"],
                        "ci95": chosen["tax"]["ci95"],
                        "step": chosen.get("step"),
                    }
                entry["difference"] = level.difference
                rows.append(entry)
            out[f"{a} vs {b}"] = rows
    return out
