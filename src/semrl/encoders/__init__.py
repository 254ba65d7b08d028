"""Sentence encoders: offline-first loading (once per process) and per-call encoding of distinct texts."""

from semrl.encoders.distinct import DistinctTextEncoder
from semrl.encoders.loading import DEFAULT_ENCODER, default_encoder_path, load_encoder, resolve_encoder

__all__ = [
    "DEFAULT_ENCODER",
    "DistinctTextEncoder",
    "default_encoder_path",
    "load_encoder",
    "resolve_encoder",
]
