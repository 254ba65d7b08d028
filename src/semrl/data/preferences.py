"""Preference pairs in the M-RewardBench layout: prompt, chosen, rejected, language, category.

Pairs come from local JSONL/CSV/TSV/Parquet or a datasets id, are validated row by row before any
model is loaded (every problem named by file, line and field), can be split by language, and can be
machine-translated into another language: the setting of Hong et al., where a target-language RM
is trained on translated copies of English pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from semrl.data.loading import LINE, load_table
from semrl.data.quality import empty_problem, repair_text_fields, text_problems
from semrl.errors import UserError, problems_error
from semrl.notices import warn

ROLES = ("prompt", "chosen", "rejected", "language", "category")
REQUIRED = ("chosen", "rejected")
Translator = Callable[[list[str]], list[str]]


def _problem(row: dict[str, Any], role: str, column: str, required: bool) -> str | None:
    if column not in row or row[column] is None:
        return f"missing field {column!r} ({role})" if required else None
    value = row[column]
    if not isinstance(value, str):
        return f"field {column!r} must be text, got {type(value).__name__}"
    return empty_problem(column, value, "field") if required else None


def validate_pairs(
    rows: list[dict[str, Any]],
    source: str,
    columns: dict[str, str],
    language: str | None,
    max_report: int = 5,
) -> list[dict[str, Any]]:
    """Rows -> pairs with every role filled; raises one UserError listing the first problems."""
    unknown = [role for role in columns if role not in ROLES]
    if unknown:
        raise UserError(f"{source}: columns: unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    names = {role: columns.get(role, role) for role in ROLES}

    text_fields = [names[role] for role in ("prompt", "chosen", "rejected")]
    repair_text_fields(rows, source, text_fields)
    problems: list[str] = text_problems(rows, text_fields)
    count = len(problems)
    pairs = []
    for row in rows:
        found = []
        for role, column in names.items():
            needed = role in REQUIRED or (role == "language" and language is None)
            problem = _problem(row, role, column, needed)
            if problem:
                found.append(problem)
        if not found and row[names["chosen"]] == row[names["rejected"]]:
            found.append(f"fields {names['chosen']!r} and {names['rejected']!r} are identical")
        if found:
            count += len(found)
            problems.extend(f"line {row.get(LINE, '?')}: {p}" for p in found)
            continue
        pairs.append(
            {
                "prompt": row.get(names["prompt"]) or "",
                "chosen": row[names["chosen"]],
                "rejected": row[names["rejected"]],
                "language": row.get(names["language"]) or language,
                "category": row.get(names["category"]) or "all",
                LINE: row.get(LINE),
            }
        )
    if problems:
        error = problems_error(source, problems, count, max_report)
        if language is None and "(language)" in str(error):
            error = UserError(f"{error} (or give the file's language)")
        raise error
    return pairs


def load_preferences(
    source: str,
    columns: dict[str, str] | None = None,
    language: str | None = None,
    fmt: str = "auto",
    hf_split: str = "train",
) -> list[dict[str, Any]]:
    """Validated pairs from a file or datasets id; `language` fills rows that carry none."""
    return validate_pairs(load_table(source, fmt, hf_split), source, columns or {}, language)


def by_language(pairs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Pairs grouped by their language, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for pair in pairs:
        groups.setdefault(pair["language"], []).append(pair)
    return groups


def translate_pairs(
    pairs: Sequence[dict[str, Any]], translate: Translator, language: str, batch_size: int = 64
) -> list[dict[str, Any]]:
    """Copies of `pairs` with prompt, chosen and rejected translated by `translate` (a batch of texts
    in, the same number out), tagged with the new language; categories are kept. Pairs whose two
    answers translate to the same text are dropped (with a warning)."""
    out: list[dict[str, Any]] = []
    collapsed = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        texts = [pair[field] for pair in chunk for field in ("prompt", "chosen", "rejected")]
        translated = translate(texts)
        if len(translated) != len(texts):
            raise UserError(f"translator returned {len(translated)} texts for {len(texts)}")
        for i, pair in enumerate(chunk):
            prompt, chosen, rejected = translated[3 * i : 3 * i + 3]
            if chosen == rejected:  # the translation erased the difference: no preference left to learn
                collapsed += 1
                continue
            out.append(
                {
                    **pair,
                    "prompt": prompt if pair["prompt"] else "",
                    "chosen": chosen,
                    "rejected": rejected,
                    "language": language,
                    "translated_from": pair["language"],
                }
            )
    if collapsed:
        warn(
            f"translation into {language}: {collapsed} of {len(pairs)} pairs came out with chosen == "
            "rejected; dropped"
        )
    return out
