"""`semrl transfer`: the paper's few-shot transfer protocol in one command.

From two (or more) starting checkpoints (e.g. the MT model after semantic RL and after SFT),
train the second task's recipe on k examples with identical settings and seed, evaluate each on
the same test split, and compare: task metrics with intervals and the paired difference of the
primary metric between the starts (same test items, paired bootstrap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.checks.preflight import preflight
from semrl.errors import UserError
from semrl.evaluate.runner import primary_task_metric
from semrl.evaluate.stats import bootstrap_paired_difference
from semrl.experiment_config import load_experiment
from semrl.files import atomic_write_json, check_output_folder, read_json, read_jsonl
from semrl.models.loading import check_model_reference
from semrl.names import require_path_name
from semrl.pipeline.experiment import run_experiment
from semrl.recipes.plan import plan_experiment
from semrl.run_folder import check_run_folder


def parse_starts(starts: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in starts:
        if "=" not in item:
            raise UserError(f"--from {item!r}: expected NAME=MODEL_PATH")
        name, path = item.split("=", 1)
        require_path_name(name, f"--from {item!r}")  # the name is its run's folder under --out
        if not name or name in parsed:
            raise UserError(f"--from {item!r}: names must be non-empty and unique")
        parsed[name] = path
    if len(parsed) < 2:
        raise UserError("--from: give at least two starting checkpoints to compare")
    return parsed


def check_start(
    config: Path, overrides: list[str], name: str, path: str, run_dir: Path, resume: bool
) -> None:
    """One start's whole preflight (its model, the config with it as the base, its run folder),
    run for every start before the first trains: a broken second start is named before any work."""
    try:
        check_model_reference(path, field="model")
        exp = load_experiment(config, overrides + [f"model.path={path}"])
        plan_experiment(exp)
        preflight(exp)
        check_run_folder(run_dir, resume)
    except UserError as exc:
        raise UserError(f"--from {name}={path}: {exc}") from None


def run_transfer(
    config: Path,
    starts: list[str],
    k: int | None,
    out: Path,
    overrides: list[str] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """`semrl transfer`: each start model fine-tuned on k rows of another task, and evaluated."""
    check_output_folder(out, "--out")
    named = parse_starts(starts)
    base_overrides = list(overrides or []) + ["model.tiny=null", "eval.enabled=true"]
    if k is not None:
        base_overrides.append(f"data.few_shot={k}")
    exp = load_experiment(config, base_overrides + [f"model.path={next(iter(named.values()))}"])
    if len(exp.arms) != 1:
        raise UserError(f"{config}: a transfer config has exactly one arm (the second task's recipe)")
    arm = exp.arms[0].name
    for name, path in named.items():
        check_start(config, base_overrides, name, path, out / name, resume)
    metric = primary_task_metric(exp)
    per_start: dict[str, Any] = {}
    segments: dict[str, list[float]] = {}
    for name, path in named.items():
        run_dir = out / name
        run_experiment(config, base_overrides + [f"model.path={path}"], run_dir, resume, dry_run=False)
        result = read_json(run_dir / "eval" / f"{arm}.json")
        per_start[name] = {
            "model": path,
            "run_dir": str(run_dir),
            "task": result["task"],
            "alignment_tax": result.get("alignment_tax", {}),
        }
        rows = read_jsonl(run_dir / "eval" / f"{arm}.outputs.jsonl", numbered=False, allow_empty=True)
        segments[name] = [row[f"seg_{metric}"] for row in rows]
    names = list(named)
    differences = {}
    for other in names[1:]:
        a, b = segments[names[0]], segments[other]
        differences[f"{names[0]} - {other}"] = {
            "metric": metric,
            "difference": sum(a) / len(a) - sum(b) / len(b),
            "ci95": bootstrap_paired_difference(a, b, seed=exp.seed),
        }
    summary = {
        "config": str(config),
        "k": k,
        "arm": arm,
        "metric": metric,
        "starts": per_start,
        "differences": differences,
    }
    atomic_write_json(out / "transfer.json", summary)
    return summary
