"""Names and files that are looked up only when a stage or the evaluation reaches them, looked up now.

An unknown metric, a judge template with a field nobody fills, a task template that cannot be
filled, a judge callable that does not import, a language whose script is unknown to the `lang`
metric, a tokenizer corpus file or a pairs file that is a symlink loop: each would otherwise fail
after training, with the run folder half written. Each is checked here the way its user will use it.
"""

from __future__ import annotations

import errno
import os
import string
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from semrl.checks import first_line, under
from semrl.checks.models import reward_components
from semrl.devices import pick_device
from semrl.errors import UserError
from semrl.evaluate.preference import import_judge
from semrl.experiment_config import ExperimentConfig
from semrl.files import read_text
from semrl.metrics.registry import metric_names, metric_type
from semrl.tasks import TASKS
from semrl.text.scripts import resolve_scripts


def check_readable(path: str | None, field: str, folder_ok: bool = False) -> None:
    """A local path that exists must be readable: a symlink loop or a permission problem is named now.
    (A missing path is reported by the check that needs the file; a hub id is not a path.)"""
    if not path or not isinstance(path, str):
        return
    target = Path(path).expanduser()
    try:
        if not os.path.lexists(target):
            if target.is_absolute() and not folder_ok:  # a file named relative to the config, not a hub id
                raise UserError(f"{field}: {path}: file not found")
            return
        target.stat()  # follows symlinks: ELOOP for a loop, ENOENT for a dangling link
    except OSError as exc:
        reasons: dict[int | None, str] = {
            errno.ELOOP: "is a symlink loop",
            errno.ENOENT: "is a symlink to nothing",
        }
        why = reasons.get(exc.errno, f"cannot be read ({exc.strerror})")
        raise UserError(f"{field}: {path} {why}") from None
    if target.is_dir() and not folder_ok:
        raise UserError(f"{field}: {path} is a folder, expected a file")
    if not os.access(target, os.R_OK | (os.X_OK if target.is_dir() else 0)):  # a folder is listed too
        raise UserError(f"{field}: {path} cannot be read (permission denied)")


def check_files_named(exp: ExperimentConfig) -> None:
    """Files read only by a later stage (the tiny tokenizer's corpus) exist now."""
    for i, path in enumerate(exp.model.tiny.corpus if exp.model.tiny is not None else []):
        under(f"model.tiny.corpus.{i}", read_text, path)


def check_template(template: str | None, field: str, known: tuple[str, ...]) -> None:
    """A str.format template whose {fields} are all among `known` (the ones semrl fills)."""
    if template is None:
        return
    try:
        used = {
            name.split(".")[0].split("[")[0]
            for _, name, _, _ in string.Formatter().parse(template)
            if name is not None
        }
    except ValueError as exc:
        raise UserError(
            f"{field}: not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    unknown = sorted(name for name in used if name not in known)
    listed = ", ".join("{" + k + "}" for k in known)
    if "" in used or any(name.isdigit() for name in used):
        raise UserError(f"{field}: positional fields ({{}} or {{0}}) are not filled; use {listed}")
    if unknown:
        raise UserError(f"{field}: unknown field {{{unknown[0]}}}; the fields are {listed}")


def check_metrics(exp: ExperimentConfig) -> None:
    """eval.metrics are metrics the evaluation computes (semrl's or a plugin's), their options are
    what each metric reads, and `lang` has a script to look for."""
    known = metric_names()
    metrics = exp.eval.metrics if exp.eval.metrics is not None else list(TASKS[exp.task.type].metrics)
    if exp.eval.metrics is not None and not metrics:
        raise UserError(
            f"eval.metrics: empty; give some of {', '.join(known)} (or leave it out for the task's)"
        )
    for name in metrics:
        if name not in known:
            raise UserError(f"eval.metrics: unknown metric {name!r}; choose from {', '.join(known)}")
    if len(set(metrics)) != len(metrics):
        raise UserError(f"eval.metrics: {metrics} names a metric twice")
    for name, options in exp.eval.metric_options.items():
        if name not in metrics:
            raise UserError(
                f"eval.metric_options: {name!r} is not among the metrics evaluated ({', '.join(metrics)})"
            )
        check = metric_type(name).check_options
        try:
            if check is not None:
                check(options)
            elif options:
                raise ValueError("this metric takes no options")
        except ValueError as exc:
            raise UserError(f"eval.metric_options.{name}: {exc}") from None
    if "lang" in metrics:
        field = "task.target_lang" if exp.task.target_lang else "task.source_lang"
        try:
            resolve_scripts(exp.task.target_lang or exp.task.source_lang)
        except ValueError as exc:
            why = f"lang needs the target language's script: {field}: {exc}"
            raise UserError(f"eval.metrics: {why}") from None


def check_device(value: str | None, field: str) -> None:
    """A reward's `device` is a torch device name this machine has (cuda, cuda:1, cpu, mps)."""
    import torch

    if value in (None, "", "auto"):
        return
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as exc:
        raise UserError(
            f"{field}: {value!r} is not a torch device (cpu, cuda, cuda:1, ...): {first_line(exc)}"
        ) from None
    under(field, pick_device, value)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"{field}: {value} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)"
        )


def lookup_checks(exp: ExperimentConfig, evaluates: bool = True) -> list[Callable[[], Any]]:
    """Independent checks (preflight reports every failure at once)."""
    # the local paths no other check reads (data, models, encoders, the suite and reward files are
    # read by theirs, which name a symlink loop too)
    checks: list[Callable[[], Any]] = [
        partial(check_readable, exp.rm.train, "rm.train"),
        partial(check_readable, exp.rm.test, "rm.test"),
        partial(check_readable, exp.encoder.train, "encoder.train"),
        partial(check_readable, exp.encoder.test, "encoder.test"),
        partial(check_readable, exp.encoder.base, "encoder.base", True),
        partial(check_files_named, exp),
    ]
    for field, spec in reward_components(exp):
        checks.append(partial(check_device, getattr(spec, "device", None), f"{field}.device"))
    task_fields = ("source", "prompt", "source_name", "target_name")
    checks.append(partial(check_template, exp.task.template, "task.template", task_fields))
    if evaluates and exp.eval.enabled:
        checks.append(lambda: check_metrics(exp))
        judge = exp.eval.judge
        if judge is not None and judge.type == "lm":
            checks.append(lambda: check_template(judge.template, "eval.judge.template", ("prompt", "a", "b")))
        if judge is not None and judge.type == "callable" and judge.callable:
            checks.append(partial(import_judge, judge.callable))
    return checks
