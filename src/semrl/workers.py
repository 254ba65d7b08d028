"""Worker processes for independent jobs (training stages, evaluations): how many, how many torch
threads each, and how they start so a Ctrl-C or a dying parent is handled the same way everywhere."""

from __future__ import annotations

import os
import signal

from semrl.distributed import world_size
from semrl.train import guard

# The process that imported this module. A spawned worker imports it itself; a worker forked from the
# forkserver (pool_context) inherits the module from the server, so this is its parent's pid.
_IMPORTED_IN = os.getpid()

# Imported once by the forkserver that starts the workers (pipeline/worker_stack.py).
WORKER_STACK = "semrl.pipeline.worker_stack"


def pool_context():
    """How worker processes start. From a forkserver where the platform has one: a server process
    imports the training stack once (WORKER_STACK) and each worker is a fork of it, so N workers, and
    every pool of a run, cost one import of torch, transformers, TRL and sentence-transformers instead
    of one per worker (10-15 s each on a small CPU). The server only imports, so forking it is safe
    (no threads, no CUDA). Never plain fork of the run's process, which has threads (progress
    display, tokenizers). Elsewhere (Windows) spawn."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_STACK])
    return context


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool_workers(setting: int | str, device: str, jobs: int) -> int:
    """Worker processes for `jobs` independent jobs under `parallel: setting` (auto: one per usable
    CPU core, 1 on a GPU); 1 under a distributed launch. Also used by `semrl eval`."""
    if world_size() > 1 or jobs <= 1:  # under a launcher the ranks run the same stages in lockstep
        return 1
    wanted = (1 if device == "cuda" else usable_cores()) if setting == "auto" else int(setting)
    return max(1, min(wanted, jobs))


def threads_per_worker(workers: int) -> int:
    return max(1, usable_cores() // max(1, workers))


class WorkerPool:
    """The process pool every parallel job of semrl runs in (training stages, evaluations): workers
    from pool_context, set up by `initializer(threads, parent pid, *initargs)` (init_worker or one
    that calls it), so each dies with its parent and leaves Ctrl-C to the parent."""

    def __init__(self, n_workers: int, threads: int, initializer, *initargs) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(
            n_workers,
            mp_context=pool_context(),
            initializer=initializer,
            initargs=(threads, os.getpid(), *initargs),
        )

    def submit(self, fn, *args):
        """Submit (which may start a worker) with SIGINT blocked: a new worker starts with it blocked
        until its own handler is in place, so a Ctrl-C never kills one half-started."""
        import threading

        block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
        if block:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self.executor.submit(fn, *args)
        finally:
            if block:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def signal(self, signum: int) -> None:
        """Send `signum` to every live worker process."""
        for pid in list(getattr(self.executor, "_processes", None) or {}):
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


BUSY = False  # in a worker: training a stage right now


def _worker_sigint(signum, frame) -> None:
    """In a worker outside train_guarded: note the stop (the stage then stops after its first step);
    a second one while a stage is busy stops at once, like Ctrl-C twice in a serial run."""
    if guard._INTERRUPTED.is_set() and BUSY:
        raise KeyboardInterrupt
    guard._INTERRUPTED.set()


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when its parent dies (kill -9 included), so an orphan never
    writes into a run dir that a `--resume` is using. The parent is the run's process (spawn) or the
    forkserver, which exits as soon as the run's process is gone (its pipe from the run closes)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() not in (parent, _IMPORTED_IN):  # the parent died before the line above
        os._exit(1)


def init_worker(threads: int, parent: int) -> None:
    import warnings

    try:
        os.setpgrp()  # the terminal's Ctrl-C reaches the parent only; it passes it on once
    except OSError:
        pass
    _die_with_parent(parent)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    signal.signal(signal.SIGINT, _worker_sigint)
    if hasattr(signal, "pthread_sigmask"):  # blocked by the parent while spawning us; a pending one lands now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    warnings.filterwarnings("ignore", category=FutureWarning)
    import threading

    import rich
    import torch
    from tqdm import tqdm

    # tqdm makes a multiprocessing lock for its first bar (a disabled one too, as in sentence-transformers'
    # encode); a worker ended by SIGTERM (leaving an EvalPool) never unlinks it, and Python's resource_tracker
    # then warned of leaked semaphores as the run's last line. A worker's bars need a lock within it only.
    tqdm.set_lock(threading.RLock())

    torch.set_num_threads(threads)
    rich.reconfigure(force_terminal=False)  # no live progress bars drawn over each other: one line per stage
