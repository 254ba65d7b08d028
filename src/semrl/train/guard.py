"""Stopping a training stage safely: on Ctrl-C, and on NaN/inf.

Ctrl-C (SIGINT) or SIGTERM once: the stage finishes the current step, saves a checkpoint and
stops; the CLI then says how to resume. Twice: stop at once (the last periodic checkpoint stays).
SIGTERM is what a cluster sends before preempting a job, and what torchrun (accelerate launch)
sends its workers when the launcher itself gets Ctrl-C. Under several processes all ranks agree
on the step to stop at (`stop_agreed`), so they save one consistent checkpoint.
A non-finite logged value (loss, grad norm, reward or any reward component, KL, ...) stops the
stage the same way, naming the step and the value, instead of training on; non-finite logits
while generating (torch refuses to sample from them) are reported with the step as well.

The non-finite value itself is kept out of the trainer's log history: it becomes null there, with
`"nonfinite": {key: "nan" | "inf" | "-inf"}` in the same entry, so trainer_state.json (saved after
the log), log_history.json and metrics.json stay strict JSON (jq, JSON.parse) while still saying
what happened. The stage's manifest entry names the first such value and its step.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from pathlib import Path

from semrl.disk import disk_guard
from semrl.distributed import is_main_process
from semrl.recipes.plan import STAGES_FOLDER
from semrl.train.common import discard_incomplete_checkpoints, latest_checkpoint, quiet
from semrl.train.sharded import prepare_fsdp

_INTERRUPTED = threading.Event()


class StageStopped(Exception):
    """A stage stopped early on purpose, with a checkpoint; the message is one line."""

    exit_code = 1


class Interrupted(StageStopped):
    exit_code = 130


class NonFinite(StageStopped):
    exit_code = 1


STOP_SIGNALS = ("SIGINT", "SIGTERM")  # Ctrl-C; a cluster's preemption or torchrun shutting its workers down


class Signalled(BaseException):
    """SIGINT or SIGTERM outside a stage's guard (loading, preflight, evaluation, between stages): the
    command stops where it is. A BaseException, like KeyboardInterrupt, so no `except Exception`
    swallows it; not a KeyboardInterrupt, which the CLI library turns into a silent exit."""

    def __init__(self, signum: int):
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


def _raise_signalled(signum, frame) -> None:
    raise Signalled(signum)


def stop_on_signals() -> dict[int, object]:
    """From now on SIGINT and SIGTERM raise Signalled (a stage's guard replaces this while it trains,
    then puts it back); returns the handlers it replaced, for `restore_signals`."""
    previous: dict[int, object] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for name in STOP_SIGNALS:
        number = getattr(signal, name)
        previous[number] = signal.getsignal(number)
        signal.signal(number, _raise_signalled)
    return previous


def restore_signals(previous: dict[int, object]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)  # type: ignore[arg-type]


def _on_stop_signal(signum, frame) -> None:
    if _INTERRUPTED.is_set():
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
        raise KeyboardInterrupt
    _INTERRUPTED.set()
    if os.environ.get("RANK", "0") == "0":
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        sys.stderr.write(
            f"\nsemrl: {name}: stopping after this step and saving a checkpoint (again to stop at once)\n"
        )


def stop_agreed(args, asked: bool) -> bool:
    """Whether any process was asked to stop, the same answer on every rank. Under a launcher each
    process gets the signal at its own moment (one in step 5, another in step 6); ranks that stop
    at different steps would wait forever on each other's collectives or save checkpoints of
    different steps. One max all-reduce per step makes them stop together."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return asked
    flag = torch.tensor([1 if asked else 0], device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def null_nonfinite_entry(entry: dict) -> dict:
    """A log-history entry with NaN/inf values replaced by None, named under "nonfinite"."""
    bad = {
        key: str(value)
        for key, value in entry.items()
        if isinstance(value, float) and not math.isfinite(value)
    }
    if not bad:
        return entry
    return {
        **{key: None if key in bad else value for key, value in entry.items()},
        "nonfinite": {**entry.get("nonfinite", {}), **bad},
    }


def guard_callback():
    from transformers import TrainerCallback

    class Guard(TrainerCallback):
        def __init__(self) -> None:
            self.problem: str | None = None
            self.interrupted_at: int | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            # a resumed checkpoint's history: the same nulling as each new entry gets in on_log
            state.log_history[:] = [null_nonfinite_entry(entry) for entry in state.log_history]

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.log_history:  # the entry Trainer.log just appended (a copy of `logs`, plus the step)
                state.log_history[-1] = null_nonfinite_entry(state.log_history[-1])
            for key, value in (logs or {}).items():
                # TRL logs a NaN mean as None; for loss, grad norm and rewards that still means NaN
                if value is None and (key in ("loss", "grad_norm") or key.startswith("reward")):
                    value = float("nan")
                if isinstance(value, float) and not math.isfinite(value) and self.problem is None:
                    self.problem = f"non-finite {key} ({value}) at step {state.global_step}"
                    control.should_save = True
                    control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):
            if stop_agreed(args, _INTERRUPTED.is_set()) and self.interrupted_at is None:
                self.interrupted_at = state.global_step
                control.should_save = True
                control.should_training_stop = True

    return Guard()


def _is_nonfinite_sampling(exc: RuntimeError) -> bool:
    text = str(exc).lower()
    return "inf" in text and "nan" in text and ("probability" in text or "multinomial" in text)


def stage_run_name(out_dir: Path, label: str) -> str:
    """`<run folder>/<arm>/<stage>` (e.g. tiny-bo-zh/semantic_rl/grpo): a logger's name for the stage,
    unique within a project where transformers would leave it unnamed (wandb picks random words).
    A folder elsewhere than stages/<hash>, train/<stage> or encoder/ of a run is named by its label."""
    parts = Path(out_dir).parts
    depth = label.count("/") + 1
    in_run = "/".join(parts[-depth:]) == label or (len(parts) > 2 and parts[-2] == STAGES_FOLDER)
    return f"{parts[-depth - 1]}/{label}" if in_run and len(parts) > depth else label


def finish_wandb(failed: bool) -> None:
    """Close the stage's wandb run. transformers' WandbCallback opens one and never finishes it: the
    next stage of `semrl run` logged into the same run, and at exit wandb abandoned the run's last
    records (no exit record in the offline file). A no-op unless wandb was imported and a run is open."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def train_guarded(trainer, out_dir: Path, resume: bool, label: str) -> None:
    """trainer.train() with the Ctrl-C and NaN guards; raises StageStopped after a guarded stop."""
    if resume and is_main_process():
        _discard_unusable_checkpoints(out_dir, label)
    prepare_fsdp(trainer)
    if trainer.args.run_name is None:  # what wandb shows for the stage's run
        trainer.args.run_name = stage_run_name(out_dir, label)
    guard = guard_callback()
    trainer.add_callback(guard)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            number = getattr(signal, name)
            previous[number] = signal.getsignal(number)
            signal.signal(number, _on_stop_signal)
    try:
        with disk_guard(out_dir, lambda: checkpoint_bytes(trainer, out_dir)):
            try:
                quiet(trainer).train(resume_from_checkpoint=latest_checkpoint(out_dir) if resume else None)
            except Exception:
                if is_main_process():  # a partial checkpoint (a full disk) gives its room back now
                    discard_incomplete_checkpoints(out_dir)
                raise
    except RuntimeError as exc:
        if not _is_nonfinite_sampling(exc):
            raise
        raise NonFinite(
            f"{label}: non-finite logits while generating at step {trainer.state.global_step} "
            f"({str(exc).splitlines()[0]}); last checkpoint: {latest_checkpoint(out_dir) or 'none'}"
        ) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        finish_wandb(
            failed=sys.exc_info()[0] is not None
            or guard.problem is not None
            or guard.interrupted_at is not None
        )
    checkpoint = latest_checkpoint(out_dir)
    if guard.problem:
        raise NonFinite(
            f"{label}: {guard.problem}; stopped instead of training on; checkpoint: {checkpoint}. "
            "Lower the learning rate or check the reward, then resume from an earlier checkpoint"
        )
    if guard.interrupted_at is not None:
        _INTERRUPTED.clear()
        raise Interrupted(
            f"{label}: interrupted at step {guard.interrupted_at}; checkpoint saved in {checkpoint}"
        )


def _discard_unusable_checkpoints(out_dir: Path, label: str) -> None:
    """Before a resume: remove checkpoints a kill left half-written or that were damaged since, and
    say which one the stage resumes from instead."""
    removed = discard_incomplete_checkpoints(out_dir)
    for name, why in removed:
        sys.stderr.write(f"semrl: {label}: removed {name}: {why}\n")
    if any(why.startswith("damaged") for _, why in removed):
        latest = latest_checkpoint(out_dir)
        instead = (
            f"resuming from {Path(latest).name}" if latest else "no whole checkpoint left: it starts over"
        )
        sys.stderr.write(f"semrl: {label}: {instead}\n")


def checkpoint_bytes(trainer, out_dir: Path) -> int | None:
    """About what one more checkpoint of this stage takes: the newest one's size, or (none yet) the
    saved weights plus Adam's two states for every trained parameter."""
    latest = latest_checkpoint(out_dir)
    if latest is not None:
        return sum(p.stat().st_size for p in Path(latest).rglob("*") if p.is_file())
    try:
        params = list(trainer.model.parameters())
        trained = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
        saved = (
            trained
            if hasattr(trainer.model, "peft_config")
            else sum(p.numel() * p.element_size() for p in params)
        )
    except (AttributeError, TypeError):
        return None
    return saved + 2 * trained


def interrupted_message(argv: list[str]) -> str:
    """How to pick up where a stopped command left off."""
    import shlex

    command = "semrl " + " ".join(shlex.quote(a) for a in argv)
    resumable = argv[:1] in (["run"], ["train"]) or argv[:2] == ["rm", "transfer"]
    if resumable:
        return f"resume with: {command}{'' if '--resume' in argv else ' --resume'}"
    return f"run again: {command}"
