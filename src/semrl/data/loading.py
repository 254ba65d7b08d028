"""Load a table of rows from a local file or a datasets id, and validate it up front.

Every row carries the line (JSONL/CSV/TSV) or row number (Parquet/datasets) it came from, so a
problem at row 41,207 is reported as such before any training starts.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from semrl.data.quality import empty_problem
from semrl.errors import UserError, problems_error
from semrl.files import read_jsonl, read_text

LINE = "__line__"
_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


def _detect(source: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(source).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if Path(source).exists():
        raise UserError(f"{source}: unknown file type {suffix!r}; set data.format (jsonl, csv, tsv, parquet)")
    return "hf"


def _read_delimited(path: str, delimiter: str) -> list[dict[str, Any]]:
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[dict[str, Any]] = []
    header: list[str] | None = None
    for record in reader:
        line = reader.line_num
        if header is None:
            header = [name.strip() for name in record]
            if not header or any(not name for name in header):
                raise UserError(f"{path}: line 1: header has an empty column name")
            if len(set(header)) != len(header):
                raise UserError(f"{path}: line 1: duplicate column names in header")
            continue
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise UserError(f"{path}: line {line}: {len(record)} fields, header has {len(header)}")
        rows.append({**dict(zip(header, record, strict=True)), LINE: line})
    if not rows:
        raise UserError(f"{path}: no rows")
    return rows


def _read_parquet(path: str) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:  # pyarrow raises several types for a broken file
        raise UserError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    return [{**row, LINE: i + 1} for i, row in enumerate(table.to_pylist())]


def _read_hf(name: str, split: str) -> list[dict[str, Any]]:
    from datasets import load_dataset

    try:
        dataset = load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, missing, bad split or script: all user-facing
        raise UserError(
            f"{name}: not a local file and not loadable as a datasets id ({str(exc).splitlines()[0]})"
        ) from None
    return [{**row, LINE: i + 1} for i, row in enumerate(dataset)]


def load_table(
    source: str, fmt: str = "auto", hf_split: str = "train", field: str | None = None
) -> list[dict[str, Any]]:
    """Rows as dicts with a `__line__` key; raises UserError naming the file and line (and the
    config field that named the file, when given)."""
    kind = _detect(source, fmt)
    if kind != "hf" and not Path(source).exists():
        missing = "a symlink loop or a link to nothing" if Path(source).is_symlink() else "file not found"
        raise UserError(f"{field + ': ' if field else ''}{source}: {missing}")
    if kind == "jsonl":
        return read_jsonl(source)
    if kind in ("csv", "tsv"):
        return _read_delimited(source, "," if kind == "csv" else "\t")
    if kind == "parquet":
        return _read_parquet(source)
    return _read_hf(source, hf_split)


def require_columns(
    rows: list[dict[str, Any]], source: str, fields: dict[str, str], max_report: int = 5
) -> None:
    """Each role's column is present, a string, and not blank; all problems (up to a few) on one line."""
    problems: list[str] = []
    count = 0
    for row in rows:
        for role, column in fields.items():
            value = row.get(column)
            problem = None
            if column not in row:
                problem = f"missing column {column!r} ({role})"
            elif not isinstance(value, str):
                problem = f"column {column!r} must be text, got {type(value).__name__}"
            else:
                problem = empty_problem(column, value)
            if problem:
                count += 1
                if len(problems) < max_report:
                    problems.append(f"line {row.get(LINE, '?')}: {problem}")
    if problems:
        raise problems_error(source, problems, count)
