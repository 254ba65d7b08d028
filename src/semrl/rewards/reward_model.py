"""A local sequence-classification reward model as one reward term.

The model scores `prompt + completion` (through the tokenizer's chat template when the prompt
is a message list and the tokenizer has one). The logit of label 0 is the score; `transform`
maps it to [0, 1] (sigmoid, the default), leaves it raw, standardises it within the batch, or
standardises it by the mean and spread of the RM's scores on a fixed reference set (so a reward of
0 means "as good as a typical reference answer", comparable across batches and runs).
The wrapper is a plain class holding the model, so TRL treats it as a reward function, not as
a reward model of its own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.rewards.base import RewardComponent, as_text, finite_or
from semrl.rewards.config import RewardModelSpec


def load_reward_model(path: str, device: str | None = None, trust_remote_code: bool = False):
    """Model and tokenizer from a local folder (safetensors preferred, no remote code unless asked)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from semrl.encoders.loading import pick_device

    if not Path(path).is_dir():
        raise UserError(f"reward model {path}: not a local model folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"reward model {path}: could not be loaded: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(pick_device(device)).eval()
    return model, tokenizer


def as_trained(tokenizer, text: str) -> str:
    """The plain text TRL's RewardTrainer trained the score on: it appends EOS to plain-text pairs, and
    the classifier reads its score at the last non-pad token, so scoring without the EOS reads the
    head at a position it never learned (unless EOS doubles as the pad token)."""
    eos = tokenizer.eos_token
    return text if not eos or text.endswith(eos) else text + eos


def score_texts(model, tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 512,
                templated: bool = False) -> list[float]:
    """The RM's score (logit 0) of each text, tokenized as TRL's RewardTrainer tokenized it: plain text
    with EOS appended and the tokenizer's special tokens; `templated` text (rendered by the chat
    template, which writes its own BOS/EOS) without adding any, so BOS is never doubled."""
    import torch

    from semrl.encoders.cache import encodable

    model.eval()
    texts = [encodable(text if templated else as_trained(tokenizer, text)) for text in texts]
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True,
                          max_length=max_length, add_special_tokens=not templated).to(model.device)
        with torch.inference_mode():
            scores.extend(model(**batch).logits[:, 0].float().tolist())  # NaN stays NaN for the caller to count
    return scores


def reference_texts(path: str) -> tuple[list[str], list[str]]:
    """(prompts, texts) of a reference set: rows with `completion`, or pairs (chosen and rejected both)."""
    from semrl.data.loading import LINE, load_table

    prompts: list[str] = []
    texts: list[str] = []
    for row in load_table(path):
        fields = [f for f in ("completion", "chosen", "rejected") if isinstance(row.get(f), str) and row[f].strip()]
        if not fields:
            raise UserError(f"{path}: line {row.get(LINE, '?')}: needs a non-empty 'completion' (or 'chosen'/'rejected')")
        prompt = row.get("prompt") if isinstance(row.get("prompt"), str) else ""
        for field in fields:
            prompts.append(prompt)
            texts.append(row[field])
    return prompts, texts


class RewardModelReward(RewardComponent):
    type = "reward_model"

    def __init__(self, spec: RewardModelSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        if not Path(spec.model).is_dir():
            raise UserError(f"reward model {spec.model}: not a local model folder")
        if spec.reference is not None and not Path(spec.reference).is_file():
            raise UserError(f"reward model reference {spec.reference}: file not found")
        self._loaded: tuple[Any, Any] | None = None
        self._reference_stats: tuple[float, float] | None = None

    @property
    def loaded(self):
        if self._loaded is None:
            self._loaded = load_reward_model(self.spec.model, self.spec.device, self.spec.trust_remote_code)
        return self._loaded

    def raw_scores(self, prompts: list[Any], completions: list[str]) -> list[float]:
        """Scores of prompt + completion, tokenized as the RM was trained (train/rm.score_texts):
        message-list prompts through the chat template, plain prompts as text + EOS."""
        model, tokenizer = self.loaded
        chat = [isinstance(prompt, list) and bool(getattr(tokenizer, "chat_template", None)) for prompt in prompts]
        scores: list[float] = [0.0] * len(prompts)
        for templated in (False, True):
            index = [i for i, flag in enumerate(chat) if flag == templated]
            if not index:
                continue
            if templated:
                texts = [tokenizer.apply_chat_template([*prompts[i], {"role": "assistant", "content": completions[i]}],
                                                       tokenize=False) for i in index]
            else:
                texts = [as_text(prompts[i]) + completions[i] for i in index]
            values = score_texts(model, tokenizer, texts, self.spec.batch_size, self.spec.max_length, templated)
            for i, value in zip(index, values):
                scores[i] = value
        return scores

    def reference_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the RM's scores on the reference texts (computed once)."""
        if self._reference_stats is None:
            prompts, texts = reference_texts(self.spec.reference)
            scores = self.raw_scores(prompts, texts)
            mean = sum(scores) / len(scores)
            std = math.sqrt(sum((x - mean) ** 2 for x in scores) / len(scores)) or 1.0
            self._reference_stats = (mean, std)
        return self._reference_stats

    def transform(self, raw: list[float]) -> list[float]:
        if self.spec.transform == "reference_z":
            mean, std = self.reference_stats()
            return [(x - mean) / std for x in raw]
        if self.spec.transform == "sigmoid":
            return [1.0 / (1.0 + math.exp(-min(max(x, -60.0), 60.0))) for x in raw]
        if self.spec.transform == "batch_z" and raw:
            mean = sum(raw) / len(raw)
            std = math.sqrt(sum((x - mean) ** 2 for x in raw) / len(raw)) or 1.0
            return [(x - mean) / std for x in raw]
        return raw

    def score(self, prompts, completions, refs):
        """Empty completions get the floor: 0 under sigmoid, else the lowest score in the batch."""
        keep = [i for i, text in enumerate(completions) if text.strip()]
        raw = self.raw_scores([prompts[i] for i in keep], [completions[i] for i in keep]) if keep else []
        values = self.transform(raw)  # non-finite values are counted and replaced by safe_score
        floor = 0.0 if self.spec.transform == "sigmoid" else min(finite_or(values, 0.0), default=0.0)
        out = [floor] * len(completions)
        for i, value in zip(keep, values):
            out[i] = value
        return out
