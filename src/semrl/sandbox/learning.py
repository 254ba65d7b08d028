"""Did an RL arm learn at all? A claim about an arm says nothing when the arm never moved, so the
claims check two signs first: the logged reward rose (its late mean minus its early mean, with a
bootstrap interval: `reward_trend`, in evaluate/trends.py since the hacking warning reads it too)
and the weights moved away from the init model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from semrl.api import MIN_ENTRIES, MIN_WINDOW, read_json, reward_trend

__all__ = ["MIN_ENTRIES", "MIN_WINDOW", "learning_status", "reward_trend", "weight_movement"]


def learning_status(trend: dict[str, Any]) -> tuple[str, str]:
    """("learned" | "did not learn" | "unknown", why), for claims that need a learning arm.

    "unknown" means the log was too short to tell; it is neither evidence of learning nor of its absence.
    """
    if trend.get("learned") is None:
        return "unknown", trend.get("reason", "no reward trend")
    return ("learned" if trend["learned"] else "did not learn"), trend["reason"]


def _tensor_files(path: Path) -> dict[str, Path]:
    """Tensor name -> safetensors file, for a folder with model.safetensors (or its sharded index)
    or for a .safetensors file itself."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_file():
        files = [path]
    elif (path / "model.safetensors").exists():
        files = [path / "model.safetensors"]
    elif (path / "model.safetensors.index.json").exists():
        index = read_json(path / "model.safetensors.index.json")
        return {name: path / shard for name, shard in index["weight_map"].items()}
    else:
        raise FileNotFoundError(f"no model.safetensors (or index) in {path}")
    names: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            names.update({name: file for name in handle.keys()})
    return names


def _pairs(init: dict[str, Path], final: dict[str, Path]) -> Iterator[tuple[Any, Any]]:
    """(init tensor, final tensor) for every name in both, one at a time to keep memory flat."""
    from safetensors import safe_open

    for name in sorted(set(init) & set(final)):
        with safe_open(str(init[name]), framework="pt") as a:
            before = a.get_tensor(name)
        with safe_open(str(final[name]), framework="pt") as b:
            yield before, b.get_tensor(name)


def weight_movement(init_dir: Path | str, final_dir: Path | str) -> dict[str, Any]:
    """How far training moved the weights: l2 = ||final - init|| over all shared tensors,
    relative = l2 / ||init||, and the largest single change. Tensors whose shapes differ are skipped.

    With no tensor in common (e.g. an adapter-only save) the numbers are None, not 0, so "did not
    move" is never reported by mistake.
    """
    import torch

    squared, init_squared, max_abs, tensors = 0.0, 0.0, 0.0, 0
    for a, b in _pairs(_tensor_files(Path(init_dir)), _tensor_files(Path(final_dir))):
        if a.shape != b.shape:
            continue
        a, b = a.to(torch.float64), b.to(torch.float64)
        delta = b - a
        squared += float((delta * delta).sum())
        init_squared += float((a * a).sum())
        if delta.numel():
            max_abs = max(max_abs, float(delta.abs().max()))
        tensors += 1
    if not tensors:
        return {"l2": None, "relative": None, "max_abs": None, "tensors": 0}
    l2 = math.sqrt(squared)
    return {
        "l2": l2,
        "relative": l2 / math.sqrt(init_squared) if init_squared > 0 else None,
        "max_abs": max_abs,
        "tensors": tensors,
    }
