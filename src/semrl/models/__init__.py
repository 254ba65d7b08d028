"""Models semrl builds itself (no downloads): tiny causal LMs and classifiers for tests and CPUs."""

from semrl.models.tiny import (
    TinySpec,
    build_tiny_classifier,
    build_tiny_encoder,
    build_tiny_lm,
    train_tokenizer,
)

__all__ = ["TinySpec", "build_tiny_classifier", "build_tiny_encoder", "build_tiny_lm", "train_tokenizer"]
