"""What starting a run's worker pools costs: forkserver (semrl's pools now) against spawn (before).

A run with `parallel: 2` opens a pool of two workers to train its independent stages and another
to evaluate its arms (the demo opens several). Each worker must have the training stack imported
before its first job. Under spawn every worker imported it itself; under the forkserver
(`semrl.workers.pool_context`) one server process imports it once per run and every worker is a
fork of it. This script opens POOLS pools of WORKERS workers one after the other, as a run does,
with semrl's own initializer, and times until each worker has run a job that needs the stack
(importing `semrl.pipeline.worker_stack`, which is free once it is loaded). Each start method runs
in its own fresh interpreter, alternated round by round.

Target: the forkserver at most half the time of spawn for a run's two pools (ratio <= 0.5).

    python benchmarks/worker_pools.py [--rounds 3] [--pools 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def ready(_: int) -> int:
    """A worker's first job: what it needs before any real one (free once the stack is loaded)."""
    import semrl.pipeline.worker_stack  # noqa: F401

    return os.getpid()


def child(method: str, pools: int, workers: int) -> None:
    """In a fresh interpreter: open the pools one after the other, as a run does, and print the time."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from semrl.workers import init_worker, pool_context

    context = pool_context() if method == "forkserver" else multiprocessing.get_context("spawn")
    start = time.perf_counter()
    for _ in range(pools):
        init = {"initializer": init_worker, "initargs": (1, os.getpid())}
        with ProcessPoolExecutor(workers, mp_context=context, **init) as pool:
            list(pool.map(ready, range(workers)))
    print(time.perf_counter() - start)


def timed(method: str, pools: int, workers: int) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, __file__, "--child", method, "--pools", str(pools), "--workers", str(workers)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pools", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", choices=["spawn", "forkserver"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pools, args.workers)
        return
    seconds: dict[str, list[float]] = {"spawn": [], "forkserver": []}
    for _ in range(args.rounds):
        for method in seconds:
            seconds[method].append(timed(method, args.pools, args.workers))
    median = {method: statistics.median(values) for method, values in seconds.items()}
    for method, value in median.items():
        shape = f"{args.pools} pools of {args.workers} workers"
        print(f"{method:10s} {value:6.2f} s for {shape} (median of {args.rounds})")
    print(f"forkserver / spawn: {median['forkserver'] / median['spawn']:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
