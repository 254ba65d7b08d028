"""The task metrics semrl knows, in one table, as the rewards have theirs (rewards/registry.py).

`semrl score` reads each entry's corpus score; evaluation reads its per-segment scores and
resamples them (or, for BLEU and chrF++, sacrebleu's sufficient statistics) for a 95% interval.
A new metric is one entry in METRIC_TYPES: both then know it, and so do `--metrics` and
`eval.metrics`. A metric that lives outside semrl (the sandbox's oracle, a user's own) is
registered with `register_metric` by a module the experiment's `plugins:` names: each process
that loads the config imports it, so evaluation workers know the metric too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from semrl.plugins import add_to
from semrl.text.scripts import resolve_scripts

Texts = Sequence[str]


@dataclass(frozen=True)
class MetricInputs:
    """What a metric may need beside the texts: the target language, the similarity encoder, the
    language-consistency threshold, the rows scored (roles and id, aligned with the texts; empty
    for `semrl score`) and the metric's own `eval.metric_options`."""

    lang: str | None
    encoder: str | None = None
    device: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    rows: Sequence[Mapping[str, Any]] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


Segments = Callable[[Texts, Texts, MetricInputs], list[float]]


@dataclass(frozen=True)
class MetricType:
    """A task metric: its scale, its corpus score (`semrl score`) and one score per output
    (evaluation's mean and interval)."""

    name: str
    scale: str
    corpus: Callable[[Texts, Texts, MetricInputs], CorpusScore]  # `semrl score`'s corpus value
    segments: Segments  # one score per output
    # the signature evaluation reports beside the segments' mean; None: the corpus score's
    signature: Callable[[Texts, Texts, MetricInputs], str] | None = None
    # the sacrebleu metric whose sufficient statistics evaluation resamples; None: the segments' mean
    sacrebleu: Callable[[MetricInputs], Any] | None = None
    against_source: bool = False  # `semrl score --src` also scores outputs against the sources
    # checks `eval.metric_options` for this metric before anything runs (raises ValueError)
    check_options: Callable[[Mapping[str, Any]], None] | None = None

    def mean_signature(self, hyps: Texts, refs: Texts, inputs: MetricInputs) -> str:
        """How the segments were scored, for the mean evaluation reports (read off the first pair)."""
        if self.signature is not None:
            return self.signature(hyps, refs, inputs)
        return self.corpus(hyps[:1], refs[:1], replace(inputs, rows=inputs.rows[:1])).signature


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
METRICS: tuple[str, ...] = tuple(BY_NAME)  # semrl's own; `metric_names()` adds the registered ones


def register_metric(entry: MetricType) -> MetricType:
    """Make a metric known to evaluation, `eval.metrics` and the report."""
    return add_to(BY_NAME, entry.name, entry, "metric")


def metric_names() -> tuple[str, ...]:
    """Every metric this process knows: semrl's, then the registered ones."""
    return tuple(BY_NAME)


def metric_type(name: str) -> MetricType:
    if name not in BY_NAME:
        raise ValueError(f"unknown task metric {name!r}")
    return BY_NAME[name]
