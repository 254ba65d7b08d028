"""Bootstrap confidence intervals (percentile, 95% by default), seeded so reruns agree.

Corpus BLEU and chrF++ are resampled over sacrebleu's own per-segment sufficient statistics
(the way sacrebleu's paired bootstrap does it), so each resample costs a sum, not a re-tokenisation.
With no items there is no interval: the functions return None (JSON null), never [NaN, NaN].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def percentile_interval(samples: Sequence[float] | np.ndarray, level: float = 0.95) -> list[float]:
    """The central `level` interval of bootstrap samples, [lo, hi]."""
    alpha = (1.0 - level) / 2.0
    return [float(np.quantile(samples, alpha)), float(np.quantile(samples, 1.0 - alpha))]


def bootstrap_mean(
    values: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[float] | None:
    """95% percentile-bootstrap interval of the mean; None for no values."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return None
    means = data[_indices(len(data), resamples, seed)].mean(axis=1)
    return percentile_interval(means)


def bootstrap_stat(
    stats: np.ndarray, score: Callable[[np.ndarray], float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[float] | None:
    """Interval of score(sum of resampled per-segment statistics)."""
    if len(stats) == 0:
        return None
    sums = stats[_indices(len(stats), resamples, seed)].sum(axis=1)
    return percentile_interval([score(row) for row in sums])


def bootstrap_paired_difference(
    a: Sequence[float], b: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[float] | None:
    """Interval of mean(a) - mean(b) over the same items (paired resampling)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0:
        return None
    idx = _indices(len(x), resamples, seed)
    return percentile_interval(x[idx].mean(axis=1) - y[idx].mean(axis=1))


def mean_with_interval(
    values: list[float], scale: float = 1.0, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean and interval; with no items both are None (JSON null) and n = 0 says why."""
    scaled = [scale * v for v in values]
    return {
        "value": float(np.mean(scaled)) if scaled else None,
        "ci95": bootstrap_mean(scaled, resamples, seed),
        "n": len(scaled),
    }
