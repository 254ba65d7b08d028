"""Wall time and peak memory of `semrl demo`, against the budgets of the sandbox issue.

Runs the real CLI in a subprocess, once with a cold cache (a new SEMRL_CACHE folder) and once
warm (the same folder again), and prints each time and peak RSS as a ratio of its budget
(ratio <= 1.0 is within budget). Budgets on 2 CPU cores: full demo 20 min cold, 10 min warm,
3 GB peak RSS; --quick 3 min.

    python benchmarks/demo_budget.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def run(args: list[str], cache: str, out: str) -> tuple[float, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMRL_CACHE": cache}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "semrl", "demo", "--out", out, *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return seconds, peak_kb / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    extra = ["--quick"] if args.quick else []
    budgets = {"cold": 180 if args.quick else 1200, "warm": 180 if args.quick else 600}
    with tempfile.TemporaryDirectory() as tmp:
        cold_s, cold_gb = run(extra, f"{tmp}/cache", f"{tmp}/a")
        warm_s, warm_gb = run(extra, f"{tmp}/cache", f"{tmp}/b")
    mode = "--quick" if args.quick else "full"
    print(f"semrl demo ({mode}) on {os.cpu_count()} cores")
    print(f"cold cache: {cold_s:7.1f} s  ratio to budget {cold_s / budgets['cold']:.2f}  peak RSS {cold_gb:.2f} GB "
          f"(ratio {cold_gb / 3:.2f})")
    print(f"warm cache: {warm_s:7.1f} s  ratio to budget {warm_s / budgets['warm']:.2f}  peak RSS {warm_gb:.2f} GB")


if __name__ == "__main__":
    main()
