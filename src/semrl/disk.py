"""A write that fails because the disk (or a quota, or a file size limit) is full.

The libraries report it in their own words: an OSError with ENOSPC from Python, `basic_ios::clear:
iostream error` or `PytorchStreamWriter failed writing file` from torch's C++ writer, `IoError(Os {
code: 28 ...})` from safetensors. `disk_guard` turns each into one DiskFull naming the path, the free
space there and what the write needs, so the CLI can say it in one line (exit 1) and the run stays
resumable (every file is written atomically; a partial checkpoint is removed).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# what the libraries say when a write fails under them; they keep no errno
LIBRARY_WRITE_FAILURES = (
    "iostream error",  # torch.save, through its C++ stream
    "PytorchStreamWriter failed",
    "file write failed",
    "No space left on device",
    "StorageFull",  # safetensors (Rust's io::ErrorKind)
    "os error 28",
    "os error 27",
    "File too large",
    "Disk quota exceeded",
)


class DiskFull(Exception):
    """Writing `path` failed for lack of room; the message is one line."""

    exit_code = 1

    def __init__(self, path: str | Path, reason: str, needed: int | None = None):
        self.path, self.reason, self.needed = Path(path), reason, needed
        free = free_bytes(self.path)
        parts = [f"{self.path}: could not be written: {reason}"]
        if free is not None:
            parts.append(f"{human(free)} free there")
        if needed is not None:
            parts.append(f"it needs about {human(needed)}")
        limit = file_size_limit()
        if limit is not None:
            parts.append(f"and files are limited to {human(limit)} (ulimit -f)")
        super().__init__(", ".join(parts))

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (DiskFull, (self.path, self.reason, self.needed))


def human(size: int) -> str:
    """A byte count as a person reads it: 512 B, 1.4 MiB."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    for candidate in [Path(path), *Path(path).parents]:
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def file_size_limit() -> int | None:
    """This process's file size limit (ulimit -f), when one is set."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def write_failure(exc: BaseException) -> str | None:
    """Why a write failed for lack of room, or None when `exc` is something else."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for link in chain:
        if isinstance(link, OSError) and link.errno in WRITE_ERRNOS:
            return os.strerror(link.errno).lower()
    for link in chain:  # torch's writer fails once, then again on cleanup: the first words say why
        text = str(link)
        if not isinstance(link, OSError) and any(marker in text for marker in LIBRARY_WRITE_FAILURES):
            return f"the disk is full or a limit was reached ({text.splitlines()[0][:120]})"
    return None


@contextmanager
def disk_guard(path: str | Path, needed: Callable[[], int | None] = lambda: None) -> Iterator[None]:
    """Run the block; a write failure for lack of room becomes DiskFull naming the file (or `path`)."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:  # noqa: BLE001 - only a write failure is converted, anything else re-raised
        full = as_disk_full(exc, path, needed)
        if full is None:
            raise
        raise full from None


def as_disk_full(
    exc: BaseException, path: str | Path, needed: Callable[[], int | None] = lambda: None
) -> DiskFull | None:
    """`exc` as a DiskFull naming the file it failed on (else `path`), or None when it is not a write
    that failed for lack of room."""
    if isinstance(exc, DiskFull):
        return exc
    reason = write_failure(exc)
    if reason is None:
        return None
    return DiskFull(getattr(exc, "filename", None) or path, reason, needed())
