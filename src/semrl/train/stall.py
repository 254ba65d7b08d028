"""Stall diagnosis inside TRL's GRPOTrainer: how much each reward term varies within a group, and
how large the advantages TRL computed from them are, logged per generation batch.

TRL keeps the whole (all-process, gathered) batch of the latest generation in `trainer._logs`:
each reward function's values, the columns reward functions logged through `log_extra` (the
composed reward logs each term there) and the advantages. Read right after
`_generate_and_score_completions`, the last n entries are this batch, in TRL's order (each
prompt's completions side by side, as its advantage computation groups them). The metrics go into
TRL's `_metrics`, which it averages over each logging step into the log history.
"""

from __future__ import annotations

import math
from typing import Any

from semrl.rewards.compose import ComposedReward
from semrl.rewards.stall import PREFIX, batch_stall

TRL_KEYS = ("reward_std", "frac_reward_zero_std")  # TRL's own, summarised beside stall/*


def _last(column: Any, n: int) -> list[float] | None:
    values = list(column)
    return [float("nan") if v is None else float(v) for v in values[-n:]] if len(values) >= n else None


def _terms(trainer: Any, n: int) -> dict[str, list[float]]:
    """Each reward term's values: the composed reward's terms from its `log_extra` columns (the
    gate as gate/<name>), a separate reward function's from TRL's own column."""
    logs = trainer._logs
    terms: dict[str, list[float]] = {}
    for func, name in zip(trainer.reward_funcs, trainer.reward_func_names, strict=True):
        if isinstance(func, ComposedReward):
            names = [c.name for c, _ in func.components]
            names += [f"gate/{func.gate.name}"] if func.gate is not None else []
            columns = {term: logs["extra"][term] for term in names if term in logs["extra"]}
        else:
            columns = {name: logs["rewards"][name]} if name in logs["rewards"] else {}
        for term, column in columns.items():
            values = _last(column, n)
            if values is not None:
                terms[term] = values
    return terms


def _total(trainer: Any, n: int) -> list[float] | None:
    """The weighted sum of the reward functions per completion, as TRL logs `reward` (NaN where
    every function returned None)."""
    columns = [_last(trainer._logs["rewards"][name], n) for name in trainer.reward_func_names]
    if any(column is None for column in columns):
        return None
    weights = trainer.reward_weights.tolist()
    total = []
    for row in zip(*columns, strict=True):
        finite = [w * v for w, v in zip(weights, row, strict=True) if math.isfinite(v)]
        total.append(sum(finite) if finite else float("nan"))
    return total


def record_stall(trainer: Any, batch: int) -> None:
    """Append this generation batch's `stall/*` metrics (rewards/stall.py) to TRL's `_metrics`;
    `batch` is this process's number of completions (TRL gathered all processes' in `_logs`)."""
    mode = "train" if trainer.model.training else "eval"
    size = trainer.num_generations if mode == "train" else trainer.num_generations_eval
    n = batch * trainer.accelerator.num_processes
    advantages = _last(trainer._logs["advantages"], n)
    total = _total(trainer, n)
    if advantages is None or total is None or n % size:
        return
    for key, value in batch_stall(_terms(trainer, n), total, advantages, size).items():
        trainer._metrics[mode][key].append(value)


def stall_keys(history: list[dict[str, Any]]) -> tuple[str, ...]:
    """The keys a GRPO stage's metrics.json summarises for the stall diagnosis: TRL's reward_std
    and frac_reward_zero_std, then every stall/* key the log holds."""
    return (*TRL_KEYS, *sorted({key for entry in history for key in entry if key.startswith(PREFIX)}))
