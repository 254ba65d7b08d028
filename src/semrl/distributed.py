"""Which process of a multi-process launch (accelerate / torchrun) this is, for the work only one does."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager


def world_size(env: Mapping[str, str] | None = None) -> int:
    """Processes of the launch (accelerate/torchrun export WORLD_SIZE); 1 when unset, not a
    whole number or below 1, so a stray value never divides the work by zero."""
    env = os.environ if env is None else env
    try:
        return max(int(env.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") in ("0", "-1")


@contextmanager
def main_process_first(device: str):
    """Under `accelerate launch`, let rank 0 prepare the run (folders, tiny base model) while the
    other ranks wait; a no-op in a single process."""
    if world_size() > 1:
        from accelerate import PartialState

        with PartialState(cpu=device == "cpu").main_process_first():
            yield
    else:
        yield
