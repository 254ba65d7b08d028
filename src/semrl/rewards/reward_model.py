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
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from semrl.data.loading import LINE, load_table
from semrl.errors import UserError
from semrl.models.loading import load_scorer, score_texts
from semrl.names import PathText
from semrl.rewards.base import LoadedModel, RewardComponent, as_text, finite_or
from semrl.rewards.spec import ComponentBase
from semrl.text.visible import filled
from semrl.weights import check_weights


class RewardModelSpec(ComponentBase):
    type: Literal["reward_model"] = Field(description="a sequence-classification model's score")
    model: PathText = Field(description="the reward model's folder or hub id")
    transform: Literal["sigmoid", "raw", "batch_z", "reference_z"] = Field(
        "sigmoid",
        description="batch_z: standardise within each batch; reference_z: by the scores of `reference`",
    )
    reference: PathText | None = Field(
        None, description="reference_z: file of prompt + completion (or chosen/rejected) rows"
    )
    batch_size: int = Field(16, ge=1, description="texts per forward pass")
    max_length: int = Field(1024, ge=8, description="prompt + completion tokens; longer texts are truncated")
    device: str | None = Field(
        None,
        description="cuda, cuda:1, cpu; default: cuda when available. The RM's weights "
        "and activations share that GPU with the policy (and vLLM) unless moved",
    )
    trust_remote_code: bool = Field(False, description="run the model repository's own Python code")
    init_head: bool = Field(
        False, description="model is a causal LM: score with a NEW, untrained head (else refused)"
    )

    @model_validator(mode="after")
    def _reference_needed(self) -> Self:
        if (self.transform == "reference_z") != (self.reference is not None):
            raise ValueError(
                "transform reference_z needs `reference:` (a file of texts), and only it uses one"
            )
        return self


def reference_texts(path: str) -> tuple[list[str], list[str]]:
    """(prompts, texts) of a reference set: rows with `completion`, or pairs (chosen and rejected both)."""
    prompts: list[str] = []
    texts: list[str] = []
    for row in load_table(path):
        fields = [f for f in ("completion", "chosen", "rejected") if filled(row.get(f))]
        if not fields:
            raise UserError(
                f"{path}: line {row.get(LINE, '?')}: needs a non-empty 'completion' (or 'chosen'/'rejected')"
            )
        given = row.get("prompt")
        prompt = given if isinstance(given, str) else ""
        for field in fields:
            prompts.append(prompt)
            texts.append(row[field])
    return prompts, texts


class RewardModelReward(RewardComponent):
    type = "reward_model"

    @classmethod
    def loads(cls, spec: RewardModelSpec) -> LoadedModel:
        return LoadedModel("classifier", spec.model, "RM", spec.device, spec.trust_remote_code)

    def __init__(self, spec: RewardModelSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        if not Path(spec.model).is_dir():
            raise UserError(f"reward model {spec.model}: not a local model folder")
        check_weights(spec.model, "reward model")
        if spec.reference is not None and not Path(spec.reference).is_file():
            raise UserError(f"reward model reference {spec.reference}: file not found")
        self._loaded: tuple[Any, Any] | None = None
        self._reference_stats: tuple[float, float] | None = None

    @property
    def loaded(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = load_scorer(
                self.spec.model, self.spec.device, trust_remote_code=self.spec.trust_remote_code
            )
        return self._loaded

    def raw_scores(self, prompts: list[Any], completions: list[str]) -> list[float]:
        """Scores of prompt + completion, tokenized as the RM was trained (train/rm.score_texts):
        message-list prompts through the chat template, plain prompts as text + EOS."""
        model, tokenizer = self.loaded
        chat = [
            isinstance(prompt, list) and bool(getattr(tokenizer, "chat_template", None)) for prompt in prompts
        ]
        scores: list[float] = [0.0] * len(prompts)
        for templated in (False, True):
            index = [i for i, flag in enumerate(chat) if flag == templated]
            if not index:
                continue
            if templated:
                texts = [
                    tokenizer.apply_chat_template(
                        [*prompts[i], {"role": "assistant", "content": completions[i]}], tokenize=False
                    )
                    for i in index
                ]
            else:
                texts = [as_text(prompts[i]) + completions[i] for i in index]
            values = score_texts(
                model, tokenizer, texts, self.spec.batch_size, self.spec.max_length, templated
            )
            for i, value in zip(index, values, strict=True):
                scores[i] = value
        return scores

    def reference_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the RM's scores on the reference texts (computed once)."""
        if self._reference_stats is None:
            if self.spec.reference is None:  # RewardModelSpec pairs reference_z with a reference file
                raise ValueError(f"reward {self.name!r}: reference statistics need `reference:` (a file)")
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

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        """Empty completions get the floor: 0 under sigmoid, else the lowest score in the batch."""
        keep = [i for i, text in enumerate(completions) if text.strip()]
        raw = self.raw_scores([prompts[i] for i in keep], [completions[i] for i in keep]) if keep else []
        values = self.transform(raw)  # non-finite values are counted and replaced by safe_score
        floor = 0.0 if self.spec.transform == "sigmoid" else min(finite_or(values, 0.0), default=0.0)
        out = [floor] * len(completions)
        for i, value in zip(keep, values, strict=True):
            out[i] = value
        return out
