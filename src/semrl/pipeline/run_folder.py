"""Is `--out` a place a run may be written (or resumed)? Checked before anything is written.

What users expect, and what semrl does:
- `--out` names a missing folder: a new run is made there (parents too).
- `--out` names a semrl run (it has manifest.json): refused without `--resume` (so a finished run is
  never overwritten); `--resume` continues it.
- `--out` names an empty folder: a new run is made there. `--resume` on it is refused: there is no run
  to continue, and a typo in the path should not silently start hours of training. (`--resume` on a
  missing folder starts the run: a script may always pass it.)
- `--out` names a non-empty folder that is not a run (the user's own files): refused, with or without
  `--resume`, and the folder is left exactly as it was. semrl will not mix its outputs with other
  files, or later overwrite one of them (config.yaml, data/, eval/); choose a new folder.
- `--out` names a file, or a path under a file, or a folder semrl cannot write: refused.
A folder holding only what a start writes before its manifest (its lock file, config.yaml; a run killed
in its first second) counts as empty, so the same command can be run again.
"""

from __future__ import annotations

from pathlib import Path

from semrl.errors import UserError
from semrl.files import check_output_folder
from semrl.run_lock import LOCK_FILE

MANIFEST = "manifest.json"
BEFORE_MANIFEST = (
    "config.yaml",
    ".config.yaml.",
    ".manifest.json.",
)  # what Run.open writes first (and temp files)


def _pre_manifest(name: str) -> bool:
    return name in ("config.yaml", LOCK_FILE) or name.startswith(BEFORE_MANIFEST[1:])


def check_run_folder(root: Path, resume: bool, flag: str = "--out") -> None:
    """UserError unless `root` may hold this run (see the module doc); writes nothing."""
    root = Path(root)
    try:
        check_output_folder(root, flag, kind="run folder")
        if not root.exists():
            return
        if (root / MANIFEST).is_file():
            return  # a run: Run.open refuses it without --resume and checks the config on resume
        entries = [entry.name for entry in root.iterdir()]
    except OSError as exc:  # unreadable folder, symlink loop above it
        raise UserError(f"{flag} {root}: cannot be read ({exc.strerror or exc})") from None
    if resume and not entries:
        raise UserError(
            f"{flag} {root}: not a semrl run (no {MANIFEST}), so there is nothing to resume; "
            "drop --resume to start a run in a new folder"
        )
    if any(not _pre_manifest(name) for name in entries):
        raise UserError(
            f"{flag} {root}: folder is not empty and is not a semrl run (no {MANIFEST}); semrl does "
            "not write among other files"
            + (", nor resumes what is not a run" if resume else "")
            + ": give a new or empty folder"
        )
