"""Is there any text in a string once the safe repairs are made?

Readers repair invisible characters (zero-width space, word joiner, stray byte-order marks) and
normalise to NFC before training or scoring; a field judged non-empty before that repair can be
empty after it, so every emptiness check asks these functions instead of `str.strip()`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

INVISIBLE = {"\u200b": "U+200B", "\u2060": "U+2060", "\ufeff": "U+FEFF"}


def repaired(value: str) -> str:
    """The text training and scoring see: invisible characters dropped, then NFC."""
    for char in INVISIBLE:
        value = value.replace(char, "")
    return unicodedata.normalize("NFC", value)


def blank(value: str) -> bool:
    """Nothing visible once repaired (only whitespace and format characters such as ZWJ)."""
    stripped = value.strip()
    if stripped and unicodedata.category(stripped[0]) != "Cf":
        return False  # the common case, decided by the first character
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in repaired(value))


def filled(value: Any) -> bool:
    """Text with something visible in it once repaired."""
    return isinstance(value, str) and not blank(value)
