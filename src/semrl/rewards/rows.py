"""`semrl reward`: score JSONL rows with a reward config, as GRPO would score a batch.

A row has `prompt`, `completion` and the columns the reward needs (reference, source, under
the names in `columns:`). Each output row is the input row plus `reward` and `components`.
Every row is validated before anything is scored, and the output is written atomically.
A `contrast:` bank is drawn (seed 0) from the file's own rows; `tau: cold_start` needs a GRPO
stage, so here it is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.data.quality import empty_problem
from semrl.errors import UserError
from semrl.files import atomic_write_jsonl, check_output_file, read_jsonl, strip_line_numbers
from semrl.rewards.build import load_reward
from semrl.rewards.compose import ComposedReward


def _is_text_or_messages(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in value
    )


def validate_rows(
    rows: list[dict[str, Any]],
    path: Path,
    reward: ComposedReward,
    columns: dict[str, str],
    need_prompt: bool = True,
) -> None:
    """Every row has what the reward needs, of the right type; references are not blank."""
    required = [columns[role] for role in reward.needs]
    for row in rows:
        where = f"{path}: line {row['__line__']}"
        for field in (["prompt"] if need_prompt else []) + ["completion"]:
            if field not in row:
                raise UserError(f"{where}: missing field {field!r}")
            if not _is_text_or_messages(row[field]):
                raise UserError(f"{where}: field {field!r} must be a string or a list of messages")
        for field in required:
            if field not in row:
                raise UserError(f"{where}: missing field {field!r} (needed by the reward; see `columns:`)")
            if not isinstance(row[field], str):
                raise UserError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}")
            empty = empty_problem(field, row[field], "field")
            if empty:
                raise UserError(f"{where}: {empty}")


def score_rows(
    rows: list[dict[str, Any]], reward: ComposedReward, columns: dict[str, str], batch_size: int | None = None
) -> list[dict[str, Any]]:
    size = batch_size or len(rows)
    out: list[dict[str, Any]] = []
    roles = {columns[role] for role in reward.needs}
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        kwargs = {column: [row[column] for row in batch] for column in roles}
        scored = reward.score_batch(
            [row.get("prompt", "") for row in batch], [row["completion"] for row in batch], **kwargs
        )
        for i, row in enumerate(batch):
            components = {name: values[i] for name, values in scored.components.items()}
            out.append({**strip_line_numbers(row), "reward": scored.rewards[i], "components": components})
    return out


def score_file(config: Path, input_path: Path, output: Path, batch_size: int | None = None) -> dict[str, Any]:
    """Validate, score, write; returns the mean reward and the mean of every component."""
    check_output_file(output, "--output")
    if batch_size is not None and batch_size < 1:
        raise UserError("--batch-size: must be at least 1")
    reward_config, reward = load_reward(config)
    reward.require_numeric_tau(str(config))
    rows = read_jsonl(input_path)
    validate_rows(rows, input_path, reward, reward_config.columns)
    reward.prepare(rows, 0)  # a contrast bank comes from the file's own rows, as a stage's from its own
    scored = score_rows(rows, reward, reward_config.columns, batch_size)
    atomic_write_jsonl(output, scored)
    names = list(scored[0]["components"])
    return {
        "n": len(scored),
        "reward": sum(row["reward"] for row in scored) / len(scored),
        "components": {name: sum(row["components"][name] for row in scored) / len(scored) for name in names},
        "output": str(output),
    }
