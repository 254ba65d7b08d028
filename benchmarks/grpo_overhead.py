"""What the semantic + language reward adds to a GRPO step, against a trivial reward.

Same tiny policy (built locally), same data, same batch (8 prompts x 4 generations, 24 new
tokens), same seed, one process; only the reward differs. The learning rate is 0, so both runs
generate exactly the same completions and do the same forward/backward/optimizer work: a
policy that drifted differently under each reward would change generation lengths and hide the
reward's cost in noise. The time spent inside the reward is measured too. Step times come from a callback;
the first 2 steps of each run are warm-up and dropped. Prints both mean step times and the
overhead ratio. Target: the semantic reward adds at most 25% to a step.

The reward encoder is by default a tiny encoder semrl builds (the tiny-bo-zh example's set-up:
tiny policy, tiny encoder). `--encoder default` uses the packaged all-MiniLM-L6-v2 (22M
parameters), which is ~70x the 0.3M-parameter policy: there the encoder dominates a toy step,
while next to a real 4B policy it is negligible.

    python benchmarks/grpo_overhead.py [--steps 14] [--encoder tiny|default|PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"


def trivial_reward(prompts, completions, **kwargs):
    """As cheap as a reward can be: 1 if the completion is non-empty."""
    return [1.0 if (c if isinstance(c, str) else str(c)) else 0.0 for c in completions]


class TimedReward:
    """Wraps a reward function and accumulates the seconds spent inside it."""

    def __init__(self, fn):
        self.fn, self.seconds, self.__name__ = fn, 0.0, getattr(fn, "__name__", "reward")

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def timed_run(model_dir: str, reward, steps: int, out_dir: str) -> list[float]:
    import json

    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    dataset = Dataset.from_list([{"prompt": f"{r['source']}\n", "reference": r["reference"]} for r in rows])
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    args = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=32,
        num_generations=4,
        max_completion_length=24,
        max_steps=steps,
        learning_rate=0.0,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1000,
        disable_tqdm=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model_dir, reward_funcs=[reward], args=args, train_dataset=dataset, callbacks=[StepTimer()]
    )
    from semrl.train.common import quiet

    quiet(trainer).train()
    return times[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--encoder", default="tiny", help="tiny (built here), default (MiniLM) or a folder")
    args = parser.parse_args()

    import json

    from semrl.models.tiny import build_tiny_encoder, build_tiny_lm
    from semrl.rewards import RewardConfig, build_reward

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    texts = [r["source"] for r in rows] + [r["reference"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_lm(Path(tmp) / "policy", texts))
        encoder = (
            str(build_tiny_encoder(Path(tmp) / "encoder", texts)) if args.encoder == "tiny" else args.encoder
        )
        semantic = build_reward(
            RewardConfig.model_validate(
                {
                    "rewards": [
                        {"type": "semantic", "weight": 1.5, "encoder": encoder, "device": "cpu"},
                        {"type": "language", "weight": 1.0, "lang": "zh"},
                    ]
                }
            )
        )
        timed = TimedReward(semantic)
        base = timed_run(model_dir, trivial_reward, args.steps, str(Path(tmp) / "a"))
        sem = timed_run(model_dir, timed, args.steps, str(Path(tmp) / "b"))
    base_mean, sem_mean = statistics.mean(base), statistics.mean(sem)
    print(
        f"time inside the semantic + language reward: {1000 * timed.seconds / args.steps:.1f} ms/step "
        "(incl. warm-up)"
    )
    print(
        f"encoder: {args.encoder}; steps timed: {len(base)} each (8 prompts x 4 generations, 24 new tokens)"
    )
    print(f"trivial reward : {base_mean * 1000:7.1f} ms/step")
    print(f"semantic + lang: {sem_mean * 1000:7.1f} ms/step")
    print(
        f"overhead: {100 * (sem_mean / base_mean - 1):+.1f}% (target <= +25%); ratio "
        f"{sem_mean / base_mean:.3f}"
    )


if __name__ == "__main__":
    main()
