"""Wall time and peak memory of `semrl demo`, against the budgets of the sandbox issue.

Runs the real CLI in a subprocess, once with a cold cache (a new SEMRL_CACHE folder) and once
warm (the same folder again), and prints each time and the peak resident memory of the whole
process tree (the demo trains arms in parallel worker processes, so the sum over processes is what
a user's machine must hold) as a ratio of its budget (ratio <= 1.0 is within budget).

Budgets on 2 CPU cores (issue 20, with both rewards and the dev split): full demo 18 min cold,
10 min with base and encoder cached, 3 GB peak; --quick 2 min; --seeds 3: 55 min.

    python benchmarks/demo_budget.py [--quick] [--seeds N] [--cold-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

import psutil


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(args: list[str], cache: str, out: str) -> tuple[float, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMRL_CACHE": cache}
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "semrl", "demo", "--out", out, *args], env=env, stdout=subprocess.DEVNULL
    )
    peak = 0
    watched = psutil.Process(child.pid)

    def sample() -> None:
        nonlocal peak
        while child.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    if child.wait() != 0:
        raise SystemExit(f"semrl demo failed with exit code {child.returncode}")
    thread.join()
    return time.perf_counter() - start, peak / 1024**3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--cold-only", action="store_true")
    args = parser.parse_args()
    extra = (["--quick"] if args.quick else []) + (["--seeds", str(args.seeds)] if args.seeds > 1 else [])
    if args.seeds > 1:
        budgets = {"cold": 55 * 60 * args.seeds / 3, "warm": 55 * 60 * args.seeds / 3}
    else:
        budgets = {"cold": 120 if args.quick else 18 * 60, "warm": 120 if args.quick else 10 * 60}
    with tempfile.TemporaryDirectory() as tmp:
        cold_s, cold_gb = run(extra, f"{tmp}/cache", f"{tmp}/a")
        warm = None if args.cold_only else run(extra, f"{tmp}/cache", f"{tmp}/b")
    mode = ("--quick " if args.quick else "full ") + (f"--seeds {args.seeds}" if args.seeds > 1 else "")
    print(f"semrl demo ({mode.strip()}) on {os.cpu_count()} cores")
    print(
        f"cold cache: {cold_s:7.1f} s  ratio to budget {cold_s / budgets['cold']:.2f}  peak RSS "
        f"{cold_gb:.2f} GB "
        f"(ratio to 3 GB {cold_gb / 3:.2f})"
    )
    if warm is not None:
        print(
            f"warm cache: {warm[0]:7.1f} s  ratio to budget {warm[0] / budgets['warm']:.2f}  peak RSS "
            f"{warm[1]:.2f} GB"
        )


if __name__ == "__main__":
    main()
