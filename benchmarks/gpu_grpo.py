"""GRPO on one CUDA GPU: step time, generated tokens/s and the semantic reward's share of the step,
generating with the policy (`model.generate`) vs vLLM colocated on the same GPU.

The policy is a small random Qwen2 (grouped-query attention, SwiGLU, RMSNorm, rotary; ~24M
parameters, bf16) with a byte-level BPE tokenizer trained here on the tiny-bo-zh data: the
architecture vLLM and the trainer see is a real one, nothing is downloaded. Random weights rarely
emit EOS, so every completion runs to `--new-tokens` in both arms and the arms generate the same
number of tokens. Learning rate 0 (the step does the full forward, backward and optimizer work, the
policy does not drift). Reward: semrl's semantic reward (packaged MiniLM on the same GPU) +
language. Each arm runs in its own process (vLLM colocate sets up a process group); the first 2
steps are warm-up and dropped.

`--real-model` uses SmolLM2-135M-Instruct instead (semrl.models.gguf.smollm2_folder(); fp32 weights
as converted, the trainer with bf16: true) on the en-headline data as chat prompts, with the language
reward for English, as benchmarks/real_model_grpo.py does on CPU. A real model stops at EOS, so the
arms may generate different numbers of tokens: compare tokens/s, not only ms/step.

Without CUDA, or without vLLM for the vLLM arm, it prints why and exits 0.

    python benchmarks/gpu_grpo.py [--steps 12] [--prompts 8] [--generations 8] [--new-tokens 128] \\
        [--real-model]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grpo_overhead import TimedReward  # beside this script: `python benchmarks/gpu_grpo.py`

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
REAL_DATA = ROOT / "configs" / "examples" / "data" / "en-headline.jsonl"
REAL_TEMPLATE = "Write a short headline for this news article.\n{source}"  # as in smollm2-en-headline.yaml
ARMS = ("generate", "vllm")


def rows(real_model: bool = False) -> list[dict[str, str]]:
    data = REAL_DATA if real_model else DATA
    return [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]


def prompt(row: dict[str, str], real_model: bool):
    if real_model:  # chat messages: TRL applies SmolLM2's ChatML template
        return [{"role": "user", "content": REAL_TEMPLATE.format(source=row["source"])}]
    return f"{row['source']}\n"


def build_policy(out: Path) -> str:
    """A random Qwen2 small enough to build in seconds, shaped like the real family."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from semrl.models.tiny import train_tokenizer

    torch.manual_seed(0)
    tokenizer = train_tokenizer([r["source"] for r in rows()] + [r["reference"] for r in rows()], 2048)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def run_arm(arm: str, model_dir: str, args: argparse.Namespace) -> dict[str, float]:
    """One GRPO run; per-step times and completion lengths from the trainer's log."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from semrl.rewards import RewardConfig, build_reward

    if arm == "vllm":  # colocate in one process: TRL expects the torch.distributed variables
        for key, value in {
            "RANK": "0",
            "LOCAL_RANK": "0",
            "WORLD_SIZE": "1",
            "MASTER_ADDR": "localhost",
            "MASTER_PORT": "29533",
        }.items():
            os.environ.setdefault(key, value)
    reward = TimedReward(
        build_reward(
            RewardConfig.model_validate(
                {
                    "rewards": [
                        {"type": "semantic", "weight": 1.5, "encoder": "default", "device": "cuda"},
                        {"type": "language", "weight": 1.0, "lang": "en" if args.real_model else "zh"},
                    ]
                }
            )
        )
    )
    dataset = Dataset.from_list(
        [{"prompt": prompt(r, args.real_model), "reference": r["reference"]} for r in rows(args.real_model)]
    )
    times: list[float] = []
    reward_at_step: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            torch.cuda.synchronize()
            self.start, self.reward = time.perf_counter(), reward.seconds

        def on_step_end(self, *_, **__):
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)
            reward_at_step.append(reward.seconds - self.reward)

    config = GRPOConfig(
        output_dir=args.tmp,
        per_device_train_batch_size=args.prompts * args.generations,
        num_generations=args.generations,
        max_completion_length=args.new_tokens,
        max_steps=args.steps,
        learning_rate=0.0,
        bf16=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
        use_vllm=arm == "vllm",
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.3,
    )
    trainer = GRPOTrainer(
        model=model_dir, reward_funcs=[reward], args=config, train_dataset=dataset, callbacks=[StepTimer()]
    )
    trainer.train()
    lengths = [
        log["completions/mean_length"]
        for log in trainer.state.log_history
        if "completions/mean_length" in log
    ]
    timed = slice(2, None)
    seconds = sum(times[timed])
    tokens = sum(lengths[timed]) * args.prompts * args.generations
    return {
        "step_ms": 1000 * seconds / len(times[timed]),
        "tokens_per_s": tokens / seconds,
        "reward_share": sum(reward_at_step[timed]) / seconds,
        "steps": len(times[timed]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument(
        "--real-model", action="store_true", help="SmolLM2-135M-Instruct instead of a random Qwen2"
    )
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # internal: one arm in this process
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("skip: no CUDA device (torch.cuda.is_available() is False); this benchmark measures GPU GRPO")
        return 0
    if args.arm:
        print("RESULT " + json.dumps(run_arm(args.arm, args.model, args)))
        return 0
    arms = list(ARMS)
    if importlib.util.find_spec("vllm") is None:
        print("skip vllm arm: vLLM is not installed (pip install -e .[vllm])")
        arms.remove("vllm")
    if args.real_model:
        from semrl.models.gguf import missing_real_model, smollm2_folder

        if problem := missing_real_model():
            print(f"skip: {problem}")
            return 0
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(smollm2_folder()) if args.real_model else build_policy(Path(tmp) / "policy")
        for arm in arms:
            command = [
                sys.executable,
                __file__,
                "--arm",
                arm,
                "--model",
                model_dir,
                "--tmp",
                str(Path(tmp) / arm),
                *(
                    f"--{k.replace('_', '-')}={v}"
                    for k, v in vars(args).items()
                    if k in ("steps", "prompts", "generations", "new_tokens")
                ),
                *(["--real-model"] if args.real_model else []),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"{arm}: failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
                continue
            results[arm] = json.loads(lines[-1][len("RESULT ") :])
    policy = (
        "SmolLM2-135M-Instruct (fp32 weights, bf16: true)" if args.real_model else "random Qwen2 ~24M bf16"
    )
    print(
        f"{torch.cuda.get_device_name(0)}; {policy}; {args.prompts} prompts x {args.generations} "
        f"generations x {args.new_tokens} new tokens; {args.steps - 2} steps timed"
    )
    print(f"{'arm':9} {'ms/step':>9} {'tokens/s':>10} {'reward share':>13}")
    for arm, r in results.items():
        print(f"{arm:9} {r['step_ms']:9.1f} {r['tokens_per_s']:10.0f} {100 * r['reward_share']:12.1f}%")
    if len(results) == 2:
        print(
            f"vLLM colocate speed-up: {results['generate']['step_ms'] / results['vllm']['step_ms']:.2f}x "
            "per step"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
