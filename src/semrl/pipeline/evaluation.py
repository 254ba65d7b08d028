"""`semrl eval`: evaluate the base model and every arm of a run (or any model path), in worker
processes when `parallel` allows, and write eval/<name>.json with the outputs beside them."""

from __future__ import annotations

import signal
import time
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


def arm_stages(run_root: Path, exp: ExperimentConfig, arm) -> list[tuple[str, Path]]:
    """(stage name, folder) of each of the arm's stages, in training order."""
    return [(plan.stage, recorded_folder(run_root, plan)) for plan in plan_arm(exp, arm)]


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
    worker processes once the base is done, with the same results as the sequential path.
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
        finals = _finished_finals(run_root, exp, manifest, arms)
        problems = Problems()
        for check in check_eval(exp):
            problems.check(check)
        problems.raise_all()
        run.check_kept_data("test.jsonl")
        test_rows = read_jsonl(run_root / "data" / "test.jsonl", numbered=False, allow_empty=True)
        if not test_rows:
            raise UserError(f"{run_root}/data/test.jsonl: no test rows; set data.test or data.test_size")
        results = _evaluate(run_root, exp, arms, finals, test_rows)
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


def _finished_finals(
    run_root: Path, exp: ExperimentConfig, manifest: dict[str, Any], arms: list
) -> dict[str, tuple[list[tuple[str, Path]], Path]]:
    """Each arm's stage folders and final model; one UserError naming every arm not ready."""
    finals, unfinished = {}, []
    for arm in arms:
        try:
            finals[arm.name] = _finished_final(run_root, exp, manifest, arm)
        except UserError as exc:
            unfinished.append((arm.name, str(exc)))
    if unfinished:
        ready = [arm.name for arm in arms if arm.name in finals]
        first = unfinished[0][1]
        more = (
            f" (and arms {', '.join(name for name, _ in unfinished[1:])} too)" if len(unfinished) > 1 else ""
        )
        hint = f"; or evaluate the finished ones: --arm {' --arm '.join(ready)}" if ready else ""
        raise UserError(first + more + hint)
    return finals


def _evaluate(
    run_root: Path,
    exp: ExperimentConfig,
    arms: list,
    finals: dict[str, tuple[list[tuple[str, Path]], Path]],
    test_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The base, then every arm (in workers when `parallel` allows); writes eval/<name>.json each."""
    base_path = exp.model.path or str(run_root / "base_model")
    encoder = bind_eval_encoder(exp.eval.encoder, run_root)
    out_dir = run_root / "eval"
    device = pick_device(exp.device)
    curve_arms = set(curve_arm_names(exp))
    pool = None
    if pool_workers(exp.parallel, device, 2) > 1:  # parallel asked for: plan the jobs (a look at folders)
        jobs = _eval_jobs(run_root, exp, arms, curve_arms)
        workers = pool_workers(exp.parallel, device, len(jobs))
        if workers > 1:  # started now: the workers import and load while the base is evaluated here
            pool = EvalPool(run_root, exp, test_rows, base_path, out_dir, device, encoder, jobs, workers)
    try:
        evaluator = Evaluator(exp, test_rows, base_path, out_dir, device, encoder)
        results: dict[str, Any] = {}
        console.print("[bold]evaluating[/bold] base")
        results["base"] = evaluator.evaluate("base", base_path, is_base=True)
        _write(out_dir, results["base"])
        if exp.eval.curve_every:
            base_outputs = [row["hypothesis"] for row in read_jsonl(out_dir / "base.outputs.jsonl")]
            evaluator.write_base_point(results["base"], base_outputs)
        if pool is not None:
            results.update(pool.evaluate(evaluator, arms, curve_arms))
        else:
            for arm in arms:
                stage_dirs, final = finals[arm.name]
                console.print(f"[bold]evaluating[/bold] {arm.name}")
                result = evaluator.evaluate(arm.name, str(final))
                if arm.name in curve_arms:
                    result["curve"] = evaluator.curve(arm.name, stage_dirs)
                results[arm.name] = result
                _write(out_dir, result)
    except (
        BaseException
    ):  # nothing is left running that writes (pool.evaluate waits for its jobs): stop at once
        if pool is not None:
            pool.kill()
        raise
    finally:
        if pool is not None:
            pool.close()
    if exp.eval.compare:
        preference = judge_pairs(exp, out_dir, test_rows, evaluator.device)
        atomic_write_json(out_dir / "preference.json", preference)
    return results


def curve_arm_names(exp: ExperimentConfig) -> list[str]:
    """The arms that get a checkpoint curve: eval.curve_arms (default every arm), with eval.curve_every."""
    if not exp.eval.curve_every:
        return []
    return [arm.name for arm in exp.arms if exp.eval.curve_arms is None or arm.name in exp.eval.curve_arms]


def _finished_final(
    run_root: Path, exp: ExperimentConfig, manifest: dict[str, Any], arm
) -> tuple[list[tuple[str, Path]], Path]:
    """The arm's stage folders and its final model; a UserError when it has not finished training."""
    stages = arm_stages(run_root, exp, arm)
    final = stages[-1][1] / "final"
    key = f"{arm.name}/{stages[-1][0]}"
    if manifest["stages"].get(key, {}).get("status") != "done" or not final.exists():
        raise UserError(
            f"{run_root}: arm {arm.name} has not finished training ({key}); run `semrl run --resume` first"
        )
    problem = weights_problem(final)
    if problem is not None:
        raise UserError(f"{final}: {problem}; the run folder was damaged: restore it, or train again")
    return stages, final


def _checkpoints(stages: list[tuple[str, Path]]) -> list[Path]:
    """Every kept checkpoint of the stages, in the order `Evaluator.curve` visits them."""
    return [checkpoint for _, stage_dir in stages for _, checkpoint in stage_checkpoints(stage_dir)]


def _eval_jobs(
    run_root: Path, exp: ExperimentConfig, arms: list, curve_arms: set[str]
) -> list[tuple[str, str, str]]:
    """One job per arm (its final model) and one per distinct checkpoint of the curve arms (a
    checkpoint shared by several arms, e.g. of a shared cold-start SFT, is evaluated once, as the
    sequential path's cache does): ("arm", name, path) or ("checkpoint", resolved path, path)."""
    jobs: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for arm in arms:
        stages = arm_stages(run_root, exp, arm)
        jobs.append(("arm", arm.name, str(stages[-1][1] / "final")))
        if arm.name in curve_arms:
            for checkpoint in _checkpoints(stages):
                key = str(checkpoint.resolve())
                if key not in seen:
                    seen.add(key)
                    jobs.append(("checkpoint", key, str(checkpoint)))
    return jobs


# ---- parallel evaluation: the arms and checkpoints in worker processes -------------------

_WORKER: dict[str, Any] = {}  # in a worker: the parent's context, then its Evaluator


def _init_eval_worker(threads: int, parent: int, context: dict[str, Any]) -> None:
    init_worker(threads, parent)  # torch threads, dies with the parent, Ctrl-C reaches the parent only
    _WORKER.clear()
    _WORKER["context"] = context
    try:  # the slow imports, while the parent evaluates the base
        import sentence_transformers  # noqa: F401
        import transformers  # noqa: F401

        import semrl.evaluate.benchmarks  # noqa: F401
        import semrl.evaluate.task  # noqa: F401
        import semrl.metrics.semantic  # noqa: F401
    except ImportError:  # reported by the job that needs it
        pass


def _worker_evaluator() -> Evaluator:
    """The worker's Evaluator, built once. Its base results come with each job from the parent
    (base_general with the per-item scores the tax needs, which eval/base.json does not keep): the
    base is never re-evaluated; the base model itself is loaded here only for the suite's KL."""
    if "evaluator" not in _WORKER:
        c = _WORKER["context"]
        _WORKER["evaluator"] = Evaluator(
            c["exp"], c["rows"], c["base_path"], Path(c["out_dir"]), c["device"], c["encoder"]
        )
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


def _eval_job(
    job: tuple[str, str, str], base_general: dict[str, Any] | None, base_point: dict[str, Any] | None
):
    kind, name, path = job
    evaluator = _worker_evaluator()
    evaluator.base_general, evaluator._base_point = base_general, base_point
    if kind == "arm":
        return evaluator.evaluate(name, path)  # writes eval/<arm>.outputs.jsonl
    return evaluator._checkpoint_point(Path(path), primary_task_metric(evaluator.exp))


class EvalPool:
    """`workers` processes (workers.pool_context; cores // workers torch threads each) for one run's jobs.
    Started before the base is evaluated; `evaluate` runs the jobs once it is. Each arm's
    eval/<arm>.json (with its curve, assembled here by `Evaluator.curve` from the workers'
    checkpoint points, which also writes the curve files) is written as soon as its jobs are done.
    The first error is raised once the running jobs finish (the same exception as a sequential
    evaluation, so the same exit code); Ctrl-C kills the workers (every file is written atomically)."""

    def __init__(
        self,
        run_root: Path,
        exp: ExperimentConfig,
        rows: list[dict[str, Any]],
        base_path: str,
        out_dir: Path,
        device: str,
        encoder: str | None,
        jobs: list[tuple[str, str, str]],
        workers: int,
    ):
        self.run_root, self.exp, self.jobs, self.workers = run_root, exp, jobs, workers
        threads = threads_per_worker(workers)
        context = {
            "exp": exp,
            "rows": rows,
            "base_path": base_path,
            "out_dir": str(out_dir),
            "device": device,
            "encoder": encoder,
        }
        arms = sum(1 for kind, _, _ in jobs if kind == "arm")
        console.print(
            f"parallel: {len(jobs)} evaluations ({arms} arms, {len(jobs) - arms} checkpoints) in "
            f"{workers} worker processes, {threads} torch thread{'s' if threads > 1 else ''} each"
        )
        self.pool = WorkerPool(workers, threads, _init_eval_worker, context)
        for _ in range(workers):  # spawns the workers now
            self.pool.submit(_warm_eval_worker)

    def evaluate(self, evaluator: Evaluator, arms: list, curve_arms: set[str]) -> dict[str, Any]:
        import os
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        stage_dirs = {arm.name: arm_stages(self.run_root, self.exp, arm) for arm in arms}
        needs = {arm.name: {("arm", arm.name)} for arm in arms}  # the jobs each arm's result waits for
        for arm in arms:
            if arm.name in curve_arms:
                needs[arm.name] |= {
                    ("checkpoint", str(c.resolve())) for c in _checkpoints(stage_dirs[arm.name])
                }
        finals: dict[str, dict[str, Any]] = {}
        finished: set[tuple[str, str]] = set()
        results: dict[str, Any] = {}
        errors: list[tuple[str, BaseException]] = []
        base = (evaluator.base_general, evaluator._base_point)
        running = {self.pool.submit(_eval_job, job, *base): job for job in self.jobs}
        while running:
            done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                kind, name, path = running.pop(future)
                label = name if kind == "arm" else os.path.relpath(path, self.run_root)
                if future.cancelled():
                    continue
                error = future.exception()
                if error is not None:
                    errors.append((label, error))
                    for other in running:
                        other.cancel()  # nothing new starts; the running ones finish
                    continue
                if kind == "arm":
                    finals[name] = future.result()
                    console.print(f"evaluated {name} in {finals[name]['seconds']:.0f}s (worker)")
                else:
                    evaluator._curve_cache[name] = future.result()  # what Evaluator._checkpoint_point caches
                    console.print(f"[dim]evaluated {label} (worker)[/dim]")
                finished.add((kind, name))
                for arm in arms:
                    if arm.name not in results and arm.name in finals and needs[arm.name] <= finished:
                        result = finals[arm.name]
                        if arm.name in curve_arms:
                            result["curve"] = evaluator.curve(arm.name, stage_dirs[arm.name])
                        results[arm.name] = result
                        _write(evaluator.out_dir, result)
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
        return {arm.name: results[arm.name] for arm in arms}

    def kill(self) -> None:
        self.pool.signal(signal.SIGTERM)

    def close(self) -> None:
        """No job is running by now (`evaluate` waits for its jobs; on an error here they were killed):
        the idle workers are ended at once rather than tearing torch down for seconds each."""
        self.kill()
        self.pool.shutdown()


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
