"""Sentence encoders: offline-first loading and a per-process embedding cache."""

from semrl.encoders.cache import EmbeddingCache, cache_for
from semrl.encoders.loading import DEFAULT_ENCODER, default_encoder_path, load_encoder, resolve_encoder

__all__ = ["DEFAULT_ENCODER", "EmbeddingCache", "cache_for", "default_encoder_path", "load_encoder", "resolve_encoder"]
