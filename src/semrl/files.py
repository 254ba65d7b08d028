"""Reading user files strictly (UTF-8, JSONL with line numbers) and writing results atomically.

Every error here names the file and the line, because a user with 50,000 rows needs to know
which one is broken, and a half-written output is worse than none.

JSON is strict both ways: NaN and Infinity are not JSON (jq and JavaScript's JSON.parse refuse
them), so the writers refuse them loudly, naming where the value sits, and an undefined number
is written as null by the code that computes it, with its reason beside it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from semrl.disk import disk_guard
from semrl.errors import UserError, problems_error
from semrl.notices import warn

_BOM = "\ufeff"


def read_text(path: str | Path) -> str:
    """Whole file as text; non-UTF-8 bytes are an error naming the line and column."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"{path}: {'a symlink loop or a link to nothing' if path.is_symlink() else 'file not found'}"
        )
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(
            f"{path}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})"
        ) from None
    if text.startswith(_BOM):
        warn(f"{path}: starts with a UTF-8 byte-order mark; ignored")
        return text[1:]
    return text


def read_lines(path: str | Path) -> list[str]:
    """One segment per line (the sacrebleu convention); CRLF accepted, final newline optional."""
    text = read_text(path)
    if text == "":
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        warn(f"{path}: Windows line endings (CRLF) read as plain line breaks")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_jsonl(
    path: str | Path, max_report: int = 5, numbered: bool = True, allow_empty: bool = False
) -> list[dict[str, Any]]:
    """Rows of a JSONL file; blank lines are skipped, anything else must be a JSON object.
    Every broken line is found before raising (the first few are named). Rows of a user's file
    carry their line number (`__line__`, for messages); `numbered=False` reads a file semrl wrote."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
        except _NonStandardConstant as exc:
            problems.append(f"line {number}: {exc} is not valid JSON (write null, or a number)")
            continue
        except _DuplicateKey as exc:
            problems.append(f"line {number}: duplicate key {exc} (JSON keeps only the last value)")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            problems.append(f"line {number}: JSON nested too deeply")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {number}: expected a JSON object, got {type(row).__name__}")
            continue
        surrogate = _lone_surrogate(row)
        if surrogate is not None:
            problems.append(
                f"line {number}: field {surrogate[0]!r} holds a lone surrogate ({surrogate[1]}), which is "
                "not Unicode text and cannot be written or tokenised"
            )
            continue
        if numbered:
            row["__line__"] = number
        rows.append(row)
    if problems:
        raise problems_error(str(path), problems, max_report=max_report)
    if not rows and not allow_empty:
        raise UserError(f"{path}: no rows")
    return rows


class _NonStandardConstant(ValueError):
    """NaN, Infinity or -Infinity in a JSON text: Python's json accepts them, JSON does not."""


def _refuse_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


class _DuplicateKey(ValueError):
    """A key twice in one JSON object: json.loads would keep the last value without a word."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise _DuplicateKey(repr(key))
        row[key] = value
    return row


def _lone_surrogate(obj: Any, where: str = "") -> tuple[str, str] | None:
    """(field path, escape) of the first string (key or value) holding a lone surrogate: JSON's
    `\\ud800` escape decodes to one, and no UTF-8 writer or tokenizer accepts it."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError as exc:
            return where or "(top level)", f"\\u{ord(obj[exc.start]):04x}"
        return None
    if isinstance(obj, dict):
        items: Iterable[tuple[str, Any]] = (
            (f"{where}.{key}" if where else str(key), value) for key, value in obj.items()
        )
        for path, value in items:
            found = _lone_surrogate(path, path) or _lone_surrogate(value, path)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found = _lone_surrogate(value, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def strip_line_numbers(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "__line__"}


def check_output_file(path: str | Path, flag: str) -> None:
    """UserError unless a file can be written at `path`; run before any work, so a typo in an
    output path costs a second, not the scoring before it. Writes nothing."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name (such as {path / 'out.jsonl'})")
    _check_place(path, flag, "file")


def check_output_folder(path: str | Path, flag: str, empty: bool = False, kind: str = "folder") -> None:
    """UserError unless `path` can be a folder semrl writes into (`kind` names it in the message);
    `empty`: it must also be new or empty (a model folder: config.json and the weights would
    overwrite a user's own). Writes nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file, not a folder; give a {kind}")
    _check_place(path, flag, kind)
    try:
        occupied = empty and path.is_dir() and any(path.iterdir())
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot be read ({exc.strerror or exc})") from None
    if occupied:
        raise UserError(
            f"{flag} {path}: already exists and is not empty; give a new or empty folder, so that "
            "none of the files in it is overwritten"
        )


def _check_place(path: Path, flag: str, kind: str) -> None:
    """The nearest existing folder at or above `path` is a writable folder (not a file, not a
    broken link)."""
    if path.is_symlink() and not path.exists():
        raise UserError(f"{flag} {path}: a broken or looping symlink")
    existing = next((p for p in [path, *path.parents] if p.exists() or p.is_symlink()), None)
    if existing is None:
        return
    if existing != path and not existing.is_dir():
        raise UserError(f"{flag} {path}: {existing} is a file, so the {kind} cannot be made under it")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: {folder} is not writable")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside the target, fsync, then rename: readers never see half a file."""
    path = Path(path)
    with disk_guard(path, lambda: len(data)):  # a full disk: one line naming the file and its size
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextmanager
def publish_folder(final: str | Path, tmp_name: str = "", replace: bool = True) -> Iterator[Path]:
    """A folder written whole or not at all: yields an empty temporary folder beside `final` (one
    an interrupted attempt left is removed first), renamed into place when the block ends, so a
    reader finds no `final` or a complete one, never half of one. A failure removes the temporary
    folder and leaves `final` as it was. `replace`: an existing `final` is removed first (a stage's
    earlier final/); otherwise it may only be an empty folder (a user's --out: no file of theirs
    is ever deleted). `tmp_name`: the temporary folder's name, `final`'s plus `.tmp` by default."""
    final = Path(final)
    tmp = final.with_name(tmp_name or f"{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if replace:
            shutil.rmtree(final, ignore_errors=True)
        elif final.is_dir():
            final.rmdir()  # empty, or an OSError: a folder holding files is not overwritten
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_text(text: str) -> str:
    """The hash a manifest keeps of a file semrl wrote, to tell later whether it changed."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text written to a temporary file and renamed, so a reader never sees half of it."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savefig(fig, path: str | Path, dpi: int = 110) -> None:
    """A matplotlib figure as PNG, written atomically like every other output."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())


def nonfinite_path(obj: Any, where: str = "") -> tuple[str, float] | None:
    """(key path, value) of the first NaN or infinite float in nested dicts and lists, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "(top level)", obj)
    if isinstance(obj, dict):
        items: Iterable[tuple[Any, Any]] = (
            (f"{where}.{key}" if where else str(key), value) for key, value in obj.items()
        )
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", value) for i, value in enumerate(obj))
    else:
        return None
    for path, value in items:
        found = nonfinite_path(value, path)
        if found is not None:
            return found
    return None


def to_json(obj: Any, indent: int | None = None, where: str = "") -> str:
    """Strict JSON text (UTF-8 kept as is). NaN/inf raise a ValueError naming their key path:
    a number with no value must be written as null, with its reason, where it is computed."""
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError as exc:
        if "not JSON compliant" not in str(exc):  # e.g. a circular reference: nothing to locate
            raise
        found = nonfinite_path(obj)
        if found is None:
            raise
        path, value = found
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}refusing to write {value} at {path}: NaN and Infinity are not JSON; "
            "write null (with the reason beside it) where the value is computed"
        ) from None


# the remedy for a file of a run folder that was cut or edited since semrl wrote it
DAMAGED_RUN = "the run folder was damaged since it was written: restore the file, or start a new run (--out)"


_REQUIRED: Any = object()


def read_json(path: str | Path, remedy: str = "", *, default: Any = _REQUIRED, own: bool = True) -> Any:
    """One of semrl's own JSON files. NaN/Infinity (not JSON, though Python's json module writes
    them) read as null, so such a file can still be reported (and its report is strict).
    semrl writes these whole (atomically), so one that is missing or does not parse was removed,
    cut or edited since: a UserError naming the file and where it breaks, and `remedy` if given.
    `default`: returned instead, for a reader that treats an unreadable file as absent (a checkpoint
    interrupted while saving, a stale cache stamp). `own=False`: a file semrl did not write (a
    model's config.json), so a broken one is named as not JSON, not as a run folder cut since."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda name: None)
    except (OSError, ValueError, RecursionError) as exc:
        if default is not _REQUIRED:
            return default
        if not own:
            raise UserError(f"{path}: cannot be read as JSON ({exc})") from None
        after = f"; {remedy}" if remedy else ""
        if isinstance(exc, FileNotFoundError):
            raise UserError(f"{path}: missing{after}") from None
        if isinstance(exc, json.JSONDecodeError):
            raise UserError(
                f"{path}: damaged, not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
                f"semrl writes it whole, so it was cut or edited since{after}"
            ) from None
        if isinstance(exc, (UnicodeDecodeError, IsADirectoryError, RecursionError)):
            raise UserError(f"{path}: damaged ({type(exc).__name__}){after}") from None
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON (no NaN), written whole or not at all."""
    atomic_write_text(path, to_json(obj, indent=2, where=str(path)) + "\n")


def jsonl_text(rows: Iterable[dict[str, Any]], where: str | Path) -> str:
    """Rows as the JSONL text semrl writes (one strict JSON object a line)."""
    return "".join(to_json(row, where=f"{where}: row {i}") + "\n" for i, row in enumerate(rows, 1))


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """One strict JSON object a line, written whole or not at all."""
    atomic_write_text(path, jsonl_text(rows, path))
