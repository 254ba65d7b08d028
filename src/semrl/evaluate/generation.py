"""Batched, left-padded generation for evaluation: greedy by default, sampling on request.

Prompts are encoded as training encodes them (models/prompts.py: special tokens on plain text,
the chat template on messages), sorted by length so each batch pads little, then results are put
back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from semrl.models.prompts import encode_prompts, left_padded
from semrl.rewards.base import strip_reasoning
from semrl.text.decoding import strip_broken_tail


@dataclass(frozen=True)
class GenerationSettings:
    """How outputs are decoded: greedy by default, so an evaluation is repeatable."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None  # None or 0: no top-k filter
    batch_size: int = 16
    seed: int = 0

    def sampling_kwargs(self) -> dict[str, Any]:
        """What `model.generate` samples with; greedy decoding reads none of it."""
        if not self.do_sample:
            return {}
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k or 0}


def stop_token_ids(model, tokenizer) -> list[int]:
    """Ids that end a completion: the tokenizer's eos plus the model's generation_config ones, as
    TRL's GRPO stops. Gemma ends a turn with <end_of_turn> (eos is <eos>), Llama 3 / Qwen list
    <|eot_id|> / <|im_end|> there: stopping at eos alone ran past the turn into the next one."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    return list(dict.fromkeys([i for i in (tokenizer.eos_token_id, *ids) if i is not None]))


def decode_completion(tokenizer, ids: Sequence[int]) -> str:
    """Generated ids as text, special tokens skipped, without the U+FFFD a token limit leaves when
    it cuts a multi-byte character (byte-level BPE): metrics never see a character not written."""
    return strip_broken_tail(tokenizer.decode(ids, skip_special_tokens=True))


def generate(
    model, tokenizer, prompts: Sequence[Any], settings: GenerationSettings = GenerationSettings()
) -> list[str]:
    """Completions (special tokens stripped) for each prompt, in input order."""
    import torch

    encoded = encode_prompts(tokenizer, prompts)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(encoded)
    model.eval()
    if settings.do_sample:
        torch.manual_seed(settings.seed)
    for start in range(0, len(order), settings.batch_size):
        index = order[start : start + settings.batch_size]
        input_ids, mask = left_padded([encoded[i] for i in index], tokenizer.pad_token_id, model.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": settings.do_sample,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": stop_token_ids(model, tokenizer),
            **settings.sampling_kwargs(),
        }
        with torch.inference_mode():
            generated = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        for i, row in zip(index, generated[:, input_ids.shape[1] :], strict=True):
            # the answer, without a Qwen3-style <think> block (scored the same way in training)
            # and without whitespace after bytes left open (evaluation strips; TRL's text keeps it)
            text = strip_broken_tail(decode_completion(tokenizer, row).strip()).strip()
            outputs[i] = strip_reasoning(text)
    return outputs
