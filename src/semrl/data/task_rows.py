"""The rows a run trains and tests on: the task file renamed to roles, validated and split by the
seed, and the pairs files of the reward-model and encoder stages."""

from __future__ import annotations

from typing import Any

from semrl.data.loading import load_table, require_columns
from semrl.data.quality import duplicate_id_problems, repair_text_fields, text_problems
from semrl.data.splits import shuffled, split_rows
from semrl.data.tasks import role_rows
from semrl.errors import UserError, problems_error
from semrl.experiment_config import ExperimentConfig
from semrl.tasks import TASKS
from semrl.tasks.base import INPUT_ROLES

# every task's roles and an optional row id (a registered task may only use these roles)
DATA_ROLES = (*INPUT_ROLES, "reference", "id")


def load_role_rows(
    exp: ExperimentConfig, source: str, field: str, fmt: str | None = None
) -> list[dict[str, Any]]:
    """One file of the task's rows renamed to roles and validated (the training and test files,
    a GRPO stage's dev file); problems name the file and line, `field` names the config field.
    `fmt`: the file's format (default data.format)."""
    unknown = [role for role in exp.data.columns if role not in DATA_ROLES]
    if unknown:
        raise UserError(f"data.columns: unknown role {unknown[0]!r}; roles are {', '.join(DATA_ROLES)}")
    roles = TASKS[exp.task.type].roles
    needed = {role: exp.data.columns.get(role, role) for role in roles}
    rows = load_table(source, fmt or exp.data.format, exp.data.hf_split, field)
    require_columns(rows, source, needed)
    rows = role_rows(rows, exp.task.type, exp.data.columns)
    fields = list(roles)
    repair_text_fields(rows, source, fields)
    problems = text_problems(rows, fields, exp.data.max_chars) + duplicate_id_problems(rows)
    if problems:
        raise problems_error(source, problems)
    return rows


def load_task_rows(exp: ExperimentConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) rows renamed to roles, validated, split deterministically by the seed."""
    train = load_role_rows(exp, exp.data.train, "data.train")
    if exp.data.test:
        train, test = shuffled(train, exp.seed), load_role_rows(exp, exp.data.test, "data.test")
    else:
        train, test = split_rows(train, exp.data.test_size, exp.seed)
    if exp.data.few_shot:
        train = train[: exp.data.few_shot]
    if not train:
        raise UserError(f"{exp.data.train}: no training rows left after the test split")
    return train, test


def load_pairs(
    source: str,
    columns: dict[str, str],
    roles: tuple[str, ...],
    test: str | None,
    test_size: float,
    seed: int,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Pairs files for the rm (prompt, chosen, rejected) and encoder (anchor, positive) stages."""
    unknown = [role for role in columns if role not in roles]
    if unknown:
        raise UserError(f"columns: unknown role {unknown[0]!r}; roles are {', '.join(roles)}")

    def load(path: str) -> list[dict[str, str]]:
        rows = load_table(path)
        required = {role: columns.get(role, role) for role in roles if role != "prompt"}
        require_columns(rows, path, required)
        prompt_column = columns.get("prompt", "prompt")
        out = []
        for row in rows:
            item = {role: row[column] for role, column in required.items()}
            if "prompt" in roles:
                value = row.get(prompt_column, "")
                item["prompt"] = value if isinstance(value, str) else ""
            out.append(item)
        return out

    rows = load(source)
    if test:
        return shuffled(rows, seed), load(test)
    return split_rows(rows, test_size, seed)
