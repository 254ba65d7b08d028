"""Settings semrl hands to TRL, transformers or torch by name, checked against the installed libraries.

A loss type, scheduler, optimizer, logger, dtype or attention kernel is a plain string in the config;
a misspelt one is only noticed by the library when its stage starts, after the run folder exists, as
a traceback. So each is asked of the library here, and nothing is copied into semrl: an upgrade that
adds or drops a value is followed without a change here. The stage's TRL config is built with the
value, as the trainer gets it; then the Trainer's own builders say whether it can be used
(get_scheduler, get_optimizer_cls_and_kwargs, get_reporting_integration_callbacks). GRPOConfig takes
any loss_type, scale_rewards or multi_objective_aggregation and GRPOTrainer judges them only at its
first step, so the values it knows are read from the trainer's code (judged_values).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from functools import cache, partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from semrl.checks import field, first_line, grpo_settings
from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig

STAGES = ("sft", "recover", "grpo", "rm")  # top-level sections with trainer settings
ARM_STAGES = ("sft", "grpo", "recover")  # sections an arm may override


def check_settings(exp: ExperimentConfig) -> None:
    """Every pass-through setting, top level and arm overrides; one UserError naming all bad ones."""
    problems = []
    for where, stage, key, value in _settings(exp):
        problem = CHECKS[key](value, stage) if value is not None else None  # None: the library's default
        if problem:
            problems.append(f"{where}: {problem}")
    if problems:
        raise UserError("; ".join(problems))


def check_aggregation(exp: ExperimentConfig) -> None:
    """normalize_then_sum hands TRL each reward term as its own function; a gate multiplies the sum,
    which no weighted sum of separate terms expresses (the reward would fail when GRPO starts)."""
    for arm, spec in grpo_settings(exp):
        rewards = exp.reward_for(arm)
        if spec.multi_objective_aggregation == "normalize_then_sum" and rewards is not None and rewards.gate:
            raise UserError(
                f"{field(arm, 'grpo', 'multi_objective_aggregation')}: normalize_then_sum normalises each "
                f"reward term on its own, but the reward has a gate ({rewards.gate.type}) that multiplies "
                "their sum; remove the gate or use sum_then_normalize"
            )


def _settings(exp: ExperimentConfig) -> Iterator[tuple[str, str | None, str, Any]]:
    """(field as the user wrote it, stage or None for the run's own, setting, value); an arm's setting
    only where the arm overrides it."""
    for stage in STAGES:
        spec = getattr(exp, stage)
        for key in CHECKS:
            if hasattr(spec, key):
                yield f"{stage}.{key}", stage, key, getattr(spec, key)
    for arm in exp.arms:
        for stage in ARM_STAGES:
            spec = exp.stage_spec(arm, stage)
            for key in getattr(arm, stage):
                if key in CHECKS and hasattr(spec, key):
                    yield field(arm, stage, key), stage, key, getattr(spec, key)
    yield "report_to", None, "report_to", None if exp.report_to == "none" else exp.report_to
    yield "model.dtype", None, "dtype", None if exp.model.dtype == "auto" else exp.model.dtype
    yield "model.attn_implementation", None, "attn_implementation", exp.model.attn_implementation


def _refuse(value: str, what: str, accepted: list[str] | tuple[str, ...]) -> str:
    return f"{value!r} is not {what}; use one of: {', '.join(accepted)}"


def _version(package: str) -> str:
    return f"{package} {version(package)}"


# -- Asking the libraries: their config objects, built with the user's value ------------------

STAGE_CONFIGS = {"sft": "SFTConfig", "recover": "SFTConfig", "grpo": "GRPOConfig", "rm": "RewardConfig"}
PROBE_DIR = "semrl-settings-check"  # output_dir of the configs built here; nothing is written to it


def config_class(stage: str | None) -> type:
    """The TRL config a stage's settings are handed to (train/sft.py, grpo.py, rm.py); transformers'
    TrainingArguments, which they all extend, for the run's own settings."""
    if stage in STAGE_CONFIGS:
        import trl

        return getattr(trl, STAGE_CONFIGS[stage])
    from transformers import TrainingArguments

    return TrainingArguments


@cache
def _probe(config: type) -> type:
    """`config`, except that building it leaves the device alone: TrainingArguments sets up accelerate's
    process state when built (which fixes the device for this process, and under torchrun starts the
    process group), and the device is not what is asked here."""
    import torch

    base: Any = config

    class Probe(base):
        @property
        def _setup_devices(self) -> Any:
            self.distributed_state = None
            self._n_gpu = 0
            return torch.device("cpu")

    Probe.__name__ = Probe.__qualname__ = config.__name__
    return Probe


@cache
def built(config: type, field: str, value: Any) -> tuple[Any, str | None]:
    """(config object, None) when `config` accepts field=value, else (None, the first line of its
    refusal). Built as the trainer would get it, with a throwaway output_dir, no logger, on cpu."""
    settings = {"output_dir": os.path.join(tempfile.gettempdir(), PROBE_DIR), "report_to": "none"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _probe(config)(**{**settings, "use_cpu": True, field: value}), None
    except (ValueError, KeyError, TypeError) as exc:
        return None, first_line(exc)


def _refused_by(value: Any, config: type, why: str) -> str:
    package = config.__module__.split(".")[0]
    return f"{value!r} is refused by {_version(package)}'s {config.__name__} ({why})"


def field_default(config: type, name: str) -> Any:
    """The default of a dataclass field (TRL's and transformers' configs), None when it has none."""
    spec = {f.name: f for f in dataclasses.fields(config)}.get(name)
    return None if spec is None else spec.default


# -- GRPO choices: any string to GRPOConfig, judged by GRPOTrainer at its first step --------------


@cache
def judged_values(config: type, field: str) -> tuple[str, ...]:
    """The values the library tells apart for `field`: a Literal annotation on the config's field when
    there is one; else the strings its trainer compares the setting with (`if self.loss_type ==
    "cispo"`, `in [...]`, `match`), read from the trainer's module (grpo_trainer.py for
    grpo_config.py), which is parsed, not imported; the config's default is always among them.
    Empty when nothing can be read."""
    try:
        hint = get_type_hints(config).get(field)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: ask the trainer instead
        hint = None
    if get_origin(hint) is Literal:
        return tuple(v for v in get_args(hint) if isinstance(v, str))
    try:
        spec = importlib.util.find_spec(config.__module__.replace("_config", "_trainer"))
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8")) if spec and spec.origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        tree = None

    def strings(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return [value for element in node.elts for value in strings(element)]
        return []

    def is_setting(node: ast.AST) -> bool:  # self.loss_type, args.loss_type, self.args.loss_type
        return isinstance(node, ast.Attribute) and node.attr == field

    values: list[str] = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Compare) and all(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            sides = [node.left, *node.comparators]
            if any(is_setting(side) for side in sides):
                values += [value for side in sides for value in strings(side)]
        elif isinstance(node, ast.Match) and is_setting(node.subject):
            values += [
                value
                for case in node.cases
                for pattern in ast.walk(case.pattern)
                if isinstance(pattern, ast.MatchValue)
                for value in strings(pattern.value)
            ]
    default = field_default(config, field)
    if values and isinstance(default, str):
        values.append(default)
    return tuple(dict.fromkeys(values))


def grpo_choice_problem(field: str, what: str, value: Any, stage: str | None = "grpo") -> str | None:
    """`value` for a GRPOConfig `field` is one the trainer tells apart (or TRL's own default)."""
    from trl import GRPOConfig

    config, refused = built(GRPOConfig, field, value)
    if refused:
        return _refused_by(value, GRPOConfig, refused)
    if value == field_default(GRPOConfig, field):  # TRL's own default: nothing to ask
        return None
    accepted = judged_values(GRPOConfig, field)
    if not accepted or getattr(config, field) in accepted:  # nothing readable: leave it to TRL
        return None
    return _refuse(value, f"{what} {_version('trl')} knows", accepted)


# -- Learning-rate scheduler: the config's SchedulerType, built by the Trainer's get_scheduler ----


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
            table[kind.value] = first_line(exc)
    return table


def usable_schedulers(config: type) -> list[str]:
    """Schedulers `config` accepts (it refuses reduce_lr_on_plateau and greedy without an eval
    strategy, which semrl does not set) and that build with what semrl passes."""
    return [
        name
        for name, why in schedulers().items()
        if why is None and built(config, "lr_scheduler_type", name)[1] is None
    ]


def scheduler_problem(value: str, stage: str | None = None) -> str | None:
    config = config_class(stage)
    _, refused = built(config, "lr_scheduler_type", value)
    if refused:
        return _not_usable(value, config, refused, schedulers(), usable_schedulers(config), "a scheduler")
    why = schedulers().get(value)
    if why:
        usable = ", ".join(usable_schedulers(config))
        return f"{value!r} needs settings semrl does not pass ({why}); use one of: {usable}"
    return None


def _not_usable(value: str, config: type, refused: str, known: Any, usable: list[str], what: str) -> str:
    """The refusal of a value `config` would not take: named as the config's when transformers
    knows the value, else as unknown."""
    if value in known:
        return f"{_refused_by(value, config, refused)}; use one of: {', '.join(usable)}"
    return _refuse(value, f"{what} {_version('transformers')} knows", usable)


# -- Optimizer: the config turns it into transformers' OptimizerNames, and the Trainer builds it ---


@cache
def optimizer_unusable(name: str) -> str | None:
    """Why the Trainer could not build optimizer `name` here (a package missing, a setting semrl does
    not pass), or None. Asks Trainer.get_optimizer_cls_and_kwargs, the Trainer's own lookup, with
    TrainingArguments built for that optimizer (device left alone: see _probe)."""
    import torch
    from transformers import Trainer, TrainingArguments

    args, refused = built(TrainingArguments, "optim", name)
    if refused:
        return refused
    model: Any = torch.nn.Linear(1, 1)  # the lookup reads the model's parameters only
    try:
        Trainer.get_optimizer_cls_and_kwargs(args, model)
    except (ImportError, ValueError) as exc:
        return first_line(exc)
    except Exception:  # noqa: BLE001 - our stand-in model, not the optimizer: leave it to the Trainer
        return None
    return None


@cache
def optimizers() -> tuple[str, ...]:
    from transformers.training_args import OptimizerNames

    return tuple(kind.value for kind in OptimizerNames)


def optimizer_problem(value: str, stage: str | None = None) -> str | None:
    config = config_class(stage)
    _, refused = built(config, "optim", value)
    if not refused:
        why = optimizer_unusable(value)
        return f"{value!r} cannot be used here ({why})" if why else None
    usable = [
        name
        for name in optimizers()
        if optimizer_unusable(name) is None and built(config, "optim", name)[1] is None
    ]
    return _not_usable(value, config, refused, optimizers(), usable, "an optimizer")


# -- Logger, dtype, attention -----------------------------------------------------------------


def report_to_problem(value: str, stage: str | None = None) -> str | None:
    """The config's choices must still be integrations the installed transformers has a callback for:
    asked of get_reporting_integration_callbacks, which the Trainer calls to pick its loggers."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_reporting_integration_callbacks,
    )

    config = config_class(stage)
    _, refused = built(config, "report_to", value)
    if refused:
        return _refused_by(value, config, refused)
    try:
        get_reporting_integration_callbacks([value])
    except ValueError:
        return _refuse(value, f"a logger {_version('transformers')} knows", sorted(INTEGRATION_TO_CALLBACK))
    return None


def dtype_problem(value: str, stage: str | None = None) -> str | None:
    """semrl maps the name to the torch dtype of the same name (train.common.torch_dtype)."""
    import torch

    return None if isinstance(getattr(torch, value, None), torch.dtype) else f"{value!r} is not a torch dtype"


def attention_problem(value: str, stage: str | None = None) -> str | None:
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
    check = f"is_flash_attn_{flash.group(1)}_available" if flash else ""  # "": not a flash kernel
    available = getattr(transformers.utils, check, None)
    if available is None or available() or getattr(transformers.utils, "is_kernels_available", bool)():
        return None
    return (
        f"{value!r} needs the flash-attn package and a supported GPU, or the kernels package "
        f"(pip install kernels); use one of: {', '.join(n for n in names if not n.startswith('flash'))}"
    )


# {setting: check(value, stage)}; stage None: the run's own setting, checked against TrainingArguments
CHECKS: dict[str, Callable[[Any, str | None], str | None]] = {
    "loss_type": partial(grpo_choice_problem, "loss_type", "a GRPO loss type"),
    "scale_rewards": partial(grpo_choice_problem, "scale_rewards", "a reward scaling"),
    "multi_objective_aggregation": partial(
        grpo_choice_problem, "multi_objective_aggregation", "a reward aggregation"
    ),
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
    fields = ["grpo.use_vllm"] if exp.grpo.use_vllm else []
    fields += [
        field(arm, "grpo", "use_vllm")
        for arm in exp.arms
        if "use_vllm" in arm.grpo and exp.stage_spec(arm, "grpo").use_vllm
    ]
    if not fields:
        return
    import torch

    missing = []
    if importlib.util.find_spec("vllm") is None:
        missing.append("vLLM is not installed (pip install -e .[vllm])")
    if exp.device == "cpu":
        missing.append("device is cpu")
    elif not torch.cuda.is_available():
        missing.append("no CUDA device is available")
    if missing:
        raise UserError(
            f"{', '.join(fields)}: {' and '.join(missing)}; "
            "vLLM generation needs both (or set grpo.use_vllm: false)"
        )
