"""Settings semrl hands to TRL, transformers or torch by name, checked against the installed libraries.

A loss type, reward scaling, scheduler, optimizer, logger, dtype or attention kernel is a plain
string in the config; a misspelt one is only noticed by the library once training has started,
after the run folder exists, as a traceback. The accepted values are read from the libraries
(SchedulerType, OptimizerNames, GRPOConfig's documentation, the attention registry), not copied
here, so an upgrade that adds or drops a value is followed without a change to semrl.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig

STAGES = ("sft", "recover", "grpo", "rm")  # top-level sections with trainer settings
ARM_STAGES = ("sft", "grpo", "recover")  # sections an arm may override


def check_settings(exp: ExperimentConfig) -> None:
    """Every pass-through setting, top level and arm overrides; one UserError naming all bad ones."""
    problems = []
    for where, field, value in _settings(exp):
        problem = CHECKS[field](value) if value is not None else None  # None: the library's default
        if problem:
            problems.append(f"{where}: {problem}")
    if problems:
        raise UserError("; ".join(problems))


def check_aggregation(exp: ExperimentConfig) -> None:
    """normalize_then_sum hands TRL each reward term as its own function; a gate multiplies the sum,
    which no weighted sum of separate terms expresses (the reward would fail when GRPO starts)."""
    pairs = [("grpo.multi_objective_aggregation", exp.grpo, exp.rewards)] if not exp.arms else []
    pairs += [
        (
            f"arms.{arm.name}.grpo.multi_objective_aggregation"
            if "multi_objective_aggregation" in arm.grpo
            else "grpo.multi_objective_aggregation",
            exp.stage_settings(arm, "grpo"),
            exp.reward_for(arm),
        )
        for arm in exp.arms
    ]
    for where, spec, rewards in pairs:
        if spec.multi_objective_aggregation == "normalize_then_sum" and rewards is not None and rewards.gate:
            raise UserError(
                f"{where}: normalize_then_sum normalises each reward term on its own, but the reward "
                f"has a gate ({rewards.gate.type}) that multiplies their sum; remove the gate or use "
                "sum_then_normalize"
            )


def _settings(exp: ExperimentConfig) -> Iterator[tuple[str, str, Any]]:
    """(field as the user wrote it, setting, value); an arm's setting only where the arm overrides it."""
    for stage in STAGES:
        spec = getattr(exp, stage)
        for field in CHECKS:
            if hasattr(spec, field):
                yield f"{stage}.{field}", field, getattr(spec, field)
    for arm in exp.arms:
        for stage in ARM_STAGES:
            spec = exp.stage_settings(arm, stage)
            for field in getattr(arm, stage):
                if field in CHECKS and hasattr(spec, field):
                    yield f"arms.{arm.name}.{stage}.{field}", field, getattr(spec, field)
    yield "report_to", "report_to", None if exp.report_to == "none" else exp.report_to
    yield "model.dtype", "dtype", None if exp.model.dtype == "auto" else exp.model.dtype
    yield "model.attn_implementation", "attn_implementation", exp.model.attn_implementation


def _refuse(value: str, what: str, accepted: list[str] | tuple[str, ...]) -> str:
    return f"{value!r} is not {what}; use one of: {', '.join(accepted)}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _version(package: str) -> str:
    from importlib.metadata import version

    return f"{package} {version(package)}"


# -- GRPO: TRL documents the accepted values of loss_type and scale_rewards on GRPOConfig ---------


@cache
def documented_values(config_class: type, field: str) -> tuple[str, ...]:
    """Values TRL documents for `field`: a Literal annotation, else the bullets under the field in the
    class docstring (- `"dapo"` (default): ...), else the names quoted in the help text's 'Supported
    values are ...' sentence; always with the field's default. Empty when nothing can be read."""
    import dataclasses
    import typing

    try:
        hint = typing.get_type_hints(config_class).get(field)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: read the docs instead
        hint = None
    literal = typing.get_origin(hint) is typing.Literal
    values = [v for v in typing.get_args(hint) if isinstance(v, str)] if literal else []
    block = re.search(rf"^( +){field} \(.*$((?:\n(?:\1 .*| *))*)", config_class.__doc__ or "", re.M)
    if not values and block:
        for bullet in re.findall(r"^\s*- (.*?):\s", block.group(2), re.M):
            values += re.findall(r'"([^"\s]+)"', bullet)
    spec = {f.name: f for f in dataclasses.fields(config_class)}.get(field)
    if not values and spec is not None:
        sentence = re.search(r"Supported values are:?([^.]*)", spec.metadata.get("help", ""))
        values = re.findall(r"'([^'\s]+)'", sentence.group(1)) if sentence else []
    if values and spec is not None and isinstance(spec.default, str):
        values.append(spec.default)
    return tuple(dict.fromkeys(values))


def _grpo_choice(field: str, what: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        from trl import GRPOConfig

        accepted = documented_values(GRPOConfig, field)
        if not accepted or value in accepted:  # nothing documented: leave it to TRL
            return None
        return _refuse(value, f"{what} {_version('trl')} knows", accepted)

    return check


# -- Learning-rate scheduler: transformers' SchedulerType, built the way the Trainer builds it ------


@cache
def schedulers() -> dict[str, str | None]:
    """{scheduler: None when it builds with what semrl passes, else why not}. Some need
    lr_scheduler_kwargs (cosine_with_min_lr: min_lr), which semrl does not pass."""
    import torch
    from transformers.optimization import get_scheduler
    from transformers.trainer_utils import SchedulerType

    table: dict[str, str | None] = {}
    for kind in SchedulerType:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        try:
            get_scheduler(kind.value, optimizer, num_warmup_steps=1, num_training_steps=10)
            table[kind.value] = None
        except (ValueError, TypeError) as exc:
            table[kind.value] = _first_line(exc)
    return table


def scheduler_problem(value: str) -> str | None:
    table = schedulers()
    usable = [name for name, why in table.items() if why is None]
    if value in table and table[value] is not None:
        return f"{value!r} needs settings semrl does not pass ({table[value]}); use one of: " + ", ".join(
            usable
        )
    return None if value in table else _refuse(value, f"a scheduler {_version('transformers')} knows", usable)


# -- Optimizer: transformers' OptimizerNames, and whether the Trainer can build it here ---------


def optimizer_unusable(name: str) -> str | None:
    """Why the Trainer could not build optimizer `name` here (a package missing, a setting semrl does
    not pass), or None. Asks Trainer.get_optimizer_cls_and_kwargs with TrainingArguments' defaults,
    without constructing TrainingArguments (that would fix accelerate's device state for this process)."""
    import dataclasses
    from types import SimpleNamespace

    import torch
    from transformers import Trainer, TrainingArguments
    from transformers.training_args import OptimizerNames

    defaults = {
        f.name: f.default
        if f.default is not dataclasses.MISSING
        else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        for f in dataclasses.fields(TrainingArguments)
    }
    # stand-ins for TrainingArguments and the model: the optimizer lookup reads only their fields
    args: Any = SimpleNamespace(**{**defaults, "optim": OptimizerNames(name)})
    model: Any = torch.nn.Linear(1, 1)
    try:
        Trainer.get_optimizer_cls_and_kwargs(args, model)
    except (ImportError, ValueError) as exc:
        return _first_line(exc)
    except Exception:  # noqa: BLE001 - our stand-in arguments, not the optimizer: leave it to the Trainer
        return None
    return None


@cache
def optimizers() -> tuple[str, ...]:
    from transformers.training_args import OptimizerNames

    return tuple(kind.value for kind in OptimizerNames)


def optimizer_problem(value: str) -> str | None:
    if value in optimizers():
        why = optimizer_unusable(value)
        return f"{value!r} cannot be used here ({why})" if why else None
    usable = [name for name in optimizers() if optimizer_unusable(name) is None]
    return _refuse(value, f"an optimizer {_version('transformers')} knows", usable)


# -- Logger, dtype, attention -----------------------------------------------------------------


def report_to_problem(value: str) -> str | None:
    """The config's choices must still be integrations the installed transformers has a callback for."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    return (
        None
        if value in INTEGRATION_TO_CALLBACK
        else _refuse(value, f"a logger {_version('transformers')} knows", sorted(INTEGRATION_TO_CALLBACK))
    )


def dtype_problem(value: str) -> str | None:
    """semrl maps the name to the torch dtype of the same name (train.common.torch_dtype)."""
    import torch

    return None if isinstance(getattr(torch, value, None), torch.dtype) else f"{value!r} is not a torch dtype"


def attention_problem(value: str) -> str | None:
    """transformers' attention registry (plus eager), or a hub kernel id (org/repo); flash attention
    also needs its package (and a GPU) or the kernels package."""
    import transformers.utils
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    names = ["eager", *ALL_ATTENTION_FUNCTIONS.keys()]
    if value not in names:
        if re.fullmatch(r"[\w.-]+/[\w.-]+(@[\w.-]+)?(:[\w.-]+)?", value) and not value.startswith((".", "-")):
            from semrl.hub import require_available

            try:  # a hub kernel (org/repo), fetched when the model loads: offline, it must be cached
                require_available(re.split(r"[@:]", value)[0], "attention kernel")
            except UserError as exc:
                return str(exc)
            return None
        if "/" in value:
            return f"{value!r} is neither an attention implementation nor a hub kernel id (org/repo)"
        return _refuse(value, f"an attention implementation {_version('transformers')} knows", names)
    flash = re.fullmatch(r"flash_attention_(\d+)", value)
    available = (
        getattr(transformers.utils, f"is_flash_attn_{flash.group(1)}_available", None) if flash else None
    )
    if available is None or available() or getattr(transformers.utils, "is_kernels_available", bool)():
        return None
    return (
        f"{value!r} needs the flash-attn package and a supported GPU, or the kernels package "
        f"(pip install kernels); use one of: {', '.join(n for n in names if not n.startswith('flash'))}"
    )


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "loss_type": _grpo_choice("loss_type", "a GRPO loss type"),
    "scale_rewards": _grpo_choice("scale_rewards", "a reward scaling"),
    "multi_objective_aggregation": _grpo_choice("multi_objective_aggregation", "a reward aggregation"),
    "scheduler": scheduler_problem,
    "optim": optimizer_problem,
    "report_to": report_to_problem,
    "dtype": dtype_problem,
    "attn_implementation": attention_problem,
}


# -- vLLM generation: an optional package and a CUDA device ------------------------------------


def check_vllm(exp: ExperimentConfig) -> None:
    """`grpo.use_vllm` needs the vLLM package and a CUDA device, in colocate and server mode alike
    (the trainer syncs weights to vLLM over NCCL). Without them TRL raises only when the GRPO
    trainer is built, after the run folder and earlier stages exist."""
    import importlib.util

    fields = ["grpo.use_vllm"] if exp.grpo.use_vllm else []
    fields += [
        f"arms.{arm.name}.grpo.use_vllm"
        for arm in exp.arms
        if "use_vllm" in arm.grpo and exp.stage_settings(arm, "grpo").use_vllm
    ]
    if not fields:
        return
    missing = []
    if importlib.util.find_spec("vllm") is None:
        missing.append("vLLM is not installed (pip install -e .[vllm])")
    if exp.device == "cpu":
        missing.append("device is cpu")
    else:
        import torch

        if not torch.cuda.is_available():
            missing.append("no CUDA device is available")
    if missing:
        raise UserError(
            f"{', '.join(fields)}: {' and '.join(missing)}; "
            "vLLM generation needs both (or set grpo.use_vllm: false)"
        )
