"""Semantic similarity: mean cosine between sentence embeddings of outputs and references.

An empty output carries no meaning, so it scores 0 rather than whatever vector the encoder
gives the empty string.
"""

from __future__ import annotations

from collections.abc import Sequence

from semrl.encoders import DistinctTextEncoder, load_encoder, resolve_encoder
from semrl.metrics.surface import CorpusScore


def pairwise_similarity(
    hyps: Sequence[str], refs: Sequence[str], encoder: str | None, device: str | None = None
) -> list[float]:
    texts = DistinctTextEncoder(load_encoder(encoder, device))
    keep = [i for i, h in enumerate(hyps) if h.strip()]
    scores = [0.0] * len(hyps)
    for i, value in zip(keep, texts.cosine([hyps[i] for i in keep], [refs[i] for i in keep]), strict=True):
        scores[i] = value
    return scores


def semantic_similarity(
    hyps: Sequence[str], refs: Sequence[str], encoder: str | None, device: str | None = None
) -> CorpusScore:
    """Mean cosine in [-1, 1] and its signature."""
    scores = pairwise_similarity(hyps, refs, encoder, device)
    value = sum(scores) / len(scores) if scores else 0.0
    return CorpusScore(
        value, f"sim|cosine|mean|encoder:{encoder or 'default'}|resolved:{resolve_encoder(encoder)}|empty:0"
    )
