"""Loading YAML configs safely and turning pydantic errors into one line that names the field.

Shared by every config in semrl (experiments, rewards, suites, the sandbox): yaml.safe_load only,
unknown keys are errors, and the message says which file and which field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from semrl.errors import UserError
from semrl.files import read_text

T = TypeVar("T", bound=BaseModel)


INT64 = (-(2**63), 2**63 - 1)  # torch and numpy hold counts and sizes in int64; a bigger one overflows there


class StrictModel(BaseModel):
    """Base for every config schema: unknown keys are errors, not silently ignored; no float is NaN or
    infinite (none of semrl's settings gives infinity a meaning: NaN or inf in a weight, rate or
    coefficient only turns the loss or the reward into NaN, after the run folder exists); and no
    integer leaves int64, which the libraries (torch, numpy) store it in."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _fits_int64(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"{value} does not fit in 64 bits; torch and numpy cannot hold it")
        return value


MAX_EXPANDED_NODES = 100_000  # a config is a few hundred nodes; a "billion laughs" document is billions


def _expanded_size(node, memo: dict[int, int]) -> int:
    """Number of nodes once every alias is expanded (anchors are shared, so count with a memo)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # guards against recursive aliases
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def _structure_problem(text: str) -> str | None:
    """A duplicate key (PyYAML keeps the last silently) or an alias bomb, as `line N: ...`."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None and "*" in text and _expanded_size(root, {}) > MAX_EXPANDED_NODES:
        return f"aliases expand to more than {MAX_EXPANDED_NODES:,} values; refusing a possible alias bomb"
    stack, seen_nodes = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys and key.value != "<<":
                        return f"line {key.start_mark.line + 1}: duplicate key {key.value!r}"
                    keys.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as a dict: yaml.safe_load only, duplicate keys refused, alias bombs refused
    (anchors are fine)."""
    text = read_text(path)
    try:
        problem = _structure_problem(text)
        if problem:
            raise UserError(f"{path}: {problem}")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: {where}invalid YAML ({problem})") from None
    except RecursionError:
        raise UserError(f"{path}: YAML nested too deeply") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise UserError(f"{path}: expected a mapping of settings at the top level, got {found}")
    return data


def describe_validation_error(exc: ValidationError) -> str:
    """All problems, each as `field.path: message`, joined on one line."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "value_error":  # our validators' own words, without pydantic's prefix
            message = message.removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def validate(model: type[T], data: dict[str, Any], source: str | Path) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {describe_validation_error(exc)}") from None


def load_config(model: type[T], path: str | Path) -> T:
    """A YAML file validated against `model`; a problem is one UserError naming the file and field."""
    return validate(model, load_yaml(path), path)
