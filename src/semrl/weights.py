"""Model weights present and whole, checked from the files' headers before any work starts.

A folder with config.json and no weights (an interrupted download, a copy that skipped the large
file) or with a truncated model.safetensors passes every check that reads config.json, and fails
only when a stage loads it, after earlier stages have trained. The safetensors format makes the
check cheap: 8 bytes of header length, a JSON header giving each tensor's byte range, then the
data; a file shorter than the largest range is torn. No tensor is read.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.files import read_json

# transformers' order of preference when a folder holds several
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
MAX_HEADER = 100_000_000  # the safetensors library refuses larger headers


def check_weights(folder: str | Path, field: str) -> None:
    """A local model folder (transformers or sentence-transformers) holds weights whose headers are
    whole; anything else (a hub id, a missing path) is left to the checks that look those up."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return
    modules = _st_modules(root)
    if modules is None:
        _check_model_folder(root, field)
        return
    for path, kind in modules:
        module = root / path
        if kind.rsplit(".", 1)[-1] == "Transformer":  # its module path moved between versions
            _check_model_folder(module, field)
        for file in sorted(module.glob("*.safetensors")) if module.is_dir() else []:
            _raise_if(safetensors_problem(file), file, field)


def check_cached_weights(repo: str, field: str) -> None:
    """A hub id's model.safetensors when it is in the local cache: a torn download is named now
    (what is not cached is fetched later, or reported by the availability check)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "model.safetensors")
    if isinstance(found, str):
        _raise_if(safetensors_problem(Path(found)), Path(found), field)


def _check_model_folder(folder: Path, field: str) -> None:
    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise UserError(
            f"{field}: {folder} has no weights ({', '.join(WEIGHT_FILES[:3])}); the model folder is "
            "incomplete: download or save it again"
        )
    file = folder / present[0]
    if file.name.endswith(".index.json"):
        _check_index(file, field)
    elif file.suffix == ".safetensors":
        _raise_if(safetensors_problem(file), file, field)
    else:
        _raise_if(torch_file_problem(file), file, field)


def _raise_if(problem: str | None, file: Path, field: str) -> None:
    if problem:
        raise UserError(f"{field}: {file} {problem}; download or save the model again")


def safetensors_header(file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the header's tensors, None), or (None, why the file is not a whole safetensors file)."""
    try:
        size = file.stat().st_size
        with file.open("rb") as stream:
            head = stream.read(8)
            if len(head) < 8:
                return None, f"is {size} bytes long: not a safetensors file (truncated?)"
            length = int.from_bytes(head, "little")
            if length > MAX_HEADER or 8 + length > size:
                return (
                    None,
                    f"is truncated or not a safetensors file (header of {length} bytes, file of {size})",
                )
            header = json.loads(stream.read(length))
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except (ValueError, UnicodeDecodeError):
        return None, "has a header that is not JSON: not a safetensors file"
    if not isinstance(header, dict):
        return None, "has a header that is not a JSON object: not a safetensors file"
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    ends = [_end(entry) for entry in tensors.values()]
    if any(end is None for end in ends):
        return None, "has a malformed header (a tensor without data_offsets)"
    data = size - 8 - length
    needed = max((end for end in ends if end is not None), default=0)
    if needed > data:
        return None, f"is truncated: its tensors need {needed} bytes of data, the file holds {data}"
    return tensors, None


def safetensors_problem(file: Path) -> str | None:
    return safetensors_header(file)[1]


def _end(entry: Any) -> int | None:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
        return max(offsets)
    return None


def _check_index(index: Path, field: str) -> None:
    """Every shard a sharded checkpoint's index names exists, is whole and holds its tensors."""
    data = read_json(index, default=None)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserError(f"{field}: {index} is not a sharded-checkpoint index (no weight_map)")
    shards: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        shards.setdefault(str(shard), []).append(tensor)
    for shard, tensors in shards.items():
        file = index.parent / shard
        if not file.is_file():
            raise UserError(f"{field}: {file} is missing (listed in {index.name}); download the model again")
        if file.suffix != ".safetensors":
            _raise_if(torch_file_problem(file), file, field)
            continue
        header, problem = safetensors_header(file)
        _raise_if(problem, file, field)
        absent = [t for t in tensors if header is not None and t not in header]
        if absent:
            raise UserError(
                f"{field}: {file} lacks tensor {absent[0]!r} that {index.name} places there; "
                "download the model again"
            )


def torch_file_problem(file: Path) -> str | None:
    """A torch.save file is a zip archive: one cut short has lost its central directory."""
    try:
        with file.open("rb") as stream:
            magic = stream.read(4)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if magic == b"PK\x03\x04" and not zipfile.is_zipfile(file):
        return "is truncated (a torch zip archive without its end)"
    if not magic:
        return "is empty"
    return None


def _st_modules(root: Path) -> list[tuple[str, str]] | None:
    """(path, type) of each module a sentence-transformers folder lists; None for a plain folder."""
    file = root / "modules.json"
    if not file.is_file():
        return None
    modules = read_json(file, own=False)
    if not isinstance(modules, list):
        raise UserError(f"{file}: not a list of modules")
    return [(str(m.get("path", "")), str(m.get("type", ""))) for m in modules if isinstance(m, dict)]


# -- a folder semrl saved (a checkpoint, a stage's final/): still whole? -------------------------

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
