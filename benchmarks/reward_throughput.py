"""Semantic reward throughput on GRPO-shaped batches: semrl's reward vs the naive way.

Batch: 64 prompts x 8 completions (group size 8). Each group's reference is repeated 8 times,
as TRL repeats dataset columns per generation, and each group holds 2-6 distinct completions
(small policies on narrow tasks repeat themselves). Every step uses new prompts, so references
are *not* reused across steps: the speed-up comes from deduplication within a call alone.

naive: `model.encode(completions)` and `model.encode(references)` on every call, then cosine.
semrl: the `semantic` reward component (dedup + cache + batching), same encoder, same batch size.

Prints both throughputs (completions scored per second) and the ratio; checks that both give
the same similarities. Target: ratio >= 2.

    python benchmarks/reward_throughput.py [--steps 4] [--prompts 64] [--group 8]
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["farmer", "teacher", "child", "doctor", "monk", "trader", "driver", "nurse", "herder", "student"]
VERBS = ["carries", "sells", "repairs", "paints", "finds", "cleans", "brings", "counts", "buys", "moves"]
OBJECTS = ["a basket", "the door", "some bread", "a small boat", "the old bell", "two horses", "a red tent",
           "the letters", "a jar of honey", "the blue cart"]
PLACES = ["near the river", "in the market", "at the school", "on the hill", "behind the temple",
          "in the valley", "by the lake", "at the station", "in the kitchen", "under the bridge"]
TIMES = ["this morning", "every day", "after lunch", "before dawn", "on Sundays", "in winter", "at noon", "today"]


def sentence(rng: random.Random) -> str:
    return (f"The {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
            f"{rng.choice(PLACES)} {rng.choice(TIMES)}.")


def variants(reference: str, rng: random.Random) -> list[str]:
    words = reference.rstrip(".").split()
    shuffled = words[:]
    rng.shuffle(shuffled)
    return [reference, sentence(rng), " ".join(words[: len(words) // 2]), " ".join(shuffled) + ".",
            reference.replace("The", "A"), sentence(rng)]


def make_batch(rng: random.Random, prompts: int, group: int) -> tuple[list[str], list[str]]:
    completions, references = [], []
    for _ in range(prompts):
        reference = sentence(rng)
        pool = variants(reference, rng)[: rng.randint(2, 6)]
        completions += [rng.choice(pool) for _ in range(group)]
        references += [reference] * group
    return completions, references


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--encoder", default="default")
    args = parser.parse_args()

    import torch

    from semrl.encoders import cache as cache_module
    from semrl.encoders import load_encoder
    from semrl.rewards import RewardConfig, build_reward

    rng = random.Random(0)
    batches = [make_batch(rng, args.prompts, args.group) for _ in range(args.steps)]
    model = load_encoder(args.encoder, "cpu")
    model.encode(["warm up"] * 8)

    start = time.perf_counter()
    naive_scores = []
    for completions, references in batches:
        a = model.encode(completions, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
        b = model.encode(references, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
        naive_scores += (a * b).sum(dim=1).tolist()
    naive_seconds = time.perf_counter() - start

    cache_module._CACHES.clear()  # semrl starts cold, like a fresh training run
    reward = build_reward(RewardConfig.model_validate(
        {"rewards": [{"type": "semantic", "encoder": args.encoder, "tau": -1.0 + 1e-9, "device": "cpu"}]}))
    semantic = reward.components[0][0]
    start = time.perf_counter()
    semrl_scores = []
    for completions, references in batches:
        semrl_scores += semantic.similarities(completions, {"reference": references})
    semrl_seconds = time.perf_counter() - start

    n = sum(len(c) for c, _ in batches)
    max_diff = float(torch.tensor(naive_scores).sub(torch.tensor(semrl_scores)).abs().max())
    naive_rate, semrl_rate = n / naive_seconds, n / semrl_seconds
    print(f"batches: {args.steps} x ({args.prompts} prompts x {args.group} completions) = {n} completions")
    print(f"texts encoded: naive {2 * n}, semrl {semantic.cache.encoded}")
    print(f"naive : {naive_rate:8.1f} completions/s ({naive_seconds:.2f} s)")
    print(f"semrl : {semrl_rate:8.1f} completions/s ({semrl_seconds:.2f} s)")
    print(f"max |difference| in cosine: {max_diff:.2e}")
    print(f"ratio semrl/naive: {semrl_rate / naive_rate:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
