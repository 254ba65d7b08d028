"""How long a user waits to hear that a config is wrong, against the cost of the imports it avoids.

Three commands, each in a fresh interpreter, alternated round by round:
1. `semrl run BAD.yaml --dry-run` on a config with a bad arm name (what a typo costs);
2. `python -c "import torch"` (the floor of any command that trains);
3. `python -c "import transformers, trl, sentence_transformers"` (what `semrl run` loads to train).

Target: the bad config answered in at most half the time of `import torch` (ratio <= 0.5).

    python benchmarks/cli_startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad" / "arm_name_dot.yaml"
COMMANDS = {
    "semrl run BAD --dry-run": [sys.executable, "-m", "semrl", "run", str(BAD), "--dry-run"],
    "import torch": [sys.executable, "-c", "import torch"],
    "import the training stack": [
        sys.executable,
        "-c",
        "import transformers, trl, sentence_transformers; transformers.PreTrainedModel; trl.GRPOTrainer",
    ],
}


def timed(command: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, env=env, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):
        for name, command in COMMANDS.items():
            seconds[name].append(timed(command))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    for name, value in median.items():
        print(f"{name:28s} {value:6.2f} s (median of {rounds})")
    ratio = median["semrl run BAD --dry-run"] / median["import torch"]
    print(f"bad config / import torch: {ratio:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
