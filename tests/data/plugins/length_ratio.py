"""A task metric from outside semrl, as a user writes one: characters of each output over those of
its reference (or, with `against: source`, of its source row). Tests name this file under `plugins:`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from semrl.api import CorpusScore, MetricInputs, MetricType, register_metric


def _check(options: Mapping[str, Any]) -> None:
    if set(options) - {"against"} or options.get("against", "reference") not in ("reference", "source"):
        raise ValueError(f"{dict(options)}: the one option is against: reference | source")


def ratios(hyps: Sequence[str], refs: Sequence[str], inputs: MetricInputs) -> list[float]:
    if inputs.options.get("against") == "source":
        refs = [row["source"] for row in inputs.rows]
    return [len(hyp) / max(len(ref), 1) for hyp, ref in zip(hyps, refs, strict=True)]


def _corpus(hyps: Sequence[str], refs: Sequence[str], inputs: MetricInputs) -> CorpusScore:
    values = ratios(hyps, refs, inputs)
    return CorpusScore(sum(values) / len(values), "length_ratio|chars")


register_metric(
    MetricType(
        "length_ratio",
        "ratio",
        corpus=_corpus,
        segments=ratios,
        check_options=_check,
    )
)
