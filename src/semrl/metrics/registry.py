"""The task metrics semrl knows, in one table, as the rewards have theirs (rewards/registry.py).

`semrl score` reads each entry's corpus score; evaluation reads its per-segment scores and
resamples them (or, for BLEU and chrF++, sacrebleu's sufficient statistics) for a 95% interval.
A new metric is one entry in METRIC_TYPES: both then know it, and so do `--metrics` and
`eval.metrics`, which list METRICS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semrl.metrics.language import DEFAULT_THRESHOLD, language_consistency, passes_language
from semrl.metrics.rouge import corpus_rouge_l, sentence_rouge_l
from semrl.metrics.semantic import pairwise_similarity, semantic_similarity
from semrl.metrics.surface import (
    CorpusScore,
    bleu_metric,
    chrf_metric,
    corpus_bleu,
    corpus_chrf,
    sentence_bleu,
    sentence_chrf,
    surface_spec,
)
from semrl.text.scripts import resolve_scripts

Texts = Sequence[str]


@dataclass(frozen=True)
class MetricInputs:
    """What a metric may need beside the texts: the target language, the similarity encoder and the
    language-consistency threshold."""

    lang: str | None
    encoder: str | None = None
    device: str | None = None
    threshold: float = DEFAULT_THRESHOLD


Segments = Callable[[Texts, Texts, MetricInputs], list[float]]


@dataclass(frozen=True)
class MetricType:
    name: str
    scale: str
    corpus: Callable[[Texts, Texts, MetricInputs], CorpusScore]  # `semrl score`'s corpus value
    segments: Segments  # one score per output
    # the signature evaluation reports beside the segments' mean; None: the corpus score's
    signature: Callable[[Texts, Texts, MetricInputs], str] | None = None
    # the sacrebleu metric whose sufficient statistics evaluation resamples; None: the segments' mean
    sacrebleu: Callable[[MetricInputs], Any] | None = None
    against_source: bool = False  # `semrl score --src` also scores outputs against the sources

    def mean_signature(self, hyps: Texts, refs: Texts, inputs: MetricInputs) -> str:
        """How the segments were scored, for the mean evaluation reports (read off the first pair)."""
        if self.signature is not None:
            return self.signature(hyps, refs, inputs)
        return self.corpus(hyps[:1], refs[:1], inputs).signature


def _pairs(score: Callable[[str, str, str | None], float], scale: float = 1.0) -> Segments:
    def segments(hyps: Texts, refs: Texts, inputs: MetricInputs) -> list[float]:
        return [scale * score(h, r, inputs.lang) for h, r in zip(hyps, refs, strict=True)]

    return segments


def _in_language(hyps: Texts, refs: Texts, inputs: MetricInputs) -> list[float]:
    scripts = resolve_scripts(inputs.lang)
    return [1.0 if passes_language(h, scripts, inputs.threshold) else 0.0 for h in hyps]


def _language_signature(hyps: Texts, refs: Texts, inputs: MetricInputs) -> str:
    scripts = resolve_scripts(inputs.lang)
    return f"lang|scripts:{'+'.join(sorted(scripts))}|threshold:{inputs.threshold}"


METRIC_TYPES: tuple[MetricType, ...] = (  # the order is the one messages list them in
    MetricType(
        "bleu",
        "0-100",
        corpus=lambda hyps, refs, i: corpus_bleu(hyps, refs, i.lang),
        segments=_pairs(sentence_bleu),
        sacrebleu=lambda i: bleu_metric(surface_spec(i.lang).bleu_tokenize, False),
    ),
    MetricType(
        "chrf",
        "0-100",
        corpus=lambda hyps, refs, i: corpus_chrf(hyps, refs, i.lang),
        segments=_pairs(sentence_chrf),
        sacrebleu=lambda i: chrf_metric(),
    ),
    MetricType(
        "rougeL",
        "0-100",
        corpus=lambda hyps, refs, i: corpus_rouge_l(hyps, refs, i.lang),
        segments=_pairs(sentence_rouge_l, 100.0),
    ),
    MetricType(
        "sim",
        "cosine -1..1",
        corpus=lambda hyps, refs, i: semantic_similarity(hyps, refs, i.encoder, i.device),
        segments=lambda hyps, refs, i: pairwise_similarity(hyps, refs, i.encoder, i.device),
        against_source=True,
    ),
    MetricType(
        "lang",
        "fraction 0..1",
        corpus=lambda hyps, refs, i: language_consistency(hyps, i.lang, threshold=i.threshold),
        segments=_in_language,
        signature=_language_signature,
    ),
)
BY_NAME: dict[str, MetricType] = {entry.name: entry for entry in METRIC_TYPES}
METRICS: tuple[str, ...] = tuple(BY_NAME)


def metric_type(name: str) -> MetricType:
    if name not in BY_NAME:
        raise ValueError(f"unknown task metric {name!r}")
    return BY_NAME[name]
