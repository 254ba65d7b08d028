"""Encoding the distinct texts of one call: each distinct text is encoded once per call, then looked up.

In GRPO every reference is repeated once per generation in the group, and small policies often
produce the same completion several times; the naive reward re-encodes all of them on every
call. Here a call encodes each distinct text once (in batches), and returns cosine similarities
of the unit-normalised vectors by dot product.

Nothing is remembered from one call to the next, on purpose: a text's vector depends in the last
bits on which texts share its batch (padding, and the kernel chosen for the batch size: up to
3e-8 measured on CPU). With memory across calls, a reward at step 12 depended on what steps 1-11
had encoded in this process, so a GRPO stage resumed from a checkpoint drifted from an
uninterrupted one; without it, every call's result is a function of that call's texts alone.
Across-call reuse bought little: GRPO brings new prompts every step (benchmarks/reward_throughput.py).
The one exception is the contrast bank (rewards/contrast.py): embedded once, in one fixed call,
when a stage starts, so it is a function of the stage's rows and seed alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from semrl.text.surrogates import encodable

if TYPE_CHECKING:  # torch loads with the encoder, so parsing a config stays fast
    import torch


class DistinctTextEncoder:
    """Normalised embeddings of the distinct texts of one call under one encoder. Each reward term
    and metric makes its own (with its own batch size); there is no process-wide registry."""

    def __init__(self, model, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size
        self._store: dict[str, torch.Tensor] = {}
        self.encoded = 0  # texts actually sent to the encoder (for benchmarks and tests)

    def _embed(self, texts: Sequence[str]) -> torch.Tensor:
        import torch

        missing = list(dict.fromkeys(t for t in texts if t not in self._store))
        if missing:
            vectors = self.model.encode(
                [encodable(text) for text in missing],
                batch_size=self.batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            vectors = torch.nan_to_num(vectors.detach().float().cpu())
            self.encoded += len(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._store[text] = vector
        if not texts:
            return torch.zeros(0, 0)
        return torch.stack([self._store[text] for text in texts])

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(len(texts), dim) float32 CPU tensor of unit vectors, in input order."""
        try:
            return self._embed(texts)
        finally:
            self._store.clear()

    def embed_groups(self, *groups: Sequence[str]) -> list[torch.Tensor]:
        """Each group's vectors, in input order; a text in several groups is encoded once. The
        groups are encoded one after the other (the first group's missing texts in one `encode`,
        then the second's...), so a group's vectors do not depend on the texts of later groups."""
        try:
            return [self._embed(group) for group in groups]
        finally:
            self._store.clear()

    def cosine(self, left: Sequence[str], right: Sequence[str]) -> list[float]:
        """Row-wise cosine similarity of left[i] and right[i], each in [-1, 1]."""
        if not left:
            return []
        try:
            a, b = self._embed(left), self._embed(right)  # a text on both sides is encoded once
        finally:
            self._store.clear()
        return (a * b).sum(dim=1).clamp(-1.0, 1.0).tolist()
