"""How `semrl run` trains an experiment's stages: each distinct stage once, independent ones in parallel.

A stage's folder is named by the hash of its inputs (semrl.recipes.plan), so arms that share a
stage (every two_stage arm's cold start on the same N) name the same folder, and the folder is
trained once. `train_once` is the cache: under the stage's file lock (`stages/.<name>.lock`) it
reuses a folder whose `metrics.json` says it finished, and otherwise trains it; a second process
asking for the same stage meanwhile waits for the lock and then reuses the result. Each arm's
manifest entry names the folder it reads; the arm that trained it carries the time it took.

Parallel stages. With `parallel: N` (or auto), distinct stages whose starting point is trained run
at once in up to N worker processes (semrl.workers) with cores // N torch threads each; a GRPO
stage waits for its cold-start SFT. A worker's stop (Ctrl-C, NaN) or failure stops the run: the
other running stages are asked to stop after their current step (with a checkpoint), no new stage
starts, and the first stop or error is raised as in a serial run (same exit codes). Ctrl-C at the
terminal reaches only the parent, which passes it on once to each worker; a worker dies with its
parent (kill -9).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from semrl import workers
from semrl.distributed import is_main_process
from semrl.experiment_config import ExperimentConfig
from semrl.files import read_json
from semrl.plugins import load_plugins
from semrl.recipes.plan import StagePlan
from semrl.run_folder import Run
from semrl.train import guard
from semrl.train.guard import Interrupted, StageStopped
from semrl.weights import weights_problem
from semrl.workers import WorkerPool, init_worker, pool_workers, threads_per_worker

console = Console(stderr=True)


def finished(run: Run, folder: str) -> dict[str, Any] | None:
    """The stage folder's metrics.json when its training finished (written last, atomically) and its
    final model is whole, else None (then the stage trains, resuming from its newest checkpoint)."""
    path = run.root / folder / "metrics.json"
    if not path.is_file() or weights_problem(run.root / folder / "final") is not None:
        return None
    return read_json(path)


@contextmanager
def stage_lock(run: Run, folder: str) -> Iterator[None]:
    """Hold `stages/.<name>.lock` for the block: one process trains a stage, others wait for it.
    Only the main process of a distributed launch locks (its ranks train the stage together)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (parallel stages then rely on the scheduler alone)
        yield
        return
    if not is_main_process():
        yield
        return
    path = run.root / folder
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def reuse(run: Run, plan: StagePlan, init: str, metrics: dict[str, Any]) -> None:
    """Mark `plan` done as a reader of a stage folder another arm (or an earlier run) trained."""
    run.mark(
        plan.key,
        replace=True,
        status="done",
        folder=plan.folder,
        reused=True,
        init=init,
        seconds=0.0,
        final_model=metrics["final_model"],
        metrics={k: v for k, v in metrics.items() if k != "final_model"},
    )


def train_once(run: Run, plan: StagePlan, init: str, train: Callable[[], Any]) -> None:
    """Train `plan`'s folder unless it is finished (then only mark the arm's entry, starting from
    `init`): the stage cache."""
    with stage_lock(run, plan.folder):
        metrics = finished(run, plan.folder)
        if metrics is None:
            if guard._INTERRUPTED.is_set():  # asked to stop while waiting for the lock
                raise Interrupted(f"{plan.key}: stopped before it started")
            train()
        elif run.status(plan.key) == "done":
            console.print(f"[dim]{plan.key}: done, skipped[/dim]")
        else:
            reuse(run, plan, init, metrics)
            console.print(f"[dim]{plan.key}: the same stage as {plan.folder}, trained once; reused[/dim]")


# ---- the stages of a run -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run trains with besides its plan; a worker gets it whole."""

    exp: ExperimentConfig
    run: Run
    base: str  # the base model's path
    train: list[dict[str, Any]]  # the training rows
    device: str
    resume: bool


RunPlan = Callable[[RunContext, StagePlan], None]  # run_plan: trains through train_once


def distinct_stages(plans: list[StagePlan]) -> dict[str, list[StagePlan]]:
    """{folder: the plans that read it}, in plan order (so a stage comes after the one it starts from)."""
    groups: dict[str, list[StagePlan]] = {}
    for plan in plans:
        groups.setdefault(plan.folder, []).append(plan)
    return groups


def max_concurrent(groups: dict[str, list[StagePlan]], pending: list[str]) -> int:
    """The most pending stages that can ever run at once: the pending forest's leaves (each stage
    starts from at most one other, so the widest antichain is the set of leaves)."""
    parents = {groups[folder][0].init_folder for folder in pending}
    return sum(1 for folder in pending if folder not in parents)


def run_stages(context: RunContext, plans: list[StagePlan], run_plan: RunPlan) -> None:
    """Every arm's stages, each distinct one trained once: in order, or in `exp.parallel` workers."""
    run = context.run
    recorded = run.manifest()["stages"]
    for plan in plans:  # the manifest lists every arm's stages in plan order, with their folders
        if plan.key not in recorded:
            run.mark(plan.key, status="pending", folder=plan.folder)
    groups = distinct_stages(plans)
    pending = [folder for folder in groups if finished(run, folder) is None]
    n_workers = pool_workers(context.exp.parallel, context.device, max_concurrent(groups, pending))
    if n_workers > 1:
        ParallelStages(context, groups, pending, n_workers, run_plan).run()
        plans = [plan for plan in plans if plan.folder not in pending or plan is not groups[plan.folder][0]]
    for plan in plans:  # serially: trains each folder once; after the workers: marks the arms that reuse one
        run_plan(context, plan)


def _train_in_worker(run_plan: RunPlan, context: RunContext, plan: StagePlan) -> None:
    """`run_plan` is passed in (by its importable name) so this module never imports the orchestrator."""
    workers.BUSY = True
    load_plugins(context.exp.plugins)  # a worker was handed the config, not the YAML that names them
    try:
        run_plan(context, plan)
    finally:
        workers.BUSY = False


class ParallelStages:
    """The pending stages in a worker pool, each started once the stage it starts from is done."""

    def __init__(
        self,
        context: RunContext,
        groups: dict[str, list[StagePlan]],
        pending: list[str],
        n_workers: int,
        run_plan: RunPlan,
    ):
        self.context, self.groups, self.run_plan = context, groups, run_plan
        self.n_workers, self.threads = n_workers, threads_per_worker(n_workers)
        console.print(
            f"parallel: {len(pending)} stages to train in {n_workers} worker processes, "
            f"{self.threads} torch thread{'s' if self.threads > 1 else ''} each"
        )
        self.waiting = list(pending)
        self.done = {folder for folder in groups if folder not in pending}
        self.errors: list[tuple[str, BaseException]] = []
        self.stopping = False
        self.user_stops = 0
        self.pool: WorkerPool | None = None  # started by run()

    def _stop(self) -> None:
        if not self.stopping and self.pool is not None:
            self.stopping = True
            self.pool.signal(signal.SIGINT)

    def _on_sigint(self, signum, frame) -> None:
        self.user_stops += 1
        if self.user_stops == 1:
            console.print(
                "\nsemrl: stopping: running stages finish this step and save a checkpoint "
                "(Ctrl-C again to stop at once)"
            )
            self._stop()  # after an error the workers were already asked once; once is graceful
        elif self.pool is not None:
            self.pool.signal(signal.SIGINT)  # a worker's second SIGINT: stop at once

    def _runnable(self) -> list[str]:
        starts = {folder: self.groups[folder][0].init_folder for folder in self.waiting}
        return [folder for folder, init in starts.items() if init is None or init in self.done]

    def run(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        self.pool = WorkerPool(self.n_workers, self.threads, init_worker)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main_thread else None
        if previous is not None:
            signal.signal(signal.SIGINT, self._on_sigint)
        running: dict[Any, str] = {}
        try:
            while True:
                for folder in self._runnable():
                    if self.stopping or len(running) >= self.n_workers:
                        break
                    self.waiting.remove(folder)
                    plan = self.groups[folder][0]
                    console.print(f"{plan.key}: training (worker)")
                    running[self.pool.submit(_train_in_worker, self.run_plan, self.context, plan)] = folder
                if not running:
                    break
                ended, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in ended:
                    folder = running.pop(future)
                    key = self.groups[folder][0].key
                    error = future.exception()
                    if error is None:
                        self.done.add(folder)
                        seconds = self.context.run.manifest()["stages"].get(key, {}).get("seconds")
                        console.print(
                            f"{key}: done"
                            + (f" in {seconds:.0f}s" if isinstance(seconds, (int, float)) else "")
                        )
                    else:
                        self.errors.append((key, error))
                        self._stop()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if running:  # an error in this loop itself: ask the workers to stop before waiting for them
                self.pool.signal(signal.SIGINT)
            self.pool.shutdown()
        self._raise()

    def _raise(self) -> None:
        if self.errors:
            for key, error in self.errors[1:]:
                if isinstance(error, StageStopped):
                    console.print(f"semrl: {key}: stopped too: {error}")
                else:
                    console.print(f"semrl: {key}: failed too: {type(error).__name__}: {error}")
            if self.user_stops >= 2 or any(isinstance(e, KeyboardInterrupt) for _, e in self.errors):
                raise KeyboardInterrupt
            key, error = self.errors[0]
            from concurrent.futures.process import BrokenProcessPool

            if isinstance(error, BrokenProcessPool):
                raise RuntimeError(
                    f"{key}: its worker process died (killed, or out of memory?); finished stages "
                    "are kept, continue with --resume (parallel=1 uses less memory)"
                ) from error
            raise error
        if self.user_stops and self.waiting:
            left = ", ".join(self.groups[f][0].key for f in self.waiting)
            raise Interrupted(f"run interrupted; stages not started: {left}")
