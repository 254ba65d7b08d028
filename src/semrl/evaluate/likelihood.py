"""Log-likelihood scoring in batches: multiple choice, NLL of text, per-token KL to a base model.

Multiple choice runs each item's context once (KV cache, left-padded batches) and only the short
answer continuations per choice, instead of one pass per (context + choice): the same numbers,
several times faster (benchmarks/eval_throughput.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _padded(sequences: Sequence[list[int]], pad: int, left: bool = False):
    """(input_ids, attention_mask) of token lists padded to the longest; left padding puts every
    sequence's end in the last column (what a KV cache continued by new tokens needs)."""
    import torch

    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        span = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[row, span] = torch.tensor(ids)
        mask[row, span] = 1
    return input_ids, mask


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def continuation_logprobs(
    model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16, max_length: int = 512
) -> list[tuple[float, int]]:
    """(sum of log p(continuation | context), number of continuation tokens) for each pair."""
    import torch

    sequences = []
    for context, continuation in pairs:
        ctx, cont = _encode(tokenizer, context), _encode(tokenizer, continuation)
        if not cont:
            cont = [tokenizer.eos_token_id]
        ids = (ctx + cont)[-max_length:]
        sequences.append((ids, min(len(cont), len(ids) - 1)))
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    results: list[tuple[float, int]] = [(0.0, 0)] * len(sequences)
    pad = _pad_id(tokenizer)
    model.eval()
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        input_ids, attention = _padded([sequences[i][0] for i in index], pad)
        with torch.inference_mode():
            logits = model(
                input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device)
            ).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for row, i in enumerate(index):
            ids, n_cont = sequences[i]
            positions = torch.arange(len(ids) - n_cont - 1, len(ids) - 1)
            targets = torch.tensor(ids[len(ids) - n_cont :])
            results[i] = (float(logprobs[row, positions, targets].sum()), n_cont)
    return results


def shared_context_logprobs(
    model,
    tokenizer,
    contexts: Sequence[str],
    choices: Sequence[Sequence[str]],
    batch_size: int = 16,
    max_length: int = 512,
) -> list[list[tuple[float, int]]]:
    """Log-likelihood of every choice of every item, running each item's context once.

    Contexts of a batch are left-padded and run with the KV cache kept; the cache is then
    repeated per choice and only the (short) continuations are run on top of it. Multiple-choice
    items share a long context between 4 short answers, so this does a fraction of the work of
    scoring each (context + choice) sequence on its own, with the same numbers.
    """
    import torch

    results: list[list[tuple[float, int]]] = []
    pad = _pad_id(tokenizer)
    model.eval()
    for start in range(0, len(contexts), batch_size):
        conts = [
            [_encode(tokenizer, " " + c) or [tokenizer.eos_token_id] for c in item_choices]
            for item_choices in choices[start : start + batch_size]
        ]
        longest = max(len(c) for cs in conts for c in cs)
        ctxs = [
            (_encode(tokenizer, c) or [tokenizer.eos_token_id])[-max(max_length - longest, 1) :]
            for c in contexts[start : start + batch_size]
        ]
        ids, mask = _padded(ctxs, pad, left=True)
        positions = (mask.cumsum(dim=1) - 1).clamp_min(0)
        device = model.device
        with torch.inference_mode():
            out = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=True,
            )
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()
        index = [row for row, cs in enumerate(conts) for _ in cs]
        cache = out.past_key_values
        cache.batch_select_indices(torch.tensor(index, device=device))
        flat = [c for cs in conts for c in cs]
        cont_ids, cont_mask = _padded(flat, pad)
        cont_width = cont_ids.shape[1]
        lengths = mask.sum(dim=1)[index]
        cont_positions = lengths[:, None] + torch.arange(cont_width)[None, :]
        full_mask = torch.cat([mask[index], cont_mask], dim=1)
        with torch.inference_mode():
            logits = model(
                input_ids=cont_ids.to(device),
                attention_mask=full_mask.to(device),
                position_ids=cont_positions.to(device),
                past_key_values=cache,
            ).logits
        rest = torch.log_softmax(logits.float(), dim=-1).cpu()
        scores = []
        for row, (item, c) in enumerate(zip(index, flat, strict=True)):
            total = float(first[item, c[0]])
            if len(c) > 1:
                total += float(rest[row, torch.arange(len(c) - 1), torch.tensor(c[1:])].sum())
            scores.append((total, len(c)))
        cursor = 0
        for cs in conts:
            results.append(scores[cursor : cursor + len(cs)])
            cursor += len(cs)
    return results


def multiple_choice(
    model,
    tokenizer,
    items: list[dict[str, Any]],
    k_shot: int = 0,
    batch_size: int = 16,
    max_length: int = 512,
    length_normalize: bool = False,
) -> list[float]:
    """Per-item correctness (1.0/0.0) by log-likelihood of " choice" after the question; the first
    k items are the shots."""
    shots = items[:k_shot]
    prefix = "".join(f"Question: {s['question']}\nAnswer: {s['choices'][s['answer']]}\n\n" for s in shots)
    evaluated = items[k_shot:]
    contexts = [f"{prefix}Question: {item['question']}\nAnswer:" for item in evaluated]
    scores = shared_context_logprobs(
        model, tokenizer, contexts, [item["choices"] for item in evaluated], batch_size, max_length
    )
    correct = []
    for item, chunk in zip(evaluated, scores, strict=True):
        values = [s / max(n, 1) if length_normalize else s for s, n in chunk]
        correct.append(float(int(np.argmax(values)) == item["answer"]))
    return correct


def _batches(tokenizer, texts: Sequence[str], batch_size: int, max_length: int):
    encoded = [(_encode(tokenizer, t) or [tokenizer.eos_token_id])[:max_length] for t in texts]
    bos = tokenizer.bos_token_id
    if bos is not None:
        encoded = [[bos] + ids[: max_length - 1] for ids in encoded]
    for start in range(0, len(encoded), batch_size):
        yield _padded(encoded[start : start + batch_size], _pad_id(tokenizer))


def token_nll(
    model, tokenizer, texts: Sequence[str], batch_size: int = 16, max_length: int = 512
) -> list[np.ndarray]:
    """Per-token negative log-likelihood of each text (predicting tokens 2..n from their prefix)."""
    import torch

    model.eval()
    out: list[np.ndarray] = []
    for input_ids, mask in _batches(tokenizer, texts, batch_size, max_length):
        with torch.inference_mode():
            logits = (
                model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device))
                .logits.float()
                .cpu()
            )
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        nll = -logprobs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        for row in range(len(input_ids)):
            n = int(mask[row].sum()) - 1
            out.append(nll[row, :n].numpy())
    return out


def token_kl(
    model, base, tokenizer, texts: Sequence[str], batch_size: int = 16, max_length: int = 512
) -> list[np.ndarray]:
    """Per-token KL(model || base) of next-token distributions along each text (teacher forcing)."""
    import torch

    model.eval()
    base.eval()
    out: list[np.ndarray] = []
    for input_ids, mask in _batches(tokenizer, texts, batch_size, max_length):
        with torch.inference_mode():
            p = torch.log_softmax(
                model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device))
                .logits.float()
                .cpu(),
                dim=-1,
            )
            q = torch.log_softmax(
                base(input_ids=input_ids.to(base.device), attention_mask=mask.to(base.device))
                .logits.float()
                .cpu(),
                dim=-1,
            )
        kl = (p.exp() * (p - q)).sum(-1).clamp_min(0.0)
        for row in range(len(input_ids)):
            n = int(mask[row].sum())
            out.append(kl[row, :n].numpy())
    return out
