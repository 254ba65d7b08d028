"""Loading YAML configs safely and turning pydantic errors into one line that names the field.

Shared by every config in semrl (rewards now; experiments, suites later): yaml.safe_load only,
unknown keys are errors, and the message says which file and which field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from semrl.errors import UserError
from semrl.files import read_text

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config schema: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def load_yaml(path: str | Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: {where}invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError) -> str:
    """All problems, each as `field.path: message`, joined on one line."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def validate(model: type[T], data: dict[str, Any], source: str | Path) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {describe_validation_error(exc)}") from None


def load_config(model: type[T], path: str | Path) -> T:
    return validate(model, load_yaml(path), path)
