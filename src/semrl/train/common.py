"""What every stage shares: device and dtype, TrainingArguments defaults that suit CPU and GPU,
LoRA, checkpoints, the stage's log summary, and a rich progress line with loss, reward and KL.
Gathering sharded (FSDP, ZeRO-3) weights and saving the final model: train/sharded.py."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from semrl.devices import torch_dtype
from semrl.distributed import is_main_process
from semrl.files import atomic_write_json, read_json
from semrl.train.checkpoints import stage_checkpoints
from semrl.train.settings import StageSettings
from semrl.weights import weights_problem


def training_kwargs(settings: StageSettings, spec, out_dir: Path, device: str) -> dict[str, Any]:
    """TrainingArguments fields common to all stages: bf16 on CUDA when the model is, and no
    activation checkpointing anywhere. TRL's configs turn it on by default (as `gradient_checkpointing`,
    transformers' old name); on CPU that makes GRPO 3.7x slower, and no stage spec offers it, so it is
    off on every device (a spec field for it on large GPU models would also have to reach the memory
    estimate)."""
    import torch

    bf16 = device == "cuda" and torch_dtype(settings.dtype, device) == torch.bfloat16
    return {
        "output_dir": str(out_dir),
        "seed": settings.seed,
        "data_seed": settings.seed,
        "report_to": [] if settings.report_to == "none" else [settings.report_to],
        "use_cpu": device == "cpu",
        "bf16": bf16,
        "activation_checkpointing": False,
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.epochs,
        "max_steps": spec.max_steps,
        "lr_scheduler_type": spec.scheduler,
        "save_strategy": "steps",
        "save_steps": settings.save_every or spec.save_steps,
        "save_total_limit": None if settings.save_every else 2,
        "logging_steps": spec.logging_steps,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def lora_config(spec):
    if spec is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )


_UNREADABLE = object()  # what read_json hands back for a trainer_state.json cut while saving


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None. The Trainer writes trainer_state.json last
    and not atomically, so one without it whole was interrupted while saving; one whose weights or
    optimizer state are missing or cut was damaged since (semrl.weights)."""
    if read_json(checkpoint / "trainer_state.json", default=_UNREADABLE) is _UNREADABLE:
        return "incomplete (interrupted while saving)"
    problem = weights_problem(checkpoint)
    return f"damaged: {problem}" if problem else None


def complete_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint a resume can start from, oldest first."""
    return [(step, path) for step, path in stage_checkpoints(out_dir) if checkpoint_problem(path) is None]


def latest_checkpoint(out_dir: Path) -> str | None:
    """The newest complete checkpoint."""
    complete = complete_checkpoints(out_dir)
    return str(complete[-1][1]) if complete else None


def discard_incomplete_checkpoints(out_dir: Path) -> list[tuple[str, str]]:
    """Remove checkpoints a kill left half-written, or damaged since, so a resume starts from the
    newest whole one and the run dir holds only valid files; (name, why) of each one removed."""
    removed = []
    for _, path in stage_checkpoints(out_dir):
        problem = checkpoint_problem(path)
        if problem is not None:
            shutil.rmtree(path, ignore_errors=True)
            removed.append((path.name, problem))
    return removed


def quiet(trainer):
    """Our rich progress line replaces the Trainer's printed log dicts (they stay in log_history)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def save_log_history(trainer, out_dir: Path) -> None:
    """The stage's logged metrics (reward components, KL, lengths) for the report's figures."""
    if is_main_process():
        atomic_write_json(Path(out_dir) / "log_history.json", trainer.state.log_history)


def stage_train_loss(log_history: list[dict[str, Any]]) -> float | None:
    """Mean training loss over every logged step of the whole stage. Each logged `loss` is the
    mean over the steps since the previous log, so weighting it by that count gives the stage's
    mean. The Trainer's own `train_loss` counts only the steps of the last `train()` call: after a
    resume it describes part of the stage (1.735 resumed vs 2.395 uninterrupted, measured)."""
    total, steps, previous = 0.0, 0, 0
    for entry in log_history:
        if "loss" in entry and isinstance(entry["loss"], (int, float)) and "step" in entry:
            span = entry["step"] - previous
            total, steps, previous = total + entry["loss"] * span, steps + span, entry["step"]
    return total / steps if steps else None


def summarize_logs(log_history: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """First, last and mean logged value of each key (the mean over the finite numbers; None when
    there are none), the whole stage's mean loss and its last runtime."""
    out: dict[str, Any] = {}
    for key in keys:
        values = [entry[key] for entry in log_history if key in entry]
        if values:
            numbers = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            mean = sum(numbers) / len(numbers) if numbers else None
            out[key] = {"first": values[0], "last": values[-1], "mean": mean, "n": len(values)}
    final = [entry for entry in log_history if "train_runtime" in entry]
    if final:
        out["train_runtime_s"] = final[-1]["train_runtime"]
    out["train_loss"] = stage_train_loss(log_history)
    if out["train_loss"] is None and final:  # fewer steps than logging_steps: only the Trainer saw the losses
        out["train_loss"] = final[-1].get("train_loss")
    out["steps"] = max((entry.get("step", 0) for entry in log_history), default=0)
    return out


def progress_callback(label: str):
    """A TrainerCallback drawing one rich progress bar with the latest loss, reward and KL."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self):
            self.progress = None
            self.task = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    TextColumn("{task.fields[info]}"),
                    transient=False,
                )
                self.progress.start()
                self.task = self.progress.add_task(label, total=state.max_steps, info="")

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is None or not logs:
                return
            shown = []
            for key, name in (("loss", "loss"), ("reward", "reward"), ("kl", "kl"), ("train_loss", "loss")):
                if key in logs and isinstance(logs[key], (int, float)):
                    shown.append(f"{name} {logs[key]:.4g}")
            if shown:
                self.progress.update(self.task, info="  ".join(dict.fromkeys(shown)))

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)
                self.progress.stop()

    return RichProgress()
