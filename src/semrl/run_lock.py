"""One process at a time in a run folder.

Two commands writing one run folder (a second `semrl run --resume`, an `eval` while the run trains)
would train over each other's checkpoints and interleave the manifest. Every command that writes
into a run folder holds an advisory `fcntl` lock on `<run>/.run.lock` while it works; a second one is
refused at once, naming the process that holds it. The kernel releases the lock when its holder
dies (kill -9 included), so a killed run never leaves a stale lock behind. Only the main process of
a distributed launch locks (the ranks share its folder); a command that calls another (run ->
eval -> report) holds the one lock throughout. Where `fcntl` is missing (Windows) there is no lock.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from semrl.distributed import is_main_process
from semrl.errors import UserError

LOCK_FILE = ".run.lock"  # made with the run folder, before anything else
_HELD: dict[Path, int] = {}  # run folders this process holds: how many nested holders


def _holder(path: Path) -> str:
    """What the holding process wrote into the lock file (its pid and command), for the message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another process"
    return text.splitlines()[0][:300] if text else "another process"


@contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold the run folder's lock (made with the folder if needed) for the block; a UserError if a
    live process holds it."""
    key = Path(root).resolve()
    if key in _HELD or not is_main_process():
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
        return
    try:
        import fcntl
    except ImportError:
        yield
        return
    key.mkdir(parents=True, exist_ok=True)
    path = key / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{root}: in use by {_holder(path)}; wait for it to end (or stop it), then run this again"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} (semrl {' '.join(sys.argv[1:])})\n".encode())
        except OSError:  # a full disk: the lock holds all the same, the message names no pid
            pass
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
    finally:
        os.close(fd)  # releases the lock
