"""Is a folder semrl saved (a checkpoint, a stage's final/) still whole? Read from headers, no loading.

A file deleted or cut since it was written must be found before a resume or an evaluation loads it:
the libraries then fail deep inside with a traceback, or (a missing optimizer state) resume quietly
on something else. A safetensors file is whole when its header parses and the file is as long as the
header says; a torch file (optimizer.pt, scheduler.pt, rng_state.pth) when its zip directory, which
torch writes last, is there.
"""

from __future__ import annotations

from pathlib import Path

from semrl.files import read_json
from semrl.weights import safetensors_problem, torch_file_problem

WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TORCH_STATE = (".pt", ".pth", ".bin")
SHARDED = ("pytorch_model_fsdp", "global_step")  # FSDP's and DeepSpeed's own checkpoint folders


def _file_problem(path: Path) -> str | None:
    """The header checks of semrl.weights, phrased for a file of a saved folder."""
    problem = safetensors_problem(path) if path.suffix == ".safetensors" else torch_file_problem(path)
    return f"{path.name} {problem}" if problem else None


def _indexed_problem(index: Path) -> str | None:
    try:
        shards = set(read_json(index, default=None)["weight_map"].values())
    except (KeyError, TypeError, AttributeError):  # unreadable (None), or no map of shard names
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
    files = sorted(folder.glob("*.safetensors"))
    files += sorted(p for p in folder.iterdir() if p.suffix in TORCH_STATE and p.is_file())
    return next((problem for problem in map(_file_problem, files) if problem), None)
