"""Is a folder semrl saved (a checkpoint, a stage's final/) still whole? Read from headers, no loading.

A file deleted or cut since it was written must be found before a resume or an evaluation loads it:
the libraries then fail deep inside with a traceback, or (a missing optimizer state) resume quietly
on something else. A safetensors file is whole when its header parses and the file is as long as the
header says; a torch file (optimizer.pt, scheduler.pt, rng_state.pth) when its zip directory, which
torch writes last, is there.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TORCH_STATE = (".pt", ".pth", ".bin")
SHARDED = ("pytorch_model_fsdp", "global_step")  # FSDP's and DeepSpeed's own checkpoint folders
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the header


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file, or None."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return f"{path.name} is truncated ({size} bytes)"
            length = int.from_bytes(head, "little")
            if length > min(size - 8, MAX_HEADER):
                return f"{path.name} is truncated (its header says {length} bytes, the file has {size})"
            header = json.loads(handle.read(length))
        end = max(
            (int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
            default=0,
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        return f"{path.name} is unreadable ({type(exc).__name__})"
    if 8 + length + end > size:
        return f"{path.name} is truncated ({size} of {8 + length + end} bytes)"
    return None


def _torch_state_problem(path: Path) -> str | None:
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        return f"{path.name} is truncated"
    return None


def _indexed_problem(index: Path) -> str | None:
    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{index.name} is unreadable"
    missing = sorted(name for name in shards if not (index.parent / name).is_file())
    return f"{missing[0]} is missing (listed in {index.name})" if missing else None


def weights_problem(folder: Path) -> str | None:
    """Why the saved model in `folder` cannot be loaded as written, or None. A folder with none of the
    usual weight files (an FSDP or DeepSpeed checkpoint's own layout) is judged by the files it has."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder.name} is missing"
    known = any((folder / name).is_file() for name in WEIGHTS + INDEXES)
    sharded = any(p.is_dir() and p.name.startswith(SHARDED) for p in folder.iterdir())
    if not known and not sharded:
        return "its weights (model.safetensors) are missing"
    for index in INDEXES:
        if (folder / index).is_file():
            problem = _indexed_problem(folder / index)
            if problem:
                return problem
    for path in sorted(folder.glob("*.safetensors")):
        problem = safetensors_problem(path)
        if problem:
            return problem
    for path in sorted(p for p in folder.iterdir() if p.suffix in TORCH_STATE and p.is_file()):
        problem = _torch_state_problem(path)
        if problem:
            return problem
    return None
