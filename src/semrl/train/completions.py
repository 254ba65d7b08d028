"""completions.jsonl: what the policy actually writes during GRPO.

A reward curve that rises says nothing about *what* earned it: a policy that copies the source
and pads it with target-language filler can raise a similarity + language-ID reward while its
translations get worse. Unless `grpo.log_completions: false`, every logging step appends TRL's own sample
(the latest generation batch, which TRL keeps in `trainer._logs` whether or not it prints it):
one row per completion with its prompt (as given: text or messages), the completion as text, each
reward term, the weighted total and the advantage, and that logging step's no-oracle monitors
(`monitors`: monitor/distinct, monitor/hub, monitor/retrieval, as in the log history).

A resumed stage rewrites the file up to the step it resumes from, so a stage killed between a
log and a checkpoint does not log those steps twice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from semrl.files import atomic_write_text, to_json
from semrl.rewards.base import as_text

FILE = "completions.jsonl"


def _number(value: Any) -> float | None:
    """JSON numbers only: TRL marks a completion no reward function could score as NaN."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def completion_rows(
    logs: dict[str, Any],
    names: list[str],
    weights: list[float],
    step: int,
    limit: int | None = None,
    monitors: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows of TRL's completions sample. `rewards` holds each term: the composed reward's components
    (logged through `log_extra`) or, with separate reward functions, each function's value;
    `monitors` the step's logged monitor values (the same on every row of the step)."""
    shown = {name: _number(value) for name, value in (monitors or {}).items()}
    prompts, completions = list(logs["prompt"]), list(logs["completion"])
    per_function = {name: list(logs["rewards"].get(name, [])) for name in names}
    extras = {name: list(values) for name, values in logs.get("extra", {}).items()}
    terms = extras or per_function
    advantages = list(logs["advantages"])
    rows = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        total = [
            weight * values[i]
            for name, weight in zip(names, weights, strict=True)
            if i < len(values := per_function[name])
        ]
        rows.append(
            {
                "step": step,
                "prompt": prompt,
                "completion": as_text(completion),
                "reward": _number(sum(total)) if total else None,
                "rewards": {
                    name: _number(values[i]) if i < len(values) else None for name, values in terms.items()
                },
                "advantage": _number(advantages[i]) if i < len(advantages) else None,
                "monitors": dict(shown),
            }
        )
    return rows[:limit] if limit else rows


class CompletionsLog:
    """Appends a trainer's completions sample to `<stage>/completions.jsonl` at each logging step."""

    def __init__(self, out_dir: Path, limit: int | None = None) -> None:
        self.path = Path(out_dir) / FILE
        self.limit = limit
        self.last_step: int | None = None

    def write(self, trainer) -> None:
        step = trainer.state.global_step
        if step == self.last_step or not trainer.accelerator.is_main_process or not trainer._logs["prompt"]:
            return  # the end-of-training log repeats the last step's sample
        weights = [float(w) for w in trainer.reward_weights.tolist()]
        rows = completion_rows(
            trainer._logs,
            list(trainer.reward_func_names),
            weights,
            step,
            self.limit,
            step_monitors(trainer.state.log_history, step),
        )
        lines = [to_json(row, where=str(self.path)) for row in rows]
        if self.last_step is None:  # first write of this process: drop what a resumed stage redoes
            written = read_completions(self.path) if self.path.exists() else []
            kept = [
                to_json(row)
                for row in written
                if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] < step
            ]
            atomic_write_text(self.path, "".join(f"{line}\n" for line in kept + lines))
        else:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(f"{line}\n" for line in lines))
        self.last_step = step


def step_monitors(log_history: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """The monitor/* values TRL just logged for `step` (the last log entry, written before this)."""
    last = log_history[-1] if log_history else {}
    return (
        {key: value for key, value in last.items() if key.startswith("monitor/")}
        if last.get("step") == step
        else {}
    )


def read_completions(path: Path) -> list[dict[str, Any]]:
    """The rows of a completions.jsonl (a torn last line ignored), for the report."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows
