"""Names that become file or folder names (experiment, arms, reward components, CLI labels).

A name is joined onto a folder (`run / arm / stage`, `eval / f"{name}.json"`); `..` or `a/b` would
then write outside the run folder, `.` into the run folder itself, and a leading dot hides a folder
or a leading dash reads as an option to shell tools. So a name that is a path is refused where it
is given, and every path semrl writes is also checked to resolve inside its root (`inside`), in
case a name (or a symlink already in the folder) slips past the first rule.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from semrl.errors import UserError

SEPARATORS = tuple(sep for sep in ("/", "\\", os.sep, os.altsep, "\0") if sep)


def path_name_problem(name: str) -> str | None:
    """Why `name` cannot be a file name semrl writes, or None."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a name (empty, '.' and '..' are folders)"
    if name.startswith((".", "-")):
        return (
            f"{name!r} starts with {name[0]!r}; names become folder and file names, "
            "start with a letter or digit"
        )
    found = next((sep for sep in SEPARATORS if sep in name), None)
    if found is not None:
        return f"{name!r} holds a path separator {found!r}; names become folder and file names"
    return None


def _path_name(name: str) -> str:
    problem = path_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


PathName = Annotated[str, AfterValidator(_path_name)]
"""A config string that semrl joins onto a folder: refused when it is a path (see module doc)."""

PathText = Annotated[str, StringConstraints(min_length=1)]
"""A file, folder or hub id: an empty one would read as the current folder."""


def require_path_name(name: str, what: str) -> str:
    """A name given on the command line (e.g. `--name`, `--from NAME=...`): UserError naming `what`."""
    problem = path_name_problem(name)
    if problem:
        raise UserError(f"{what}: {problem}")
    return name


def inside(root: Path, path: Path, what: str = "path") -> Path:
    """`path`, after checking that it resolves inside `root` (symlinks followed): the second line of
    defence against a name that is a path, whatever let it through."""
    try:
        resolved_root = Path(root).resolve()
        resolved = Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UserError(f"{path}: cannot be resolved ({exc})") from None
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise UserError(
            f"{what} {path} resolves to {resolved}, outside {resolved_root}; refusing to write there"
        )
    return Path(path)
