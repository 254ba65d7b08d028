"""Everything a run checks before its first step, so a mistake ends in one line (exit 2) before the
run folder is written, not as a traceback in the middle of training: the config against the installed
libraries (settings.py: loss type, scheduler, optimizer, logger, dtype, attention), every data row
and the sizes they imply (sizes.py), model paths, kinds and weights (models.py), names that are only
looked up late (lookups.py), and the memory a stage will need (memory.py); preflight.py runs them all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from semrl.errors import UserError
from semrl.experiment_config import ArmSpec, ExperimentConfig, GRPOSpec

T = TypeVar("T")


def field(arm: ArmSpec | None, stage: str, key: str) -> str:
    """The field as the user writes it: the arm's override when it has one, else the top level."""
    stage = "sft" if stage == "continue" else stage
    if arm is not None and key in getattr(arm, stage):
        return f"arms.{arm.name}.{stage}.{key}"
    return f"{stage}.{key}"


def first_line(exc: BaseException) -> str:
    """An exception's message in one line for a refusal: its first line, else its type's name."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def grpo_settings(exp: ExperimentConfig) -> list[tuple[ArmSpec | None, GRPOSpec]]:
    """(arm, its GRPO settings) of every arm, or (None, the top level's) in a config without arms."""
    return [(arm, exp.stage_spec(arm, "grpo")) for arm in exp.arms] or [(None, exp.grpo)]


def under(name: str, check: Callable[..., T], *args: Any) -> T:
    """check(*args), with a refusal named by the field `name` the value came from."""
    try:
        return check(*args)
    except UserError as exc:
        raise UserError(f"{name}: {exc}") from None
