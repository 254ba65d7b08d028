"""Task evaluation: the metric set of the task (its default: semrl/tasks/, e.g. translate: BLEU,
chrF++, semantic similarity, language consistency), corpus level, with bootstrap 95% intervals.
Per-segment scores are returned too, so outputs can be read beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from semrl.evaluate.stats import bootstrap_mean, bootstrap_stat
from semrl.metrics.language import DEFAULT_THRESHOLD
from semrl.metrics.registry import MetricInputs, metric_type
from semrl.metrics.surface import surface_spec
from semrl.tasks import TASKS


def _sacrebleu_with_interval(metric, hyps, refs, lang, resamples, seed) -> dict[str, Any]:
    spec = surface_spec(lang)
    prepared_h = [spec.preprocess(h) for h in hyps]
    prepared_r = [spec.preprocess(r) for r in refs]
    stats = np.asarray(metric._extract_corpus_statistics(prepared_h, [prepared_r]), dtype=float)
    value = float(metric._compute_score_from_stats(stats.sum(axis=0)).score)
    interval = bootstrap_stat(
        stats, lambda row: float(metric._compute_score_from_stats(row).score), resamples, seed
    )
    return {
        "value": min(max(value, 0.0), 100.0),
        "ci95": interval,
        "signature": f"pre:{spec.note}|{metric.get_signature()}",
        "scale": "0-100",
    }


def primary_metric(metrics: Sequence[str]) -> str:
    """The task metric the trade-off uses as "target quality": similarity when measured, else the first."""
    return "sim" if "sim" in metrics else metrics[0]


def evaluate_task(
    task_type: str,
    hyps: Sequence[str],
    refs: Sequence[str],
    lang: str | None,
    encoder: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    rows: Sequence[Mapping[str, Any]] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """({metric: {value, ci95, signature, scale}}, {metric: per-segment values}). `rows`: the rows
    the texts come from, and `options`: eval.metric_options, for metrics that read more than text."""
    names = list(metrics or TASKS[task_type].metrics)
    results: dict[str, Any] = {}
    segments: dict[str, list[float]] = {}
    shared = MetricInputs(lang, encoder, threshold=threshold, rows=rows)
    for name in names:
        entry = metric_type(name)
        inputs = replace(shared, options=(options or {}).get(name, {}))
        values = entry.segments(hyps, refs, inputs)
        if entry.sacrebleu is not None:
            results[name] = _sacrebleu_with_interval(
                entry.sacrebleu(inputs), hyps, refs, lang, resamples, seed
            )
        else:
            results[name] = {
                "value": float(np.mean(values)),
                "ci95": bootstrap_mean(values, resamples, seed),
                "signature": entry.mean_signature(hyps, refs, inputs),
                "scale": entry.scale,
            }
        segments[name] = values
    return results, segments
