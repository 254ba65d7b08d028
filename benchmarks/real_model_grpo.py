"""semrl's GRPO stage against a plain TRL script, on a real pretrained model (SmolLM2-135M-Instruct).

Arm "semrl": `semrl.train.grpo.run_grpo`, the function the CLI calls for a GRPO stage, with the
semantic reward (packaged all-MiniLM-L6-v2 against the reference, weight 1.0) and the language
reward (en, weight 0.5). Arm "plain": what a user writes without semrl, as in the public
semantic-reward recipe: a GRPOTrainer whose reward function runs `SentenceTransformer.encode` on
the completions and on the references every step and takes the cosine, plus a hand-written
Latin-script reward. Both: the en-headline data as the same chat prompts, 2 prompts x 4 generations
per step, 16 new tokens, temperature 0.8, top_p 0.9, LoRA r 8 / alpha 16 / dropout 0 on all linear
layers, learning rate 1e-4 (constant), beta 0, loss dapo, fp32 on CPU, no activation checkpointing
(semrl turns it off on CPU; TRL's default would make the plain arm ~3.7x slower), seed 0.

Per step: the step time (a callback) and its shares spent generating (TRL's `_generate`: prompt
tokenisation, `model.generate`, decoding), inside the reward functions (TimedReward) and in the
rest (old log-probs, loss, backward, optimizer: "update"). Both arms are timed by one function
applied to the trainer just before `train()`; for semrl's arm it is reached by wrapping
`semrl.train.grpo.train_guarded` in its process (run_grpo takes no callbacks). Each arm runs in
its own process (neither inherits the other's encoder, caches or allocator state), and the two
run in lockstep: step k of one arm, then step k of the other (the order alternating), the other
waiting, so a burst of other work on a shared machine falls on both arms rather than on one. Both
see the same prompts and, with the same seed, sample the same completions. The first 2 steps are
warm-up and dropped. Goal: semrl's step at most 1.0x the plain one.

    python benchmarks/real_model_grpo.py [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grpo_overhead import TimedReward  # beside this script: `python benchmarks/real_model_grpo.py`

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "configs" / "examples" / "data" / "en-headline.jsonl"
TEMPLATE = "Write a short headline for this news article.\n{source}"  # as in smollm2-en-headline.yaml
SEED, LR, PROMPTS, GENERATIONS, NEW_TOKENS, WARMUP = 0, 1e-4, 2, 4, 16, 2
ARMS = ("semrl", "plain")


def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


class Meter:
    """Times one trainer's steps, its generation calls and its reward functions; before each step
    it says READY and waits for a line on stdin (the lockstep), after it says DONE."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, ...]] = []  # seconds: (step, generation, reward, process CPU)
        self.completions = 0
        self.history: list[dict] = []

    def run(self, trainer, train):
        from transformers import TrainerCallback

        rewards = trainer.reward_funcs = [TimedReward(fn) for fn in trainer.reward_funcs]
        generate = trainer._generate

        def count_and_generate(prompts):
            self.completions += len(prompts)
            return generate(prompts)

        generation = trainer._generate = TimedReward(count_and_generate)  # any callable: seconds inside it
        steps = self.steps

        def now() -> tuple[float, ...]:
            return (
                time.perf_counter(),
                generation.seconds,
                sum(r.seconds for r in rewards),
                time.process_time(),
            )

        class StepTimer(TrainerCallback):
            def on_step_begin(self, *_, **__):
                print("READY", flush=True)
                sys.stdin.readline()
                self.begin = now()

            def on_step_end(self, *_, **__):
                steps.append(tuple(b - a for a, b in zip(self.begin, now(), strict=True)))
                print("DONE", flush=True)

        trainer.add_callback(StepTimer())
        try:
            return train()
        finally:
            self.history = trainer.state.log_history

    def result(self) -> dict:
        timed = self.steps[WARMUP:]
        step, gen, rew, cpu = (sum(column) for column in zip(*timed, strict=True))
        lengths = [log["completions/mean_length"] for log in self.history if "completions/mean_length" in log]
        per_step = self.completions / len(self.steps)
        mean_length = statistics.mean(lengths[WARMUP:])
        return {
            "step_ms": 1000 * step / len(timed),
            "cpu_ms": 1000 * cpu / len(timed),
            "generation": gen / step,
            "reward": rew / step,
            "update": (step - gen - rew) / step,
            "completions": per_step,
            "mean_length": mean_length,
            "ms_per_token": 1000 * step / len(timed) / (per_step * mean_length),
            "lengths": lengths,
            "step_s": [s[0] for s in self.steps],
        }


def semrl_arm(model_dir: str, out_dir: Path, steps: int) -> dict:
    from semrl.data.tasks import build_task_examples
    from semrl.experiment_config import GRPOSpec, LoraSpec, TaskSpec
    from semrl.models.loading import load_tokenizer
    from semrl.pipeline.experiment import fresh_stage_state
    from semrl.rewards import RewardConfig
    from semrl.train import grpo
    from semrl.train.settings import StageSettings

    reward_config = RewardConfig.model_validate(
        {
            "rewards": [
                {"type": "semantic", "weight": 1.0, "encoder": "default", "against": "reference"},
                {"type": "language", "weight": 0.5, "lang": "en", "threshold": 0.95},
            ]
        }
    )
    examples = build_task_examples(
        TaskSpec(type="headline", source_lang="en", template=TEMPLATE), load_tokenizer(model_dir)
    )
    records = [examples.grpo_record(r, reward_config.columns) for r in rows()]  # as the CLI's run_plan
    spec = GRPOSpec(
        max_steps=steps,
        learning_rate=LR,
        num_generations=GENERATIONS,
        prompts_per_step=PROMPTS,
        max_completion_length=NEW_TOKENS,
        save_steps=steps + 1,
        logging_steps=1,
    )
    settings = StageSettings(seed=SEED, lora=LoraSpec(r=8, alpha=16, dropout=0.0), temperature=0.8, top_p=0.9)
    meter, train_guarded = Meter(), grpo.train_guarded
    grpo.train_guarded = lambda trainer, *a, **k: meter.run(trainer, lambda: train_guarded(trainer, *a, **k))
    fresh_stage_state(SEED)  # what the CLI does before every stage
    grpo.run_grpo(settings, spec, reward_config, model_dir, records, out_dir, "cpu")
    return meter.result()


def plain_arm(model_dir: str, out_dir: Path, steps: int) -> dict:
    """Reuses nothing from semrl but the path of the packaged MiniLM."""
    import unicodedata

    from datasets import Dataset
    from peft import LoraConfig
    from sentence_transformers import SentenceTransformer, util
    from transformers import set_seed
    from trl import GRPOConfig, GRPOTrainer

    from semrl.encoders.loading import default_encoder_path

    encoder = SentenceTransformer(default_encoder_path())

    def text(completion):
        return completion[0]["content"] if isinstance(completion, list) else completion

    def semantic(completions, reference, **kwargs):
        a = encoder.encode([text(c) for c in completions], convert_to_tensor=True)
        b = encoder.encode(reference, convert_to_tensor=True)
        return util.pairwise_cos_sim(a, b).tolist()

    def english(completions, **kwargs):
        scores = []
        for completion in completions:
            letters = [ch for ch in text(completion) if ch.isalpha()]
            latin = sum(unicodedata.name(ch, "").startswith("LATIN") for ch in letters)
            scores.append(1.0 if letters and latin / len(letters) >= 0.95 else 0.0)
        return scores

    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": TEMPLATE.format(source=r["source"])}],
                "reference": r["reference"],
            }
            for r in rows()
        ]
    )
    config = GRPOConfig(
        output_dir=str(out_dir),
        per_device_train_batch_size=PROMPTS * GENERATIONS,
        num_generations=GENERATIONS,
        max_completion_length=NEW_TOKENS,
        temperature=0.8,
        top_p=0.9,
        learning_rate=LR,
        lr_scheduler_type="constant",
        beta=0.0,
        loss_type="dapo",
        reward_weights=[1.0, 0.5],
        max_steps=steps,
        seed=SEED,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
    )
    set_seed(SEED)  # the LoRA weights are drawn before the Trainer seeds
    trainer = GRPOTrainer(
        model=model_dir,
        reward_funcs=[semantic, english],
        args=config,
        train_dataset=dataset,
        peft_config=LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    meter = Meter()
    meter.run(trainer, trainer.train)
    return meter.result()


def lockstep(procs: dict[str, subprocess.Popen], steps: int) -> dict[str, dict]:
    def read_until(arm: str, word: str) -> str:
        for line in procs[arm].stdout:
            if word in line:  # a progress bar may have written on the same line before it
                return line[line.index(word) :]
        raise RuntimeError(f"{arm} exited before {word}")

    for arm in procs:  # both loaded and at their first step before either starts
        read_until(arm, "READY")
    for k in range(steps):
        for arm in ARMS if k % 2 == 0 else ARMS[::-1]:
            if k:
                read_until(arm, "READY")
            procs[arm].stdin.write("go\n")
            procs[arm].stdin.flush()
            read_until(arm, "DONE")
    return {arm: json.loads(read_until(arm, "RESULT ")[len("RESULT ") :]) for arm in procs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # internal: one arm in this process
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm = semrl_arm if args.arm == "semrl" else plain_arm
        print("RESULT " + json.dumps(arm(args.model, Path(args.tmp), args.steps)), flush=True)
        return 0

    from semrl.models.gguf import missing_real_model, smollm2_folder

    if problem := missing_real_model():
        print(f"skip: {problem}")
        return 0
    model_dir = str(smollm2_folder())
    with tempfile.TemporaryDirectory() as tmp:
        logs = {arm: open(Path(tmp) / f"{arm}.stderr", "w+", encoding="utf-8") for arm in ARMS}
        procs = {
            arm: subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--arm",
                    arm,
                    "--model",
                    model_dir,
                    "--tmp",
                    str(Path(tmp) / arm),
                    f"--steps={args.steps}",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[arm],
                text=True,
            )
            for arm in ARMS
        }
        try:
            results = lockstep(procs, args.steps)
        except RuntimeError as exc:
            for arm, proc in procs.items():
                proc.kill()
                logs[arm].seek(0)
                print(f"{arm}: exit {proc.wait()}: {logs[arm].read().strip().splitlines()[-5:]}")
            print(f"failed: {exc}")
            return 1
        for proc in procs.values():
            proc.wait()
    print(
        f"SmolLM2-135M-Instruct, LoRA r 8, CPU fp32; {PROMPTS} prompts x {GENERATIONS} generations x "
        f"{NEW_TOKENS} new tokens; {args.steps - WARMUP} of {args.steps} steps timed (first {WARMUP} dropped)"
    )
    print(
        f"{'arm':6} {'ms/step':>9} {'CPU ms/step':>12} {'generation':>11} {'reward':>7} {'update':>7} "
        f"{'compl/step':>11} {'mean len':>9} {'ms/token':>9}"
    )
    for arm, r in results.items():
        print(
            f"{arm:6} {r['step_ms']:9.1f} {r['cpu_ms']:12.1f} {100 * r['generation']:10.1f}% "
            f"{100 * r['reward']:6.1f}% {100 * r['update']:6.1f}% {r['completions']:11.0f} "
            f"{r['mean_length']:9.2f} {r['ms_per_token']:9.2f}"
        )
    for arm, r in results.items():
        print(
            f"{arm}: step s {[round(x, 1) for x in r['step_s']]}, mean length "
            f"{[round(x, 2) for x in r['lengths']]}"
        )
    semrl, plain = results["semrl"], results["plain"]
    paired = statistics.median(
        a / b for a, b in zip(semrl["step_s"][WARMUP:], plain["step_s"][WARMUP:], strict=True)
    )
    print(
        f"semrl / plain: {semrl['step_ms'] / plain['step_ms']:.3f}x per step (goal <= 1.0x), "
        f"{semrl['ms_per_token'] / plain['ms_per_token']:.3f}x per generated token, "
        f"{semrl['cpu_ms'] / plain['cpu_ms']:.3f}x in CPU time, median of the per-step ratios {paired:.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
