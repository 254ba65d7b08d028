"""Training stages over TRL (sft, grpo, rm) and sentence-transformers (encoder), and recipes."""
