"""The transfer matrix: accuracy of each reward model (row: its training language) on each
evaluation language (column), overall and per category, with bootstrap intervals; and the paper's
comparison of the reference-language row (English in Hong et al.) with each diagonal entry.

A pair counts as correct when the chosen response scores strictly above the rejected one (ties are
wrong, as in RewardBench), so a constant RM scores 0, not 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from semrl.evaluate.stats import bootstrap_mean, bootstrap_paired_difference


def correct(chosen: Sequence[float], rejected: Sequence[float]) -> list[float]:
    return [1.0 if c > r else 0.0 for c, r in zip(chosen, rejected, strict=True)]


def accuracy_cell(hits: Sequence[float], cats: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    """Accuracy with a 95% interval, overall and for each category present."""

    def entry(values: Sequence[float]) -> dict[str, Any]:
        return {
            "accuracy": float(np.mean(values)) if len(values) else None,  # n = 0 says why
            "ci95": bootstrap_mean(values, resamples, seed),
            "n": len(values),
        }

    per_category = {}
    for name in dict.fromkeys(cats):
        per_category[name] = entry([h for h, c in zip(hits, cats, strict=True) if c == name])
    return {**entry(hits), "categories": per_category}


def transfer_matrix(
    hits: dict[str, dict[str, list[float]]], cats: dict[str, list[str]], resamples: int, seed: int
) -> dict[str, dict[str, Any]]:
    """hits[train_language][eval_language] -> per-pair 0/1; cats[eval_language] -> category per pair."""
    return {
        train: {lang: accuracy_cell(row[lang], cats[lang], resamples, seed) for lang in row}
        for train, row in hits.items()
    }


def reference_vs_native(
    hits: dict[str, dict[str, list[float]]], reference: str, resamples: int, seed: int
) -> dict[str, Any]:
    """For each evaluation language L with its own RM: accuracy of the reference RM on L minus that of
    L's RM on L (positive = the reference RM transfers better than training in L), paired over L's
    pairs; and the mean over languages."""
    per_language: dict[str, Any] = {}
    if reference not in hits:
        return {"reference": reference, "languages": per_language, "mean_difference": None}
    for lang, ref_hits in hits[reference].items():
        if lang == reference or lang not in hits or lang not in hits[lang]:
            continue
        native = hits[lang][lang]
        if not native:
            continue  # L has no evaluation pairs (its matrix cells say n = 0): nothing to compare
        per_language[lang] = {
            "reference_rm": float(np.mean(ref_hits)),
            "native_rm": float(np.mean(native)),
            "difference": float(np.mean(ref_hits) - np.mean(native)),
            "ci95": bootstrap_paired_difference(ref_hits, native, resamples, seed),
            "n": len(native),
        }
    mean = float(np.mean([v["difference"] for v in per_language.values()])) if per_language else None
    return {"reference": reference, "languages": per_language, "mean_difference": mean}
