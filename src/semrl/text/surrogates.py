"""Text every tokenizer accepts, whatever a Python string holds."""

from __future__ import annotations


def encodable(text: str) -> str:
    """Text a tokenizer accepts: lone surrogates (possible in Python strings, never in UTF-8 files)
    become U+FFFD instead of crashing the fast tokenizer."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
