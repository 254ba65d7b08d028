"""Evaluation throughput, two ratios measured in one run.

1. Multiple-choice log-likelihood: semrl's scoring (each item's context run once in left-padded
   batches with the KV cache kept, then only the answer continuations per choice) vs a naive loop
   with one forward pass per (context + choice).
   Target >= 4x. Both give the same log-likelihoods (checked).
2. Generation: semrl's evaluation `generate` (chat/plain prompts, length-sorted, left-padded
   batches, decoding back to text) vs raw `model.generate` on the same left-padded batch.
   Target >= 0.8x (the convenience may cost at most 20%).

Model: a tiny Llama built locally ("base" size, ~4M parameters).
    python benchmarks/eval_throughput.py [--items 64] [--prompts 32]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

WORDS = [
    "river",
    "apple",
    "mountain",
    "teacher",
    "bread",
    "window",
    "horse",
    "market",
    "winter",
    "letter",
    "garden",
    "bridge",
    "yak",
    "tea",
    "school",
    "cloud",
]


def make_items(n: int, rng: random.Random) -> list[dict]:
    items = []
    for _ in range(n):
        question = "Which word fits: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "?"
        choices = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(4)]
        items.append({"question": question, "choices": choices, "answer": rng.randrange(4)})
    return items


def naive_mc(model, tokenizer, items) -> list[float]:
    """One forward pass per (item, choice), no batching: the loop people write first."""
    import torch

    scores = []
    for item in items:
        context = f"Question: {item['question']}\nAnswer:"
        ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
        for choice in item["choices"]:
            cont = tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([ctx + cont])
            with torch.inference_mode():
                logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
            scores.append(sum(float(logprobs[len(ctx) + i - 1, t]) for i, t in enumerate(cont)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semrl.evaluate.generation import GenerationSettings, generate
    from semrl.evaluate.likelihood import shared_context_logprobs
    from semrl.models.tiny import SIZES, TinySpec, build_tiny_lm

    torch.manual_seed(0)
    rng = random.Random(0)
    items = make_items(args.items, rng)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(400)]
        path = build_tiny_lm(Path(tmp) / "lm", corpus, TinySpec(**SIZES["base"]))
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)

    naive_mc(model, tokenizer, items[:2])  # warm-up
    start = time.perf_counter()
    naive = naive_mc(model, tokenizer, items)
    naive_s = time.perf_counter() - start
    contexts = [f"Question: {item['question']}\nAnswer:" for item in items]
    start = time.perf_counter()
    scored = shared_context_logprobs(
        model, tokenizer, contexts, [item["choices"] for item in items], batch_size=16
    )
    batched_s = time.perf_counter() - start
    batched = [s for chunk in scored for s, _ in chunk]
    pairs = batched
    max_diff = max(abs(a - b) for a, b in zip(naive, batched, strict=True))
    print(f"multiple choice: {args.items} items x 4 choices")
    print(f"  naive loop : {len(pairs) / naive_s:8.1f} continuations/s")
    print(
        f"  semrl      : {len(pairs) / batched_s:8.1f} continuations/s   (max |log-lik difference| "
        f"{max_diff:.1e})"
    )
    print(f"  ratio semrl/naive: {naive_s / batched_s:.2f}x (target >= 4x)")

    prompts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20))) for _ in range(args.prompts)]
    settings = GenerationSettings(max_new_tokens=args.new_tokens, batch_size=args.prompts)
    generate(model, tokenizer, prompts[:4], settings)  # warm-up
    start = time.perf_counter()
    ours = generate(model, tokenizer, prompts, settings)
    ours_s = time.perf_counter() - start
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    start = time.perf_counter()
    with torch.inference_mode():
        raw = model.generate(
            **batch,
            max_new_tokens=args.new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    raw_s = time.perf_counter() - start
    raw_text = [
        t.strip()
        for t in tokenizer.batch_decode(raw[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    ]
    same = sum(a == b for a, b in zip(ours, raw_text, strict=True))
    print(f"generation: {args.prompts} prompts, {args.new_tokens} new tokens, one batch")
    print(f"  raw model.generate : {raw_s:.3f} s")
    print(f"  semrl generate     : {ours_s:.3f} s   (identical outputs: {same}/{len(prompts)})")
    print(f"  ratio semrl/raw throughput: {raw_s / ours_s:.2f}x (target >= 0.8x)")


if __name__ == "__main__":
    main()
