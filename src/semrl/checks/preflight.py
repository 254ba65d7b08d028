"""Everything checkable before the first training step, checked at once.

A run that fails at step 3,000 on a missing encoder wastes hours; a run that fails at start on the
first of five problems wastes five restarts. `preflight` runs every independent check (data files,
model and encoder paths, reward models, tokenizer, general suite, judge, logger) and raises one
UserError listing all problems found, each naming its file and line or config field.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from semrl.checks import first_line, under
from semrl.checks.lookups import lookup_checks
from semrl.checks.models import model_kind_checks
from semrl.checks.settings import check_aggregation, check_settings, check_vllm
from semrl.checks.sizes import check_sizes
from semrl.data.task_rows import load_task_rows
from semrl.encoders.loading import DEFAULT_ENCODER, resolve_encoder
from semrl.errors import UserError
from semrl.evaluate.suite import load_suite
from semrl.experiment_config import ExperimentConfig
from semrl.hub import require_available
from semrl.models.loading import check_model_reference, load_tokenizer
from semrl.notices import warn
from semrl.rewards import build_reward
from semrl.rewards.encoder_binding import RUN_ENCODER, bind_run_encoder, uses_run_encoder
from semrl.rewards.registry import reward_type
from semrl.train.select import select_checks


class Problems:
    """Collects UserErrors from independent checks; `raise_all` reports them in one line."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except UserError as exc:
            if str(exc) not in self.messages:  # two checks of one model can find the same fault
                self.messages.append(str(exc))
            return None

    def passes(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        before = len(self.messages)
        self.check(function, *args, **kwargs)
        return len(self.messages) == before

    def raise_all(self) -> None:
        if len(self.messages) == 1:
            raise UserError(self.messages[0])
        if self.messages:
            numbered = " ".join(f"({i}) {m}" for i, m in enumerate(self.messages, start=1))
            raise UserError(f"{len(self.messages)} problems: {numbered}")


def check_tokenizer(exp: ExperimentConfig) -> None:
    """The policy's tokenizer can pad (pad or eos token) and has a chat template if the task demands one."""
    path = exp.model.path
    if path is None or not (Path(path) / "config.json").exists():
        return  # tiny models are built with both; hub ids were checked by check_model_reference
    try:
        tokenizer = load_tokenizer(path, exp.model.trust_remote_code)  # the same checks training applies
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"model {path}: tokenizer could not be loaded ({first_line(exc)})") from None
    if exp.task.chat_template == "always" and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"task.chat_template: 'always', but the tokenizer of {path} has no chat template")


def check_encoder(name: str, field: str, local_checked_elsewhere: bool = False) -> None:
    """A local folder, 'default', 'run:encoder', or a hub id that is in the local cache."""
    if name in (DEFAULT_ENCODER, RUN_ENCODER):
        return
    try:
        target = resolve_encoder(name)
    except UserError as exc:
        if local_checked_elsewhere:
            return
        raise UserError(f"{field}: {exc}") from None
    if not Path(target).exists():
        under(field, require_available, target, "encoder")


def check_eval(exp: ExperimentConfig) -> list[Callable[[], Any]]:
    """What the evaluation loads: the general suite, its encoder, a judge model."""
    if not exp.eval.enabled:
        return []
    checks: list[Callable[[], Any]] = []
    if exp.eval.suite:
        checks.append(partial(under, "eval.suite", load_suite, exp.eval.suite))
    checks.append(partial(check_encoder, exp.eval.encoder, "eval.encoder"))
    judge = exp.eval.judge
    if judge is not None and judge.model:
        trust = exp.model.trust_remote_code
        checks.append(partial(check_model_reference, judge.model, trust, "eval.judge.model"))
    return checks


def check_rewards(exp: ExperimentConfig) -> list[Callable[[], Any]]:
    checks: list[Callable[[], Any]] = []
    for where, config in exp.reward_configs():
        for spec in config.specs():
            loaded = reward_type(spec.type).component.loads(spec)
            if loaded is not None and loaded.kind == "encoder":  # a reward model is checked when built
                checks.append(partial(check_encoder, loaded.name, f"{where}: {spec.type} reward", True))
        if uses_run_encoder(exp):  # the run's encoder does not exist yet: built with the default's
            config = bind_run_encoder(config, Path("default"))
        checks.append(partial(under, where, build_reward, config))
    return checks


def check_separate_test_files(exp: ExperimentConfig) -> None:
    """A test file that is the training file scores the model on what it trained on: refused. The
    same file through any path spelling or link, or the same datasets id."""
    for section in ("data", "rm", "encoder"):
        train, test = getattr(exp, section).train, getattr(exp, section).test
        if train is None or test is None:
            continue
        both = os.path.exists(train) and os.path.exists(test)
        if train == test or (both and os.path.samefile(train, test)):
            raise UserError(
                f"{section}.test: {test} is the same file as {section}.train; give a separate "
                f"test file, or drop {section}.test to hold out {section}.test_size of the training rows"
            )


def preflight(
    exp: ExperimentConfig, load_rows: bool = True, evaluates: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) task rows after every check passed; else one UserError naming all problems.
    `evaluates`: the command evaluates (run, eval); `semrl train STAGE` does not, so the settings only
    evaluation reads (metrics, judge) are not its to refuse."""
    problems = Problems()
    rows = problems.check(load_task_rows, exp) if load_rows else ([], [])
    if exp.report_to != "none" and importlib.util.find_spec(exp.report_to) is None:
        problems.messages.append(
            f"report_to: {exp.report_to} is not installed (pip install {exp.report_to}) "
            "or set report_to: none"
        )
    problems.check(check_separate_test_files, exp)
    problems.check(check_settings, exp)
    problems.check(check_vllm, exp)
    problems.check(check_aggregation, exp)
    if exp.model.path is not None:
        if problems.passes(check_model_reference, exp.model.path, exp.model.trust_remote_code, "model.path"):
            problems.check(check_tokenizer, exp)
    if exp.rm.model is not None:
        problems.check(check_model_reference, exp.rm.model, exp.model.trust_remote_code, "rm.model")
    checks = check_rewards(exp) + check_eval(exp) + model_kind_checks(exp) + lookup_checks(exp, evaluates)
    checks += select_checks(exp, len(rows[0]) if rows and load_rows else None)
    for check in checks:
        problems.check(check)
    if rows is not None:  # the sizes need the rows; a data error was reported instead
        problems.check(check_sizes, exp, *rows)
    problems.raise_all()
    if exp.model.trust_remote_code:
        warn(f"model.trust_remote_code is ON: code shipped with {exp.model.path or 'the model'} will run")
    return rows
