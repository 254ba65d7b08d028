"""Task evaluation: the metric set of the task (its default: semrl/tasks/, e.g. translate: BLEU,
chrF++, semantic similarity, language consistency), corpus level, with bootstrap 95% intervals.
Per-segment scores are returned too, so outputs can be read beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from semrl.evaluate.stats import bootstrap_mean, bootstrap_stat
from semrl.metrics.language import DEFAULT_THRESHOLD, passes_language
from semrl.metrics.rouge import corpus_rouge_l, sentence_rouge_l
from semrl.metrics.semantic import pairwise_similarity, semantic_similarity
from semrl.metrics.surface import bleu_metric, chrf_metric, sentence_bleu, sentence_chrf, surface_spec
from semrl.tasks import TASKS
from semrl.text.scripts import resolve_scripts


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
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """({metric: {value, ci95, signature, scale}}, {metric: per-segment values})."""
    names = list(metrics or TASKS[task_type].metrics)
    results: dict[str, Any] = {}
    segments: dict[str, list[float]] = {}
    for name in names:
        if name == "bleu":
            metric = bleu_metric(surface_spec(lang).bleu_tokenize, False)
            results[name] = _sacrebleu_with_interval(metric, hyps, refs, lang, resamples, seed)
            segments[name] = [sentence_bleu(h, r, lang) for h, r in zip(hyps, refs, strict=True)]
        elif name == "chrf":
            results[name] = _sacrebleu_with_interval(chrf_metric(), hyps, refs, lang, resamples, seed)
            segments[name] = [sentence_chrf(h, r, lang) for h, r in zip(hyps, refs, strict=True)]
        elif name == "rougeL":
            values = [100.0 * sentence_rouge_l(h, r, lang) for h, r in zip(hyps, refs, strict=True)]
            results[name] = {
                "value": float(np.mean(values)),
                "ci95": bootstrap_mean(values, resamples, seed),
                "signature": corpus_rouge_l(hyps[:1], refs[:1], lang).signature,
                "scale": "0-100",
            }
            segments[name] = values
        elif name == "sim":
            values = pairwise_similarity(hyps, refs, encoder)
            results[name] = {
                "value": float(np.mean(values)),
                "ci95": bootstrap_mean(values, resamples, seed),
                "signature": semantic_similarity(hyps[:1], refs[:1], encoder).signature,
                "scale": "cosine -1..1",
            }
            segments[name] = values
        elif name == "lang":
            scripts = resolve_scripts(lang)
            values = [1.0 if passes_language(h, scripts, threshold) else 0.0 for h in hyps]
            results[name] = {
                "value": float(np.mean(values)),
                "ci95": bootstrap_mean(values, resamples, seed),
                "signature": f"lang|scripts:{'+'.join(sorted(scripts))}|threshold:{threshold}",
                "scale": "fraction 0..1",
            }
            segments[name] = values
        else:
            raise ValueError(f"unknown task metric {name!r}")
    return results, segments
