"""`semrl score`: corpus metrics for a hypothesis file against references (and sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.encoders.loading import resolve_encoder
from semrl.errors import UserError
from semrl.files import read_lines
from semrl.metrics.registry import METRICS, MetricInputs, metric_type
from semrl.text.scripts import resolve_scripts
from semrl.text.visible import blank

__all__ = ["METRICS", "parse_metric_list", "score_files"]


def parse_metric_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(
            f"--metrics: unknown metric {unknown[0]!r}; choose from {','.join(METRICS)}"
            if unknown
            else "--metrics: no metric given"
        )
    return list(dict.fromkeys(names))


def _read_segments(path: Path, role: str, allow_empty: bool) -> list[str]:
    lines = read_lines(path)
    if not allow_empty:
        for number, line in enumerate(lines, start=1):
            if blank(line):
                raise UserError(f"{path}: line {number}: empty {role} segment")
    return lines


def score_files(
    hyp: Path,
    ref: Path,
    src: Path | None,
    lang: str,
    metrics: list[str],
    encoder: str | None = None,
    device: str | None = None,
    threshold: float = 0.95,
) -> dict[str, Any]:
    """Every requested metric at corpus level. Empty hypotheses are allowed (a model may say
    nothing); empty references and sources are errors, and line counts must agree."""
    try:
        resolve_scripts(lang)
    except ValueError as exc:
        if "lang" in metrics:
            raise UserError(f"--lang: {exc}") from None
    if "sim" in metrics:
        try:
            resolve_encoder(encoder)  # a missing folder or torn weights, before any file is read
        except UserError as exc:
            raise UserError(f"--encoder: {exc}") from None
    hyps = _read_segments(hyp, "hypothesis", allow_empty=True)
    refs = _read_segments(ref, "reference", allow_empty=False)
    if len(hyps) != len(refs):
        raise UserError(f"{hyp}: {len(hyps)} lines, but {ref} has {len(refs)}; one segment per line in each")
    if not hyps:
        raise UserError(f"{hyp}: no segments")
    srcs = None
    if src is not None:
        srcs = _read_segments(src, "source", allow_empty=False)
        if len(srcs) != len(hyps):
            raise UserError(
                f"{src}: {len(srcs)} lines, but {hyp} has {len(hyps)}; one segment per line in each"
            )

    result: dict[str, Any] = {}
    signatures: dict[str, str] = {}
    inputs = MetricInputs(lang, encoder, device, threshold)
    for name in metrics:
        entry = metric_type(name)
        score = entry.corpus(hyps, refs, inputs)
        if entry.against_source and srcs is not None:
            source_score = entry.corpus(hyps, srcs, inputs)
            result[f"{name}_src"] = source_score.score
            signatures[f"{name}_src"] = source_score.signature
        result[name] = score.score
        signatures[name] = score.signature
    result["n"] = len(hyps)
    result["signatures"] = signatures
    return result
