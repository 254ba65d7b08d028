"""How `semrl run` trains an experiment's stages: each distinct stage once, independent ones in parallel.

Shared stages. Two stage plans are the same training when the trainer, the rows (first N, after N,
all), the starting point (the base model, or an earlier stage that is itself the same), the stage's
resolved settings, the task, the seed and (GRPO) the reward are equal: e.g. the cold-start SFT of
every two_stage arm and the `sft` arm on the same N. Such a stage is trained once, by its first arm
in plan order (its lead); every other arm's stage folder becomes a relative symlink to the lead's,
made only after the lead is done, and the manifest marks it done with `shared_with: <arm>/<stage>`.
A resumed run re-makes any link a kill interrupted, and a link is never a reason to call a stage done.

Parallel stages. With `parallel: N` (or auto), distinct stages whose starting point is trained run
at once in up to N worker processes (workers.pool_context) with cores // N torch threads each; a
GRPO stage waits for its cold-start SFT. A worker's stop (Ctrl-C, NaN) or failure stops the run: the
other running stages are asked to stop after their current step (with a checkpoint), no new stage
starts, and the first stop or error is raised as in a serial run (same exit codes). Ctrl-C at the
terminal reaches only the parent, which passes it on once to each worker; a worker dies with its
parent (kill -9).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from semrl import workers
from semrl.pipeline.run_dir import Run
from semrl.train.guard import Interrupted, StageStopped
from semrl.train.recipes import StagePlan
from semrl.workers import init_worker, pool_context, pool_workers, signal_pool, threads_per_worker

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

console = Console(stderr=True)


@dataclass
class Unit:
    """One distinct training: plans[0] (the lead) is trained, the others link to its folder."""

    plans: list[StagePlan]
    dep: int | None  # index of the unit this one starts from (None: the base model)

    @property
    def lead(self) -> StagePlan:
        return self.plans[0]


def stage_signatures(exp, plans: list[StagePlan]) -> dict[str, str]:
    """{arm/stage: hash of everything that determines the stage's result}."""
    by_key = {plan.key: plan for plan in plans}
    signatures: dict[str, str] = {}

    def signature(plan: StagePlan) -> str:
        if plan.key in signatures:
            return signatures[plan.key]
        arm = exp.arm(plan.arm)
        n = exp.stage_settings(arm, "sft").examples
        payload: dict[str, Any] = {
            "trainer": plan.trainer,
            "rows": plan.rows,
            "n": None if plan.rows == "all" else n,
            "init": ("base" if plan.init == "base" else signature(by_key[f"{plan.arm}/{plan.init}"])),
            "settings": exp.stage_settings(arm, plan.stage).model_dump(mode="json"),
            "task": exp.task.model_dump(mode="json"),
            "seed": exp.seed,
            # the same for every arm of one run; named so the rule does not depend on that
            "model": exp.model.model_dump(mode="json"),
            "data": exp.data.model_dump(mode="json"),
            "device": exp.device,
            "save_every": exp.eval.curve_every,
        }
        if plan.trainer == "grpo":
            payload["reward"] = exp.reward_for(arm).model_dump(mode="json")
            payload["with_reference"] = plan.with_reference
            payload["decoding"] = exp.decoding.model_dump(mode="json")
            if exp.stage_settings(arm, plan.stage).select is not None:  # selection decodes and scores as eval
                payload["select_eval"] = exp.eval.model_dump(
                    mode="json",
                    include={"encoder", "max_new_tokens", "batch_size", "lang_threshold", "resamples"},
                )
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        signatures[plan.key] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return signatures[plan.key]

    for plan in plans:
        signature(plan)
    return signatures


def plan_units(exp, plans: list[StagePlan], run: Run | None = None) -> list[Unit]:
    """The distinct stages in plan order (so each unit comes after the one it starts from)."""
    signatures = stage_signatures(exp, plans)
    units: list[Unit] = []
    index: dict[str, int] = {}
    for plan in plans:
        sig = signatures[plan.key]
        if sig in index:
            units[index[sig]].plans.append(plan)
            continue
        dep = None if plan.init == "base" else index[signatures[f"{plan.arm}/{plan.init}"]]
        index[sig] = len(units)
        units.append(Unit([plan], dep))
    if run is not None:  # a resumed run that trained a member on its own (older semrl): keep that one as lead
        stages = run.manifest()["stages"]
        for unit in units:
            trained = [plan for plan in unit.plans if is_trained(run, stages, plan)]
            if trained and trained[0] is not unit.lead:
                unit.plans.remove(trained[0])
                unit.plans.insert(0, trained[0])
    return units


def is_trained(run: Run, stages: dict[str, Any], plan: StagePlan) -> bool:
    """Done, trained in its own folder (not a link to another arm's)."""
    entry = stages.get(plan.key, {})
    return (
        entry.get("status") == "done"
        and not entry.get("shared_with")
        and not run.stage_dir(plan.arm, plan.stage).is_symlink()
    )


def is_linked(run: Run, stages: dict[str, Any], plan: StagePlan, lead: StagePlan) -> bool:
    """Done as a link to `lead`, the lead itself done and the link in place."""
    entry = stages.get(plan.key, {})
    folder = run.stage_dir(plan.arm, plan.stage)
    return (
        entry.get("status") == "done"
        and entry.get("shared_with") == lead.key
        and folder.is_symlink()
        and folder.resolve() == run.stage_dir(lead.arm, lead.stage).resolve()
        and is_trained(run, stages, lead)
    )


def prepare_lead_dir(run: Run, plan: StagePlan) -> None:
    """A lead trains in a real folder: drop a link left there by an earlier run."""
    folder = run.stage_dir(plan.arm, plan.stage)
    if folder.is_symlink():
        folder.unlink()


def link_stage(run: Run, plan: StagePlan, lead: StagePlan) -> None:
    """Make `plan`'s folder a relative symlink to the (done) lead's and mark it done, shared."""
    folder = run.stage_dir(plan.arm, plan.stage)
    target = run.stage_dir(lead.arm, lead.stage)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.is_symlink() or folder.is_file():
        pass  # replaced atomically below
    elif folder.is_dir():
        shutil.rmtree(
            folder
        )  # a partial training of this same stage (older semrl): the lead's result replaces it
    tmp = folder.with_name(f".{folder.name}.link.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(target, folder.parent), tmp, target_is_directory=True)
    os.replace(tmp, folder)
    lead_entry = run.manifest()["stages"].get(lead.key, {})
    init = "base" if plan.init == "base" else str(run.stage_dir(plan.arm, plan.init) / "final")
    run.mark(
        plan.key,
        replace=True,
        status="done",
        shared_with=lead.key,
        init=init,
        started=lead_entry.get("started"),
        seconds=0.0,
        final_model=str(folder / "final"),
        metrics=lead_entry.get("metrics", {}),
    )


def link_members(run: Run, unit: Unit) -> None:
    stages = run.manifest()["stages"]
    for plan in unit.plans[1:]:
        if is_trained(run, stages, plan):
            console.print(f"[dim]{plan.key}: done, skipped[/dim]")
        elif is_linked(run, stages, plan, unit.lead):
            console.print(f"[dim]{plan.key}: done (shared with {unit.lead.key}), skipped[/dim]")
        else:
            link_stage(run, plan, unit.lead)
            console.print(f"[dim]{plan.key}: the same stage as {unit.lead.key}; shared, not retrained[/dim]")


# ---- how many workers ----------------------------------------------------------------------------


def max_concurrent(units: list[Unit], pending: list[int]) -> int:
    """The most pending units that can ever run at once: the pending forest's leaves (each unit
    starts from at most one other, so the widest antichain is the set of leaves)."""
    pending_set = set(pending)
    parents = {units[i].dep for i in pending if units[i].dep in pending_set}
    return sum(1 for i in pending if i not in parents)


def resolve_workers(setting: int | str, device: str, units: list[Unit], pending: list[int]) -> int:
    if not pending:
        return 1
    return pool_workers(setting, device, max_concurrent(units, pending))


# ---- running -------------------------------------------------------------------------------------


def run_stages(
    exp,
    run: Run,
    plans: list[StagePlan],
    base: str,
    train: list[dict[str, Any]],
    device: str,
    resume: bool,
    run_plan,
) -> None:
    """Train every distinct stage not yet done (serially, or in `exp.parallel` workers), linking the
    shared ones; `run_plan(exp, run, plan, base, train, device, resume)` trains one stage."""
    units = plan_units(exp, plans, run)
    stages = run.manifest()["stages"]
    pending = []
    for i, unit in enumerate(units):
        if is_trained(run, stages, unit.lead):
            console.print(f"[dim]{unit.lead.key}: done, skipped[/dim]")
            link_members(run, unit)  # also re-makes a link a kill interrupted
        else:
            pending.append(i)
    workers = resolve_workers(exp.parallel, device, units, pending)
    if workers <= 1:
        for i in pending:
            prepare_lead_dir(run, units[i].lead)
            run_plan(exp, run, units[i].lead, base, train, device, resume)
            link_members(run, units[i])
        return
    threads = threads_per_worker(workers)
    console.print(
        f"parallel: {len(pending)} stages to train in {workers} worker processes, "
        f"{threads} torch thread{'s' if threads > 1 else ''} each"
    )
    ParallelStages(exp, run, units, pending, base, train, device, resume, workers, threads, run_plan).run()


def _train_in_worker(
    run_plan,
    exp,
    root: str,
    plan: StagePlan,
    base: str,
    train: list[dict[str, Any]],
    device: str,
    resume: bool,
) -> dict[str, Any]:
    """`run_plan` is passed in (by its importable name) so this module never imports the orchestrator."""
    workers.BUSY = True
    try:
        return run_plan(exp, Run(Path(root)), plan, base, train, device, resume)
    finally:
        workers.BUSY = False


class ParallelStages:
    def __init__(
        self,
        exp,
        run: Run,
        units: list[Unit],
        pending: list[int],
        base: str,
        train: list[dict[str, Any]],
        device: str,
        resume: bool,
        workers: int,
        threads: int,
        run_plan,
    ):
        self.exp, self.run_dir, self.units, self.run_plan = exp, run, units, run_plan
        self.base, self.train, self.device, self.resume = base, train, device, resume
        self.workers, self.threads = workers, threads
        self.waiting = list(pending)
        self.done = {i for i in range(len(units)) if i not in pending}
        self.errors: list[tuple[str, BaseException]] = []
        self.stopping = False
        self.user_stops = 0
        self.pool: ProcessPoolExecutor | None = None  # started by run()

    def _signal_workers(self) -> None:
        signal_pool(self.pool, signal.SIGINT)

    def _stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self._signal_workers()

    def _on_sigint(self, signum, frame) -> None:
        self.user_stops += 1
        if self.user_stops == 1:
            console.print(
                "\nsemrl: stopping: running stages finish this step and save a checkpoint "
                "(Ctrl-C again to stop at once)"
            )
            self._stop()  # after an error the workers were already asked once; once is graceful
        else:
            self._signal_workers()  # a worker's second SIGINT: stop at once

    def _submit(self, lead: StagePlan):
        """Submit (which may spawn a worker) with SIGINT blocked: a new worker starts with it blocked
        until its handler is in place, so a Ctrl-C never kills one half-started."""
        block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
        if block:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            if self.pool is None:
                raise RuntimeError("the scheduler submits stages only while run() holds its pool")
            return self.pool.submit(
                _train_in_worker,
                self.run_plan,
                self.exp,
                str(self.run_dir.root),
                lead,
                self.base,
                self.train,
                self.device,
                self.resume,
            )
        finally:
            if block:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def _runnable(self) -> list[int]:
        return [i for i in self.waiting if self.units[i].dep is None or self.units[i].dep in self.done]

    def run(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=pool_context(),
            initializer=init_worker,
            initargs=(self.threads, os.getpid()),
        )
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main_thread else None
        if previous is not None:
            signal.signal(signal.SIGINT, self._on_sigint)
        running: dict[Any, int] = {}
        try:
            while True:
                for i in self._runnable():
                    if self.stopping or len(running) >= self.workers:
                        break
                    self.waiting.remove(i)
                    lead = self.units[i].lead
                    prepare_lead_dir(self.run_dir, lead)
                    console.print(f"{lead.key}: training (worker)")
                    future = self._submit(lead)
                    running[future] = i
                if not running:
                    break
                finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = running.pop(future)
                    key = self.units[i].lead.key
                    error = future.exception()
                    if error is None:
                        self.done.add(i)
                        seconds = self.run_dir.manifest()["stages"].get(key, {}).get("seconds")
                        console.print(
                            f"{key}: done"
                            + (f" in {seconds:.0f}s" if isinstance(seconds, (int, float)) else "")
                        )
                        link_members(self.run_dir, self.units[i])
                    else:
                        self.errors.append((key, error))
                        self._stop()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if running:  # an error in this loop itself: ask the workers to stop before waiting for them
                self._signal_workers()
            self.pool.shutdown(wait=True, cancel_futures=True)
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
            left = ", ".join(self.units[i].lead.key for i in self.waiting)
            raise Interrupted(f"run interrupted; stages not started: {left}")
