"""Decoded completions cut by a token limit: the incomplete character they end with.

Byte-level BPE tokenizers (Llama, SmolLM2, GPT-2) hold a Chinese or Tibetan character as two to
four byte tokens. A completion stopped by `max_completion_length` / `max_new_tokens` can end after
the first of them, and decoding turns those bytes into U+FFFD. That character was never written:
scored as part of the answer it costs chrF a character, the encoder a meaning, the metrics a token.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def strip_broken_tail(text: str) -> str:
    """`text` without the run of U+FFFD at its end (the bytes of a character the limit cut off).

    Only the tail: a U+FFFD inside the text is followed by more text, so no limit cut it there; it
    is what the model wrote and stays. Nothing else is removed: whitespace before the run was
    written by the model like any other character, and callers that want stripped text strip
    anyway (evaluation does), so this stays the one thing a truncation adds."""
    return text.rstrip(REPLACEMENT)
