"""Stopping a training stage safely: on Ctrl-C, and on NaN/inf.

Ctrl-C (SIGINT) once: the stage finishes the current step, saves a checkpoint and stops; the CLI
then says how to resume. Ctrl-C twice: stop at once (the last periodic checkpoint stays).
A non-finite logged value (loss, grad norm, reward or any reward component, KL, ...) stops the
stage the same way, naming the step and the value, instead of training on; non-finite logits
while generating (torch refuses to sample from them) are reported with the step as well.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from pathlib import Path

_INTERRUPTED = threading.Event()


class StageStopped(Exception):
    """A stage stopped early on purpose, with a checkpoint; the message is one line."""

    exit_code = 1


class Interrupted(StageStopped):
    exit_code = 130


class NonFinite(StageStopped):
    exit_code = 1


def _on_sigint(signum, frame) -> None:
    if _INTERRUPTED.is_set():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt
    _INTERRUPTED.set()
    sys.stderr.write("\nsemrl: stopping after this step and saving a checkpoint (Ctrl-C again to stop at once)\n")


def guard_callback():
    from transformers import TrainerCallback

    class Guard(TrainerCallback):
        def __init__(self) -> None:
            self.problem: str | None = None
            self.interrupted_at: int | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            for key, value in (logs or {}).items():
                # TRL logs a NaN mean as None; for loss, grad norm and rewards that still means NaN
                if value is None and (key in ("loss", "grad_norm") or key.startswith("reward")):
                    value = float("nan")
                if isinstance(value, float) and not math.isfinite(value) and self.problem is None:
                    self.problem = f"non-finite {key} ({value}) at step {state.global_step}"
                    control.should_save = True
                    control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):
            if _INTERRUPTED.is_set() and self.interrupted_at is None:
                self.interrupted_at = state.global_step
                control.should_save = True
                control.should_training_stop = True

    return Guard()


def _is_nonfinite_sampling(exc: RuntimeError) -> bool:
    text = str(exc).lower()
    return "inf" in text and "nan" in text and ("probability" in text or "multinomial" in text)


def train_guarded(trainer, out_dir: Path, resume: bool, label: str) -> None:
    """trainer.train() with the Ctrl-C and NaN guards; raises StageStopped after a guarded stop."""
    from semrl.runs import is_main_process
    from semrl.train.common import discard_incomplete_checkpoints, latest_checkpoint, quiet

    if resume and is_main_process():
        for name in discard_incomplete_checkpoints(out_dir):
            sys.stderr.write(f"semrl: {label}: removed incomplete {name} (interrupted while saving)\n")
    guard = guard_callback()
    trainer.add_callback(guard)
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        quiet(trainer).train(resume_from_checkpoint=latest_checkpoint(out_dir) if resume else None)
    except RuntimeError as exc:
        if not _is_nonfinite_sampling(exc):
            raise
        raise NonFinite(f"{label}: non-finite logits while generating at step {trainer.state.global_step} "
                        f"({str(exc).splitlines()[0]}); last checkpoint: {latest_checkpoint(out_dir) or 'none'}") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    checkpoint = latest_checkpoint(out_dir)
    if guard.problem:
        raise NonFinite(f"{label}: {guard.problem}; stopped instead of training on; checkpoint: {checkpoint}. "
                        "Lower the learning rate or check the reward, then resume from an earlier checkpoint")
    if guard.interrupted_at is not None:
        _INTERRUPTED.clear()
        raise Interrupted(f"{label}: interrupted at step {guard.interrupted_at}; checkpoint saved in {checkpoint}")


def interrupted_message(argv: list[str]) -> str:
    """How to pick up where a stopped command left off."""
    import shlex

    command = "semrl " + " ".join(shlex.quote(a) for a in argv)
    resumable = argv[:1] in (["run"], ["train"]) or argv[:2] == ["rm", "transfer"]
    if resumable:
        return f"resume with: {command}{'' if '--resume' in argv else ' --resume'}"
    return f"run again: {command}"
