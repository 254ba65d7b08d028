"""The one way a prompt becomes token ids, for training, the cold-start sample, checkpoint selection
and evaluation alike.

TRL decides it for training: GRPOTrainer (`_tokenize_prompts`) and SFTTrainer (`trl.data_utils._tokenize`)
both call `tokenizer(text=prompt)` on a plain-text prompt, which adds the tokenizer's special tokens
(BOS for Llama and Gemma), and `apply_chat_template(..., tokenize=True, add_generation_prompt=True)` on
chat messages, where the template writes its own BOS and nothing is added. A model evaluated on
prompts encoded any other way (a plain prompt without its BOS) is evaluated on inputs it never
trained on, so every generation path here goes through `encode_prompts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def encode_prompts(
    tokenizer, prompts: Sequence[Any], chat_template_kwargs: Mapping[str, Any] | None = None
) -> list[list[int]]:
    """Token ids of each prompt (a string, or a list of chat messages), exactly as TRL's trainers
    tokenize them."""
    if prompts and all(isinstance(prompt, str) for prompt in prompts):  # one call: the fast path
        return [list(row) for row in tokenizer(text=list(prompts))["input_ids"]]
    ids: list[list[int]] = []
    for prompt in prompts:
        if isinstance(prompt, list):
            encoded = tokenizer.apply_chat_template(
                prompt,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                **dict(chat_template_kwargs or {}),
            )
            ids.append(list(encoded["input_ids"]))
        else:
            ids.append(list(tokenizer(text=prompt)["input_ids"]))
    return ids


def left_padded(ids: Sequence[Sequence[int]], pad_id: int, device: Any = None):
    """(input_ids, attention_mask) tensors of `ids` padded on the left, as generation needs."""
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.tensor([[pad_id] * (width - len(row)) + list(row) for row in ids], device=device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=device)
    return input_ids, mask
