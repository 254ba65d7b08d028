"""The checkpoints a stage folder keeps: one reading of the `checkpoint-N` names Trainer writes.

Resuming, the learning curves and the sandbox's selection all walk them in step order; a folder
named otherwise (a user's `checkpoint-old`) or a stray file is not a checkpoint and is skipped,
so one odd name never stops the walk.
"""

from __future__ import annotations

from pathlib import Path


def stage_checkpoints(stage_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every `checkpoint-N` folder in `stage_dir`, by N (oldest first)."""
    found = []
    for path in Path(stage_dir).glob("checkpoint-*"):
        step = path.name.split("-")[-1]
        if path.is_dir() and step.isdigit():
            found.append((int(step), path))
    return sorted(found)
