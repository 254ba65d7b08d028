"""Embedding cache: each distinct text is encoded once, then looked up.

In GRPO every reference is repeated once per generation in the group, and small policies often
produce the same completion several times; the naive reward re-encodes all of them on every
call. Here a call encodes only the texts it has not seen (deduplicated, in batches), keeps the
unit-normalised vectors in a bounded LRU map, and returns cosine similarities by dot product.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch


def encodable(text: str) -> str:
    """Text a tokenizer accepts: lone surrogates (possible in Python strings, never in UTF-8 files)
    become U+FFFD instead of crashing the fast tokenizer."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


class EmbeddingCache:
    """Normalised embeddings of texts under one encoder, LRU-bounded to `max_items`."""

    def __init__(self, model, batch_size: int = 64, max_items: int = 200_000):
        self.model = model
        self.batch_size = batch_size
        self.max_items = max_items
        self._store: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = 0  # texts actually sent to the encoder (for benchmarks and tests)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(len(texts), dim) float32 CPU tensor of unit vectors, in input order."""
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
            for text, vector in zip(missing, vectors):
                self._store[text] = vector
        rows = []
        for text in texts:
            self._store.move_to_end(text)
            rows.append(self._store[text])
        while len(self._store) > self.max_items:
            self._store.popitem(last=False)
        if not rows:
            return torch.zeros(0, 0)
        return torch.stack(rows)

    def cosine(self, left: Sequence[str], right: Sequence[str]) -> list[float]:
        """Row-wise cosine similarity of left[i] and right[i], each in [-1, 1]."""
        if not left:
            return []
        a, b = self.embed(left), self.embed(right)
        return (a * b).sum(dim=1).clamp(-1.0, 1.0).tolist()


_CACHES: dict[int, EmbeddingCache] = {}


def cache_for(model, batch_size: int = 64) -> EmbeddingCache:
    """One cache per loaded encoder, shared by every reward and metric in the process."""
    key = id(model)
    if key not in _CACHES:
        _CACHES[key] = EmbeddingCache(model, batch_size=batch_size)
    return _CACHES[key]
