"""Trends over a training log: did a logged value rise (or fall) between the start and the end of a
stage? Its late mean minus its early mean, with a bootstrap interval. The sandbox's claims ask it
of the reward ("did the arm learn"), the hacking warning (train/hacking.py) of the reward and the
no-oracle monitors; it sits here, below both, so the two read a log the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from semrl.evaluate.intervals import format_interval
from semrl.evaluate.stats import percentile_interval

MIN_ENTRIES = 4  # two windows of at least two entries each
MIN_WINDOW = 2  # a one-entry window gives a zero-width interval, which would call any rise "learned"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _points(log_history: list[dict[str, Any]], key: str) -> list[tuple[Any, int, float]]:
    """(step, position, value) of every finite logged `key`, in step order; entries without it
    (the final summary) are skipped."""
    return sorted(
        (entry.get("step", i), i, float(entry[key]))
        for i, entry in enumerate(log_history)
        if _finite(entry.get(key))
    )


def _series(log_history: list[dict[str, Any]], key: str) -> list[float]:
    """Logged values of `key` in step order."""
    return [value for _, _, value in _points(log_history, key)]


def window_size(n: int, share: float = 0.2) -> int:
    """Entries in each of the two windows compared (0 when the log is too short for a trend)."""
    return 0 if n < MIN_ENTRIES else min(n // 2, max(MIN_WINDOW, round(share * n)))


def trend_windows(
    log_history: list[dict[str, Any]], key: str = "reward", share: float = 0.2
) -> tuple[list[int], list[int]] | None:
    """The steps the two windows of `reward_trend` span: ([first, last] of the early window,
    [first, last] of the late one), or None when the log is too short for a trend."""
    steps = [step for step, _, _ in _points(log_history, key)]
    window = window_size(len(steps), share)
    if not window:
        return None
    return [steps[0], steps[window - 1]], [steps[-window], steps[-1]]


def reward_trend(
    log_history: list[dict[str, Any]],
    key: str = "reward",
    share: float = 0.2,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean of the last `share` of logged `key` values minus the mean of the first `share`, with a
    95% bootstrap interval (each window resampled on its own); learned when the interval is above 0.

    Steps are treated as independent draws; neighbouring GRPO steps are correlated, so the interval
    is somewhat optimistic. That is why it takes the lower bound, not the point estimate.
    """
    values = _series(log_history, key)
    n = len(values)
    out: dict[str, Any] = {
        "key": key,
        "first": None,
        "last": None,
        "value": None,
        "ci95": None,
        "n_first": 0,
        "n_last": 0,
        "learned": None,
    }
    if n < MIN_ENTRIES:
        reason = f"only {n} logged '{key}' value(s); need at least {MIN_ENTRIES} to see a trend"
        return {**out, "reason": reason}
    window = window_size(n, share)
    first, last = np.asarray(values[:window]), np.asarray(values[-window:])
    rng = np.random.default_rng(seed)
    boot_first = first[rng.integers(0, window, size=(resamples, window))].mean(axis=1)
    boot_last = last[rng.integers(0, window, size=(resamples, window))].mean(axis=1)
    ci95 = percentile_interval(boot_last - boot_first)
    value = float(last.mean() - first.mean())
    learned = ci95[0] > 0
    verdict = "is above 0" if learned else ("is below 0" if ci95[1] < 0 else "does not exclude 0")
    return {
        **out,
        "first": float(first.mean()),
        "last": float(last.mean()),
        "value": value,
        "ci95": ci95,
        "n_first": window,
        "n_last": window,
        "learned": learned,
        "reason": f"{key} trend {format_interval(value, ci95, '+.3g')} {verdict}",
    }
