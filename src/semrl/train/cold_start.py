"""`tau: cold_start`: the paper sets the adequacy floor at "the minimal adequacy level of the cold
start", so tau must come from what the stage's own starting model writes, not from a guess.

Before GRPO, the starting model (before LoRA) samples one completion for each prompt of a fixed,
seeded sample of the stage's GRPO rows, with the stage's own sampling settings (taken from the
same GRPOConfig TRL generates with; prompts tokenized as TRL tokenizes them, by models/prompts.py).
tau is the q-quantile (numpy's linear rule) of the component's adequacy (s', before shaping) of
those completions against their rows' references/sources. The sample is saved as
`<stage>/tau_cold_start.jsonl` (one line per prompt: `row`, its index in the stage's rows, the
prompt, the completion and each cold-start component's score); the value is derived from that
file, so a resumed stage reads the same value back from it without generating again. With
`use_vllm` the cold start still samples with transformers' `generate` (same settings; vLLM's
sampler is not bit-identical to it).

The generation runs inside its own copy of every RNG, so training (LoRA init, sampling) sees the
same random state whether the cold start was computed now, read back, or absent: a stage killed
after its cold start and resumed from no checkpoint trains bit for bit as one never killed.
Under several processes rank 0 computes and broadcasts the value.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from semrl.distributed import is_main_process, world_size
from semrl.errors import UserError
from semrl.evaluate.generation import decode_completion, stop_token_ids
from semrl.files import atomic_write_jsonl, read_jsonl
from semrl.models.prompts import encode_prompts, left_padded
from semrl.rewards.base import completion_text

FILE = "tau_cold_start.jsonl"


def cold_start_rules(reward) -> list[tuple[Any, Any]]:
    """(semantic component, its ColdStartTau rule) for each component whose tau is `cold_start`."""
    components = (
        reward.semantic_components()
        if hasattr(reward, "semantic_components")
        else [c for c, _ in reward.components if getattr(c, "type", None) == "semantic"]
    )
    return [(c, rule) for c in components if (rule := getattr(c.spec, "cold_start", None)) is not None]


def sample_order(n_rows: int, seed: int) -> list[int]:
    """A seeded permutation of the rows; a component sampling k rows takes its first k."""
    order = list(range(n_rows))
    random.Random(seed).shuffle(order)
    return order


@contextmanager
def own_rng() -> Iterator[None]:
    """Run a block on copies of the python, numpy and torch (CPU and CUDA) generators."""
    import torch

    python, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy_state)


def sample_completions(model, tokenizer, prompts: list[Any], args, seed: int, device: str) -> list[str]:
    """One sampled completion per prompt under the GRPOConfig's generation settings (TRL's
    non-vLLM path: left padding, cut at the first stop token, special tokens skipped), without the
    broken character a cut at max_completion_length can end in, as the reward scores them."""
    import torch
    from transformers import GenerationConfig

    stops = stop_token_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=args.max_completion_length,
        do_sample=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stops,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        **(args.generation_kwargs or {}),
    )
    batch_size = max(1, args.per_device_train_batch_size)
    torch.manual_seed(seed)
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        ids = encode_prompts(tokenizer, prompts[start : start + batch_size], args.chat_template_kwargs)
        input_ids, mask = left_padded(ids, tokenizer.pad_token_id, device)
        width = input_ids.shape[1]
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
        for row in out[:, width:].tolist():
            cut = next((i for i, token in enumerate(row) if token in stops), len(row))
            texts.append(decode_completion(tokenizer, row[:cut]))
    return texts


def score_sample(
    rules, model, tokenizer, records: list[dict[str, Any]], args, seed: int, device: str
) -> list[dict[str, Any]]:
    """The saved rows: prompt, completion and each cold-start component's adequacy."""
    size = max(min(rule.sample, len(records)) for _, rule in rules)
    picked = sample_order(len(records), seed)[:size]
    rows = [records[i] for i in picked]
    was_training, before = model.training, next(model.parameters()).device
    target = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if device == "cuda" else device
    model.to(target).eval()
    try:
        with own_rng():
            completions = [
                completion_text(text)
                for text in sample_completions(
                    model, tokenizer, [r["prompt"] for r in rows], args, seed, target
                )
            ]
            columns = {key: [r[key] for r in rows] for key in rows[0] if key != "prompt"}
            scores = {c.name: c.adequacy(completions, c.gather_roles(len(rows), columns)) for c, _ in rules}
    finally:
        model.to(before).train(was_training)
    return [
        {
            "row": index,
            "prompt": row["prompt"],
            "completion": completion,
            "scores": {name: float(values[i]) for name, values in scores.items()},
        }
        for i, (index, row, completion) in enumerate(zip(picked, rows, completions, strict=True))
    ]


def summarize(rules, rows: list[dict[str, Any]], n_records: int) -> dict[str, Any] | None:
    """{component: {value, quantile, n, sample, sample_file}} from the saved rows, or None when
    they do not cover every rule (then the sample is drawn again)."""
    out = {}
    for component, rule in rules:
        n = min(rule.sample, n_records)
        scores = [row.get("scores", {}).get(component.name) for row in rows[:n]]
        if len(scores) < n or any(not isinstance(s, (int, float)) for s in scores):
            return None
        out[component.name] = {
            "value": float(np.quantile(np.asarray(scores, dtype=float), rule.quantile)),
            "quantile": rule.quantile,
            "n": n,
            "sample": rule.sample,
            "sample_file": FILE,
        }
    return out


def _saved(path: Path) -> list[dict[str, Any]]:
    try:
        return read_jsonl(path, numbered=False)
    except (UserError, OSError):  # a file from another version or a torn one: draw the sample again
        return []


def _broadcast(value: Any, device: str) -> Any:
    """Rank 0's value on every rank of a multi-process launch; the value itself otherwise."""
    if world_size() <= 1:
        return value
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    PartialState(cpu=device == "cpu")  # the launch's process group (main_process_first made it)
    return broadcast_object_list([value])[0]


def resolve_cold_start_tau(
    reward,
    model,
    tokenizer,
    records: list[dict[str, Any]],
    args,
    seed: int,
    out_dir: Path,
    device: str,
    resume: bool,
) -> dict[str, Any] | None:
    """Set every cold-start tau of `reward` and return what metrics.json records (None: no rule)."""
    rules = cold_start_rules(reward)
    if not rules:
        return None
    path = Path(out_dir) / FILE
    summary = summarize(rules, _saved(path), len(records)) if resume and path.exists() else None
    if summary is None and is_main_process():
        rows = score_sample(rules, model, tokenizer, records, args, seed, device)
        atomic_write_jsonl(path, rows)
        summary = summarize(rules, rows, len(records))
    summary = _broadcast(summary, device)
    for component, _ in rules:
        component.set_tau(summary[component.name]["value"])
    return summary
