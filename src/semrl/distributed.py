"""Which process of a multi-process launch (accelerate / torchrun) this is, for the work only one does."""

from __future__ import annotations

import os
from contextlib import contextmanager


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") in ("0", "-1")


@contextmanager
def main_process_first(device: str):
    """Under `accelerate launch`, let rank 0 prepare the run (folders, tiny base model) while the
    other ranks wait; a no-op in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        with PartialState(cpu=device == "cpu").main_process_first():
            yield
    else:
        yield
