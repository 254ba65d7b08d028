"""Text checks on validated rows, before training: what is repaired (with a warning) and what is refused.

Repaired: text not in Unicode NFC is normalised (NFD Tibetan or Chinese would tokenise differently
from the same text in NFC, silently splitting the vocabulary); zero-width spaces, word joiners and
stray byte-order marks inside text are removed (invisible, and they break syllable and word
boundaries). ZWJ/ZWNJ are kept: some scripts need them.
Refused: fields longer than `max_chars` (a 1 MB "sentence" is a broken export, not data) and
duplicate ids (paired statistics and resumed runs key on them).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from semrl.notices import warn
from semrl.text.visible import INVISIBLE, blank

MAX_CHARS = 100_000


def empty_problem(column: str, value: str, noun: str = "column") -> str | None:
    """`column 'x' is empty` (saying when only invisible characters made it look filled), or None."""
    if not blank(value):
        return None
    invisible = " (it holds only invisible characters)" if value.strip() else ""
    return f"{noun} {column!r} is empty{invisible}"


def repair_text_fields(rows: list[dict[str, Any]], source: str, fields: list[str]) -> None:
    """NFC-normalise and drop invisible characters in place; one warning per kind of repair."""
    first_nfc: tuple[Any, str] | None = None
    first_invisible: tuple[Any, str, str] | None = None
    count_nfc = count_invisible = 0
    for row in rows:
        for field in fields:
            value = row.get(field)
            if not isinstance(value, str):
                continue
            found = [code for char, code in INVISIBLE.items() if char in value]
            if found:
                count_invisible += 1
                first_invisible = first_invisible or (row.get("__line__", "?"), field, found[0])
                for char in INVISIBLE:
                    value = value.replace(char, "")
            if not unicodedata.is_normalized("NFC", value):
                count_nfc += 1
                first_nfc = first_nfc or (row.get("__line__", "?"), field)
                value = unicodedata.normalize("NFC", value)
            row[field] = value
    if first_nfc:
        warn(
            f"{source}: {count_nfc} field(s) not in Unicode NFC (first: line {first_nfc[0]}, field "
            f"{first_nfc[1]!r}); normalised to NFC"
        )
    if first_invisible:
        line, field, code = first_invisible
        warn(
            f"{source}: invisible characters removed from {count_invisible} field(s) (first: line {line}, "
            f"field {field!r}, {code})"
        )


def text_problems(rows: list[dict[str, Any]], fields: list[str], max_chars: int = MAX_CHARS) -> list[str]:
    """`line N: ...` for fields over the length limit."""
    problems = []
    for row in rows:
        for field in fields:
            value = row.get(field)
            if isinstance(value, str) and len(value) > max_chars:
                problems.append(
                    f"line {row.get('__line__', '?')}: field {field!r} is {len(value):,} characters long "
                    f"(limit {max_chars:,}; set data.max_chars to allow more)"
                )
    return problems


def duplicate_id_problems(rows: list[dict[str, Any]], field: str = "id") -> list[str]:
    seen: dict[str, Any] = {}
    problems = []
    for row in rows:
        if field not in row or row[field] is None:
            continue
        key = str(row[field])
        if key in seen:
            problems.append(
                f"line {row.get('__line__', '?')}: duplicate {field} {key!r} (first on line {seen[key]})"
            )
        else:
            seen[key] = row.get("__line__", "?")
    return problems
