"""Semantic reward throughput on GRPO-shaped batches: semrl's reward vs the naive way.

Batch: 64 prompts x 8 completions (group size 8). Each group's reference is repeated 8 times,
as TRL repeats dataset columns per generation, and each group holds 2-6 distinct completions
(small policies on narrow tasks repeat themselves). Every step uses new prompts, so references
are *not* reused across steps: the speed-up comes from deduplication within a call alone.

naive: `model.encode(completions)` and `model.encode(references)` on every call, then cosine.
semrl: the `semantic` reward component (dedup + cache + batching), same encoder, same batch size.

Prints both throughputs (completions scored per second) and the ratio; checks that both give
the same similarities. Target: ratio >= 2.

contrast: the per-call cost of the hubness-corrected reward (`contrast: {bank: 512, k: 10}`, csls)
and of the retrieval mode (`contrast: {bank: 512, mode: retrieval}`) against the plain one, each
the full component call (scoring + monitors), rotated call by call on the same batches so all
three see the same machine load; each bank is drawn and embedded once from 2,000 training rows
before timing (as a stage does at its start). Target: at most 1.15x each.

    python benchmarks/reward_throughput.py [--steps 4] [--prompts 64] [--group 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["farmer", "teacher", "child", "doctor", "monk", "trader", "driver", "nurse", "herder", "student"]
VERBS = ["carries", "sells", "repairs", "paints", "finds", "cleans", "brings", "counts", "buys", "moves"]
OBJECTS = [
    "a basket",
    "the door",
    "some bread",
    "a small boat",
    "the old bell",
    "two horses",
    "a red tent",
    "the letters",
    "a jar of honey",
    "the blue cart",
]
PLACES = [
    "near the river",
    "in the market",
    "at the school",
    "on the hill",
    "behind the temple",
    "in the valley",
    "by the lake",
    "at the station",
    "in the kitchen",
    "under the bridge",
]
TIMES = [
    "this morning",
    "every day",
    "after lunch",
    "before dawn",
    "on Sundays",
    "in winter",
    "at noon",
    "today",
]


def sentence(rng: random.Random) -> str:
    return (
        f"The {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
        f"{rng.choice(PLACES)} {rng.choice(TIMES)}."
    )


def variants(reference: str, rng: random.Random) -> list[str]:
    words = reference.rstrip(".").split()
    shuffled = words[:]
    rng.shuffle(shuffled)
    return [
        reference,
        sentence(rng),
        " ".join(words[: len(words) // 2]),
        " ".join(shuffled) + ".",
        reference.replace("The", "A"),
        sentence(rng),
    ]


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
    parser.add_argument(
        "--repeats", type=int, default=3, help="passes over the batches for the contrast timing"
    )
    parser.add_argument("--bank", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    import torch

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

    reward = build_reward(
        RewardConfig.model_validate(
            {"rewards": [{"type": "semantic", "encoder": args.encoder, "tau": -1.0 + 1e-9, "device": "cpu"}]}
        )
    )
    semantic = reward.components[0][0]
    start = time.perf_counter()
    semrl_scores = []
    for completions, references in batches:
        semrl_scores += semantic.adequacy(completions, {"reference": references})
    semrl_seconds = time.perf_counter() - start

    n = sum(len(c) for c, _ in batches)
    max_diff = float(torch.tensor(naive_scores).sub(torch.tensor(semrl_scores)).abs().max())
    naive_rate, semrl_rate = n / naive_seconds, n / semrl_seconds
    print(f"batches: {args.steps} x ({args.prompts} prompts x {args.group} completions) = {n} completions")
    print(f"texts encoded: naive {2 * n}, semrl {semantic.encoder.encoded}")
    print(f"naive : {naive_rate:8.1f} completions/s ({naive_seconds:.2f} s)")
    print(f"semrl : {semrl_rate:8.1f} completions/s ({semrl_seconds:.2f} s)")
    print(f"max |difference| in cosine: {max_diff:.2e}")
    print(f"ratio semrl/naive: {semrl_rate / naive_rate:.2f}x (target >= 2x)")
    contrast_cost(args, batches, build_reward, RewardConfig)


def contrast_cost(args, batches, build_reward, RewardConfig) -> None:
    """Seconds per call of the csls and retrieval rewards over the plain one, timed in rotation."""
    base = {"type": "semantic", "encoder": args.encoder, "tau": 0.0, "device": "cpu"}
    specs = {
        "plain": base,
        "contrast": {**base, "contrast": {"bank": args.bank, "k": args.k, "mode": "csls"}},
        "retrieval": {**base, "contrast": {"bank": args.bank, "mode": "retrieval"}},
    }
    rewards = {
        name: build_reward(RewardConfig.model_validate({"rewards": [spec]})) for name, spec in specs.items()
    }
    prepare_seconds = {}
    for name in ("contrast", "retrieval"):
        rng = random.Random(1)
        start = time.perf_counter()
        rewards[name].prepare([{"reference": sentence(rng)} for _ in range(2000)], seed=0)
        prepare_seconds[name] = time.perf_counter() - start
    timings = dict.fromkeys(rewards, 0.0)
    names = list(rewards)
    calls = 0
    for repeat in range(args.repeats):
        for index, (completions, references) in enumerate(batches):
            shift = (repeat * len(batches) + index) % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                rewards[name]([""] * len(completions), completions, reference=references)
                timings[name] += time.perf_counter() - start
            calls += 1
    term = rewards["contrast"].semantic_components()[0]
    retrieval = rewards["retrieval"].semantic_components()[0]
    bank = term.banks["reference"]
    print(
        f"contrast: bank {len(bank.texts)} (embedded once at prepare: {prepare_seconds['contrast']:.2f} s), "
        f"k {args.k}, {calls} calls each"
    )
    for name in names:
        print(f"{name:9}: {1000 * timings[name] / calls:8.1f} ms/call")
    print(
        f"  of which the neighbour terms: {1000 * neighbour_seconds(term, batches[0]):.1f} ms/call, "
        f"the retrieval term: {1000 * neighbour_seconds(retrieval, batches[0]):.1f} ms/call "
        "(the rest is the encoder, the same texts in all three)"
    )
    print(f"ratio contrast/plain: {timings['contrast'] / timings['plain']:.3f}x (goal <= 1.15x)")
    print(f"ratio retrieval/plain: {timings['retrieval'] / timings['plain']:.3f}x (goal <= 1.15x)")


def neighbour_seconds(term, batch, repeats: int = 20) -> float:
    """Seconds per call of the correction alone (csls: two products against the bank and top-k;
    retrieval: one product and a log-sum-exp), on one batch's vectors: what contrast adds, free of
    the encoder's noise."""
    import torch

    from semrl.rewards.contrast import corrected

    completions, references = batch
    keep, outputs, targets = term._vectors(completions, {"reference": references})
    matched = targets["reference"][torch.tensor(keep)]
    cosine = (outputs * matched).sum(dim=1)
    texts, kept = [references[i] for i in keep], [completions[i] for i in keep]
    start = time.perf_counter()
    for _ in range(repeats):
        corrected(cosine, outputs, kept, matched, texts, term.banks["reference"], term.spec.contrast)
    return (time.perf_counter() - start) / repeats


if __name__ == "__main__":
    main()
