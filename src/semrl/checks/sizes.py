"""Size relations between settings and data, checked before anything is written.

Each setting may be valid on its own and the combination still cannot work: a cold start of 100
examples on 80 training rows, a GRPO step that wants more prompts than the stage has (TRL then
trains 0 steps and says nothing), a completion as long as the model's context. Found late, such a
run fails (or silently does nothing) after its folder, base model and first stages exist.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from semrl.checks import field, grpo_settings
from semrl.data.splits import head, requested_test_rows, rest
from semrl.data.task_rows import load_pairs
from semrl.distributed import world_size
from semrl.errors import UserError
from semrl.experiment_config import ArmSpec, EncoderSpec, ExperimentConfig, RMSpec
from semrl.files import read_json
from semrl.recipes import RECIPES
from semrl.recipes.plan import plan_experiment
from semrl.rewards.encoder_binding import uses_run_encoder

Rows = list[dict[str, Any]]
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def check_sizes(exp: ExperimentConfig, train_rows: Rows, test_rows: Rows) -> None:
    """One UserError naming every size relation that cannot work. Empty `train_rows` means the task
    rows were not loaded (`semrl train rm|encoder`): only the pairs splits are checked then."""
    problems: list[str] = []
    if train_rows:
        split = task_split_problems(exp, train_rows, test_rows)
        problems += split + few_shot_problems(exp, train_rows, test_rows)
        problems += [] if split else stage_problems(exp, len(train_rows))  # a broken split says it all
        problems += context_problems(exp)
    problems += generation_problems(exp)
    problems += pairs_split_problems(exp, tasks_loaded=bool(train_rows))
    if problems:
        raise UserError("; ".join(dict.fromkeys(problems)))


# ---- held-out splits ----------------------------------------------------------------------------


def split_problems(
    field: str, test_size: float, total: int | None, source: str, need_test: str | None, held: int = 0
) -> list[str]:
    """A split must leave >= 1 training row, and >= 1 test row when `need_test` (what uses them).
    `total` None: not known (data.few_shot cut the rows); `held` then says how many were held out."""
    if test_size >= 1 and test_size != int(test_size):
        return [f"{field}: {test_size:g} is neither a fraction below 1 nor a whole number of rows"]
    if total is not None:
        held = requested_test_rows(test_size, total)
        if held >= total:
            room = (
                f"use at most {total - 1} (or a fraction such as 0.1)"
                if total > 1
                else "add rows or a test file"
            )
            return [
                f"{field}: {test_size:g} holds out {held} of the {total} rows of {source}, leaving none to "
                f"train on; {room}"
            ]
    if not need_test:
        return []
    if test_size == 0:
        return [
            f"{field}: 0 holds out no rows of {source}, but {need_test} needs at least 1; give a test_size "
            "(e.g. 0.1) or a test file"
        ]
    if held == 0:
        of = f" x {total} rows" if total is not None else " of the rows"
        return [
            f"{field}: {test_size:g}{of} rounds to 0 held-out rows, but {need_test} needs at least 1; "
            "give a count such as 1 or a larger fraction"
        ]
    return []


def task_total(exp: ExperimentConfig, train: Rows, test: Rows) -> int | None:
    """Rows of data.train before the split. `split_rows` never leaves training empty: asked for all
    rows or more it holds out total-1 and keeps one, so a cut request shows as one training row and
    a request for >= len(test)+1. Else train + test, unless data.few_shot cut the training rows."""
    if len(train) == 1 and requested_test_rows(exp.data.test_size, len(test) + 1) >= len(test) + 1:
        return len(test) + 1
    if exp.data.few_shot is not None and len(train) == exp.data.few_shot:
        return None
    return len(train) + len(test)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def task_split_problems(exp: ExperimentConfig, train: Rows, test: Rows) -> list[str]:
    if exp.data.test:
        return []
    need = "evaluation (eval.enabled)" if exp.eval.enabled else None
    return split_problems(
        "data.test_size", exp.data.test_size, task_total(exp, train, test), "data.train", need, held=len(test)
    )


def few_shot_problems(exp: ExperimentConfig, train: Rows, test: Rows) -> list[str]:
    """few_shot keeps the first k training rows: fewer than k means the run is not k-shot."""
    if exp.data.few_shot is None or len(train) >= exp.data.few_shot:
        return []
    after = "in data.train" if exp.data.test else f"after holding out {plural(len(test), 'test row')}"
    return [
        f"data.few_shot: {exp.data.few_shot} examples, but only {plural(len(train), 'training row')} {after}"
    ]


def pairs_split_problems(exp: ExperimentConfig, tasks_loaded: bool) -> list[str]:
    """rm.train / encoder.train split by their own test_size. The encoder file is read by `semrl run`
    only after the run folder exists, so its errors are reported here; for `semrl train rm|encoder`
    (tasks not loaded) the stage reads its file before writing, and an unreadable file is its to report."""
    problems = []
    stages: list[tuple[str, EncoderSpec | RMSpec, tuple[str, ...], bool]] = [
        ("encoder", exp.encoder, ("anchor", "positive"), uses_run_encoder(exp)),
        ("rm", exp.rm, ("prompt", "chosen", "rejected"), False),
    ]
    for name, spec, roles, used_by_run in stages:
        if spec.train is None or spec.test is not None or (tasks_loaded and not used_by_run):
            continue
        try:
            train, test = load_pairs(spec.train, spec.columns, roles, None, spec.test_size, exp.seed)
        except UserError as exc:
            if tasks_loaded:
                problems.append(f"{name}.train: {exc}")
            continue
        need = f"the {name} stage's held-out accuracy" if spec.test_size > 0 else None
        problems += split_problems(
            f"{name}.test_size", spec.test_size, len(train) + len(test), f"{name}.train", need
        )
    return problems


# ---- stages: cold start, GRPO batches, checkpoint curves ---------------------------------------


def stage_steps(trainer: str, spec: Any, rows: int) -> int:
    """Optimizer steps of a stage as the Trainer counts them (max_steps > 0 wins over epochs). A GRPO
    step takes prompts_per_step x processes x grad_accum whole prompts (TRL drops a partial batch)."""
    if spec.max_steps > 0:
        return spec.max_steps
    procs = world_size()
    if trainer == "grpo":
        per_epoch = max(rows // (spec.prompts_per_step * procs * spec.grad_accum), 1)
    else:
        per_epoch = max(math.ceil(math.ceil(rows / (spec.batch_size * procs)) / spec.grad_accum), 1)
    return math.ceil(spec.epochs * per_epoch)


def cold_start_problem(exp: ExperimentConfig, arm: ArmSpec, train_n: int) -> tuple[str, int, str] | None:
    """(field, limit, message) when the arm's cold start N does not fit: N <= the training rows, and
    below them when a later stage trains on the rows after N (stage_rows would raise mid-run)."""
    n = exp.stage_spec(arm, "sft").examples
    if RECIPES[arm.recipe].examples == "unused":
        return None  # trains on all rows: N is not its business
    later = RECIPES[arm.recipe].rest_stage
    limit = train_n - 1 if later else train_n
    if n is None or n <= limit:
        return None
    name = field(arm, "sft", "examples")
    fix = f"can use at most {limit}" if limit else "needs at least 2 training rows"
    why = f", so that its {later} stage has rows after them" if later and limit else ""
    message = (
        f"{name}: {n} cold-start examples, but the data has {plural(train_n, 'training row')}; "
        f"arm {arm.name} ({arm.recipe}) {fix}{why}"
    )
    return name, limit, message


def grpo_batch_problem(
    exp: ExperimentConfig, arm: ArmSpec, plan: Any, available: int, train_n: int
) -> tuple[str, int, str] | None:
    """(field, prompts, message) when a GRPO step wants more prompts than the stage has. semrl passes
    per_device_train_batch_size = prompts_per_step x num_generations, so TRL's generation batch
    (x processes x grad_accum) always divides by num_generations; but TRL's sampler keeps only
    whole batches of prompts_per_step x processes x grad_accum prompts, and fewer gives 0 steps."""
    spec, procs = exp.stage_spec(arm, plan.stage), world_size()
    per_step = prompts_per_generation(spec, procs)
    if available >= per_step:
        return None
    if spec.generation_batch_size or spec.steps_per_generation:
        key = "generation_batch_size" if spec.generation_batch_size else "steps_per_generation"
        name = field(arm, "grpo", key)
        message = (
            f"{name}: a generation batch of {per_step} prompts, but arm {arm.name}'s "
            f"{plan.stage} stage has only {available}; TRL would train 0 steps: lower it or add data"
        )
        return name, available, message
    name = field(arm, "grpo", "prompts_per_step")
    how = f"{spec.prompts_per_step} prompts x {procs} process{'es' if procs > 1 else ''}"
    how += f" x {spec.grad_accum} ({field(arm, 'grpo', 'grad_accum')})" if spec.grad_accum > 1 else ""
    n = exp.stage_spec(arm, "sft").examples
    of = f"the rows after {field(arm, 'sft', 'examples')}={n} of {train_n}" if plan.rows == "rest" else ""
    message = (
        f"{name}: {how} = {per_step} prompts per step, but arm {arm.name}'s {plan.stage} stage "
        f"has only {available} ({of or 'all rows'}); TRL would train 0 steps: lower it or add data"
    )
    return name, available, message


def prompts_per_generation(spec: Any, procs: int) -> int:
    """Prompts TRL's sampler takes per generation batch (it keeps whole batches only): the batch of
    one optimizer step times grad_accum, or times steps_per_generation, or generation_batch_size's."""
    if spec.generation_batch_size:
        return max(spec.generation_batch_size // spec.num_generations, 1)
    return spec.prompts_per_step * procs * (spec.steps_per_generation or spec.grad_accum)


def generation_problems(exp: ExperimentConfig) -> list[str]:
    """grpo.generation_batch_size / steps_per_generation as TRL's GRPOConfig checks them when the
    stage starts: one or the other, and a whole number of global batches."""
    problems = []
    for arm, spec in grpo_settings(exp):
        size, steps = spec.generation_batch_size, spec.steps_per_generation
        if size is not None and steps is not None:
            problems.append(
                f"{field(arm, 'grpo', 'generation_batch_size')} and "
                f"{field(arm, 'grpo', 'steps_per_generation')}: give one of them, not both"
            )
            continue
        global_batch = spec.prompts_per_step * spec.num_generations * world_size()
        if size is not None and size % global_batch:
            problems.append(
                f"{field(arm, 'grpo', 'generation_batch_size')}: {size} is not a multiple of the global "
                f"batch, prompts_per_step x num_generations x processes = {global_batch}"
            )
    return list(dict.fromkeys(problems))


def stage_problems(exp: ExperimentConfig, train_n: int) -> list[str]:
    """Cold starts, GRPO batches and checkpoint curves of every arm's planned stages."""
    if not exp.arms:  # `semrl train sft|grpo` on a config without arms: the top-level cold start only
        n = exp.sft.examples
        too_many = n is not None and n > train_n
        return [f"sft.examples: {n} examples, but only {plural(train_n, 'training row')}"] if too_many else []
    try:
        plans = plan_experiment(exp)
    except UserError:
        return []  # `semrl run` reports it before preflight
    worst: dict[str, tuple[int, str]] = {}  # field -> (how bad, message): arms share a field's message
    steps: dict[str, int] = {}
    arms = {arm.name: arm for arm in exp.arms}  # every plan here is an arm's
    for plan in plans:
        arm = arms[plan.arm]
        take = {"cold_start": head, "rest": rest}.get(plan.rows)  # as experiment.stage_rows takes them
        available = len(take(range(train_n), exp.stage_spec(arm, "sft").examples)) if take else train_n
        found = [cold_start_problem(exp, arm, train_n)]
        if available and plan.trainer == "grpo":
            found.append(grpo_batch_problem(exp, arm, plan, available, train_n))
        for name, score, message in filter(None, found):
            if name not in worst or score < worst[name][0]:
                worst[name] = (score, message)
        if available:
            steps[plan.key] = stage_steps(plan.trainer, exp.stage_spec(arm, plan.stage), available)
    return [message for _, message in worst.values()] + curve_problems(exp, plans, steps)


def curve_problems(exp: ExperimentConfig, plans: list, steps: dict[str, int]) -> list[str]:
    """eval.curve_every saves a checkpoint every N steps of each stage: a curve arm whose stages
    all stop before N steps would have no point besides the base."""
    every = exp.eval.curve_every
    if not every:
        return []
    short = []
    for arm in exp.arms:
        if exp.eval.curve_arms is not None and arm.name not in exp.eval.curve_arms:
            continue
        mine = {plan.stage: steps[plan.key] for plan in plans if plan.arm == arm.name and plan.key in steps}
        if mine and max(mine.values()) < every:
            detail = ", ".join(f"{stage} {count}" for stage, count in mine.items())
            short.append((max(mine.values()), f"{arm.name} ({detail})"))
    if not short:
        return []
    return [
        f"eval.curve_every: {every} steps, but no stage of arm {', '.join(s for _, s in short)} reaches "
        f"{every} steps, so its curve would hold no checkpoint; use at most {min(c for c, _ in short)} "
        "or train longer (max_steps, epochs)"
    ]


# ---- lengths vs the model's context ------------------------------------------------------------


def model_context(exp: ExperimentConfig) -> tuple[int, str] | None:
    """Positions the model has, and where that number comes from; None for a hub id (not read here)."""
    if exp.model.tiny is not None:
        return exp.model.tiny.max_positions, "model.tiny.max_positions"
    config = Path(str(exp.model.path)) / "config.json"
    data = read_json(config, default=None)  # None: a hub id, or a folder check_model_reference reports
    for section in (data, data.get("text_config")) if isinstance(data, dict) else ():
        for key in CONTEXT_KEYS:
            value = section.get(key) if isinstance(section, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value, f"{key} in {config}"
    return None


def context_problems(exp: ExperimentConfig) -> list[str]:
    """Generated tokens come after the prompt: a completion budget of the whole context (or more)
    leaves no position for the prompt. (sft.max_length is a truncation cap, not a length every
    example reaches, so it may exceed the context: the default 512 does on a 256-position tiny.)"""
    context = model_context(exp)
    if context is None:
        return []
    positions, source = context
    lengths = {
        field(arm, "grpo", "max_completion_length"): exp.stage_spec(arm, "grpo").max_completion_length
        for arm in exp.arms
        if RECIPES[arm.recipe].needs_rewards  # trains with GRPO
    }
    if exp.eval.enabled:
        name = "eval.max_new_tokens" if exp.eval.max_new_tokens else "decoding.max_new_tokens"
        lengths[name] = exp.eval.max_new_tokens or exp.decoding.max_new_tokens
    return [
        f"{name}: {value} tokens, but the model has {positions} positions ({source}) and the prompt needs "
        f"some; use at most {positions - 1}"
        for name, value in lengths.items()
        if value >= positions
    ]
