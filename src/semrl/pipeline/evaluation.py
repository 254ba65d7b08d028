"""`semrl eval`: evaluate the base model and every arm of a run (or any model path), in worker
processes when `parallel` allows, and write eval/<name>.json with the outputs beside them."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console

from semrl.checks.preflight import Problems, check_eval, preflight
from semrl.devices import pick_device
from semrl.errors import UserError
from semrl.evaluate.preference import judge_pairs
from semrl.evaluate.runner import Evaluator, primary_task_metric
from semrl.experiment_config import ExperimentConfig, load_experiment
from semrl.files import atomic_write_json, check_output_file, check_output_folder, read_jsonl
from semrl.models.loading import check_model_reference
from semrl.names import inside
from semrl.recipes.plan import plan_arm, recorded_folder
from semrl.report.model_card import write_model_cards
from semrl.rewards.encoder_binding import bind_eval_encoder
from semrl.run_folder import Run
from semrl.run_lock import run_lock
from semrl.train.checkpoints import stage_checkpoints
from semrl.weights import weights_problem
from semrl.workers import WorkerPool, init_worker, pool_workers, threads_per_worker

console = Console(stderr=True)


Stages = list[tuple[str, Path]]  # (stage name, folder) of an arm's stages, in training order
Job = tuple[str, str, str]  # ("arm", name, final model) or ("checkpoint", resolved path, path)


def _write(out_dir: Path, result: dict[str, Any]) -> None:
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    atomic_write_json(inside(out_dir, out_dir / f"{result['name']}.json", "evaluation"), public)


def run_eval_overrides(overrides: list[str], suite: str | None) -> list[str]:
    """`semrl eval RUN_DIR`'s `key=value` overrides and `--suite`, as overrides of the run's config:
    evaluation settings only (eval.*, device, parallel). The models were trained with the run's
    config.yaml, so a training setting here would describe a run that never happened: refused."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if not (key.startswith("eval.") or key in ("device", "parallel")):
            raise UserError(
                f"{item}: semrl eval RUN_DIR takes only evaluation settings (eval.*, device, parallel); "
                "the run's models were trained with its config.yaml"
            )
    return list(overrides) + ([f"eval.suite={Path(suite).resolve()}"] if suite else [])


def evaluate_run(
    run_root: Path, only: list[str] | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Evaluate base + every arm of a finished run; returns {name: result}. With `parallel` > 1 (the
    experiment's setting, as for training) the arms and their distinct checkpoints are evaluated in
    worker processes once the base is done: the same jobs as with parallel=1, so the same results.
    `overrides`: evaluation settings (run_eval_overrides). Everything is checked (the arms asked
    for exist and have finished training, the run's files are whole, the settings' files exist)
    before the first evaluation writes anything."""
    run_root = Path(run_root)
    config_path = run_root / "config.yaml"
    if not config_path.exists():
        raise UserError(f"{run_root}: not a semrl run directory (no config.yaml)")
    with run_lock(run_root):
        exp = load_experiment(config_path, overrides or [])
        run = Run(run_root)
        manifest = run.manifest()
        arms = _selected_arms(exp, only, config_path)
        stages = _finished_stages(run_root, exp, manifest, arms)
        problems = Problems()
        for check in check_eval(exp):
            problems.check(check)
        problems.raise_all()
        run.check_kept_data("test.jsonl")
        test_rows = read_jsonl(run_root / "data" / "test.jsonl", numbered=False, allow_empty=True)
        if not test_rows:
            raise UserError(f"{run_root}/data/test.jsonl: no test rows; set data.test or data.test_size")
        results = _evaluate(run_root, exp, arms, stages, test_rows)
        run.mark(
            "_eval", status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S"), overrides=overrides or []
        )
        write_model_cards(run_root)  # the cards in final/ now carry the run's numbers
    return results


def _selected_arms(exp: ExperimentConfig, only: list[str] | None, config_path: Path) -> list:
    """The arms `--arm` names (all without it); a UserError for a name the run does not have."""
    names = [arm.name for arm in exp.arms]
    unknown = [name for name in only or [] if name not in names]
    if unknown:
        raise UserError(
            f"--arm {unknown[0]}: {config_path} has no arm of that name; its arms are {', '.join(names)}"
        )
    return [arm for arm in exp.arms if not only or arm.name in only]


def _finished_stages(
    run_root: Path, exp: ExperimentConfig, manifest: dict[str, Any], arms: list
) -> dict[str, Stages]:
    """Each arm's stage folders; one UserError naming every arm whose final model is not ready."""
    stages, unfinished = {}, []
    for arm in arms:
        try:
            stages[arm.name] = _finished_arm(run_root, exp, manifest, arm)
        except UserError as exc:
            unfinished.append((arm.name, str(exc)))
    if unfinished:
        ready = [arm.name for arm in arms if arm.name in stages]
        first = unfinished[0][1]
        more = (
            f" (and arms {', '.join(name for name, _ in unfinished[1:])} too)" if len(unfinished) > 1 else ""
        )
        hint = f"; or evaluate the finished ones: --arm {' --arm '.join(ready)}" if ready else ""
        raise UserError(first + more + hint)
    return stages


def _evaluate(
    run_root: Path,
    exp: ExperimentConfig,
    arms: list,
    stages: dict[str, Stages],
    test_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The base, then every arm and checkpoint: here, or in workers when `parallel` allows (the same
    jobs, so the same results); writes eval/<name>.json each."""
    base_path = exp.model.path or str(run_root / "base_model")
    encoder = bind_eval_encoder(exp.eval.encoder, run_root)
    out_dir = run_root / "eval"
    device = pick_device(exp.device)
    curve_arms = set(curve_arm_names(exp))
    args = (exp, test_rows, base_path, out_dir, device, encoder)  # the Evaluator's, here and in workers
    arm_jobs = {arm.name: _arm_jobs(arm.name, stages[arm.name], arm.name in curve_arms) for arm in arms}
    jobs = _eval_jobs(arm_jobs)
    workers = pool_workers(exp.parallel, device, len(jobs))
    # started now: the workers import and load while the base is evaluated here
    with EvalPool(args, jobs, workers) if workers > 1 else nullcontext() as pool:
        evaluator = Evaluator(*args)
        results: dict[str, Any] = {}
        console.print("[bold]evaluating[/bold] base")
        results["base"] = evaluator.evaluate("base", base_path, is_base=True)
        _write(out_dir, results["base"])
        if exp.eval.curve_every:
            base_outputs = [row["hypothesis"] for row in read_jsonl(out_dir / "base.outputs.jsonl")]
            evaluator.write_base_point(results["base"], base_outputs)
        outcomes = _inline(evaluator, jobs) if pool is None else pool.outcomes(evaluator, run_root)
        results.update(_arm_results(evaluator, stages, curve_arms, arm_jobs, outcomes))
    if exp.eval.compare:
        preference = judge_pairs(exp, out_dir, test_rows, evaluator.device)
        atomic_write_json(out_dir / "preference.json", preference)
    return results


def curve_arm_names(exp: ExperimentConfig) -> list[str]:
    """The arms that get a checkpoint curve: eval.curve_arms (default every arm), with eval.curve_every."""
    if not exp.eval.curve_every:
        return []
    return [arm.name for arm in exp.arms if exp.eval.curve_arms is None or arm.name in exp.eval.curve_arms]


def _finished_arm(run_root: Path, exp: ExperimentConfig, manifest: dict[str, Any], arm) -> Stages:
    """The arm's stage folders; a UserError when its final model is not trained, or not whole."""
    stages = [(plan.stage, recorded_folder(run_root, plan)) for plan in plan_arm(exp, arm)]
    final = stages[-1][1] / "final"
    key = f"{arm.name}/{stages[-1][0]}"
    if manifest["stages"].get(key, {}).get("status") != "done" or not final.exists():
        raise UserError(
            f"{run_root}: arm {arm.name} has not finished training ({key}); run `semrl run --resume` first"
        )
    problem = weights_problem(final)
    if problem is not None:
        raise UserError(f"{final}: {problem}; the run folder was damaged: restore it, or train again")
    return stages


def _arm_jobs(arm: str, stages: Stages, curve: bool) -> list[Job]:
    """The arm's final model, then (for a curve) every kept checkpoint in the order `Evaluator.curve`
    visits them."""
    jobs = [("arm", arm, str(stages[-1][1] / "final"))]
    if curve:
        checkpoints = [path for _, stage_dir in stages for _, path in stage_checkpoints(stage_dir)]
        jobs += [("checkpoint", str(path.resolve()), str(path)) for path in checkpoints]
    return jobs


def _eval_jobs(arm_jobs: dict[str, list[Job]]) -> list[Job]:
    """Every arm's jobs in arm order; a checkpoint shared by several arms (e.g. of a shared
    cold-start SFT) is one job, evaluated once (by its path as the first arm names it)."""
    jobs: dict[tuple[str, str], Job] = {}
    for own in arm_jobs.values():
        for job in own:
            jobs.setdefault(job[:2], job)
    return list(jobs.values())


def _run_job(evaluator: Evaluator, job: Job) -> Any:
    """An arm's result (writes eval/<arm>.outputs.jsonl), or a checkpoint's curve point."""
    kind, name, path = job
    if kind == "arm":
        return evaluator.evaluate(name, path)
    return evaluator._checkpoint_point(Path(path), primary_task_metric(evaluator.exp))


def _inline(evaluator: Evaluator, jobs: list[Job]) -> Iterator[tuple[Job, Any]]:
    """The jobs one after another in this process, each outcome as it is done."""
    for job in jobs:
        if job[0] == "arm":
            console.print(f"[bold]evaluating[/bold] {job[1]}")
        yield job, _run_job(evaluator, job)


def _arm_results(
    evaluator: Evaluator,
    stages: dict[str, Stages],
    curve_arms: set[str],
    arm_jobs: dict[str, list[Job]],
    outcomes: Iterable[tuple[Job, Any]],
) -> dict[str, Any]:
    """{arm: result} from the jobs' outcomes, in any order. Each arm's eval/<arm>.json (with its
    curve, assembled by `Evaluator.curve` from the checkpoint points, which also writes the curve
    files) is written as soon as its last job is done."""
    needs = {arm: {job[:2] for job in jobs} for arm, jobs in arm_jobs.items()}  # what each result waits for
    finished: set[tuple[str, str]] = set()
    evaluated: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    for (kind, name, _), value in outcomes:
        if kind == "arm":
            evaluated[name] = value
        else:
            evaluator._curve_cache[name] = value  # what Evaluator._checkpoint_point caches
        finished.add((kind, name))
        for arm, waits_for in needs.items():
            if arm not in results and waits_for <= finished:
                result = evaluated[arm]
                if arm in curve_arms:
                    result["curve"] = evaluator.curve(arm, stages[arm])
                results[arm] = result
                _write(evaluator.out_dir, result)
    return {arm: results[arm] for arm in arm_jobs}


# ---- the jobs in worker processes ---------------------------------------------------------------

_WORKER: dict[str, Any] = {}  # in a worker: the Evaluator's arguments, then the Evaluator


def _init_eval_worker(threads: int, parent: int, evaluator_args: tuple) -> None:
    init_worker(threads, parent)  # torch threads, dies with the parent, Ctrl-C reaches the parent only
    _WORKER.clear()
    _WORKER["args"] = evaluator_args
    try:  # a spawned worker's slow imports (semrl's came with this module), while the base is evaluated
        import sentence_transformers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:  # reported by the job that needs it
        pass


def _worker_evaluator() -> Evaluator:
    """The worker's Evaluator, built once. Its base results come with each job from the parent
    (base_general with the per-item scores the tax needs, which eval/base.json does not keep): the
    base is never re-evaluated; the base model itself is loaded here only for the suite's KL."""
    if "evaluator" not in _WORKER:
        _WORKER["evaluator"] = Evaluator(*_WORKER["args"])
    return _WORKER["evaluator"]


def _warm_eval_worker() -> None:
    """The first job of each worker: the Evaluator and the base model, loaded while the parent
    evaluates the base. A failure here is left to the real jobs, which report it."""
    try:
        evaluator = _worker_evaluator()
        if evaluator.suite is not None:
            evaluator.base  # noqa: B018
    except Exception:  # noqa: BLE001
        _WORKER.pop("evaluator", None)


def _eval_job(job: Job, base_general: dict[str, Any] | None, base_point: dict[str, Any] | None) -> Any:
    evaluator = _worker_evaluator()
    evaluator.base_general, evaluator._base_point = base_general, base_point
    return _run_job(evaluator, job)


class EvalPool:
    """`workers` processes (workers.pool_context; cores // workers torch threads each) for one run's
    jobs, started before the base is evaluated; `outcomes` runs the jobs once it is. Leaving the
    `with` block ends the workers at once (SIGTERM: every file is written atomically): no job is
    running by then (`outcomes` waits for its jobs), or an error or Ctrl-C stops everything."""

    def __init__(self, evaluator_args: tuple, jobs: list[Job], workers: int):
        self.jobs = jobs
        threads = threads_per_worker(workers)
        arms = sum(1 for kind, _, _ in jobs if kind == "arm")
        console.print(
            f"parallel: {len(jobs)} evaluations ({arms} arms, {len(jobs) - arms} checkpoints) in "
            f"{workers} worker processes, {threads} torch thread{'s' if threads > 1 else ''} each"
        )
        self.pool = WorkerPool(workers, threads, _init_eval_worker, evaluator_args)
        for _ in range(workers):  # spawns the workers now
            self.pool.submit(_warm_eval_worker)

    def __enter__(self) -> EvalPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.signal(signal.SIGTERM)  # idle workers end at once rather than tear torch down
        self.pool.shutdown()

    def outcomes(self, evaluator: Evaluator, run_root: Path) -> Iterator[tuple[Job, Any]]:
        """Each job's outcome as its worker finishes it. The first error stops new jobs and is raised
        once the running ones finish (the same exception as here, so the same exit code)."""
        import os
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        errors: list[tuple[str, BaseException]] = []
        base = (evaluator.base_general, evaluator._base_point)
        running = {self.pool.submit(_eval_job, job, *base): job for job in self.jobs}
        while running:
            done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                kind, name, path = job
                label = name if kind == "arm" else os.path.relpath(path, run_root)
                if future.cancelled():
                    continue
                error = future.exception()
                if error is not None:
                    errors.append((label, error))
                    for other in running:
                        other.cancel()  # nothing new starts; the running ones finish
                    continue
                if kind == "arm":
                    console.print(f"evaluated {name} in {future.result()['seconds']:.0f}s (worker)")
                else:
                    console.print(f"[dim]evaluated {label} (worker)[/dim]")
                yield job, future.result()
        if errors:
            for label, error in errors[1:]:
                console.print(f"semrl: {label}: failed too: {type(error).__name__}: {error}")
            label, error = errors[0]
            if isinstance(error, BrokenProcessPool):
                raise RuntimeError(
                    f"evaluating {label}: its worker process died (killed, or out of memory?); "
                    "evaluations written so far are kept (parallel=1 uses less memory)"
                ) from error
            raise error


def evaluate_model_path(
    config_path: Path,
    model_path: str,
    name: str,
    out_dir: Path,
    suite: str | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """`semrl eval --model PATH --config X.yaml`: one model on the config's test split (and suite)."""
    check_output_folder(out_dir, "--out")
    check_output_file(out_dir / f"{name}.json", "--out")
    exp = load_experiment(config_path, (overrides or []) + ([f"eval.suite={suite}"] if suite else []))
    check_model_reference(model_path, exp.model.trust_remote_code, "--model")
    if exp.eval.suite and exp.model.path is None:
        raise UserError(f"{config_path}: the alignment tax needs a base model: set model.path")
    _, test_rows = preflight(exp)
    evaluator = Evaluator(exp, test_rows, exp.model.path or model_path, out_dir, pick_device(exp.device))
    if exp.eval.suite and exp.model.path and exp.model.path != model_path:
        evaluator.evaluate("base", exp.model.path, is_base=True)
    result = evaluator.evaluate(name, model_path, is_base=exp.model.path == model_path)
    _write(out_dir, result)
    return result
