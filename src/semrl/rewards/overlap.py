"""Surface-overlap rewards (the classic baseline): sentence BLEU, chrF++ and ROUGE-L against
the reference, language-aware, scaled to [0, 1]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from semrl.metrics.rouge import sentence_rouge_l
from semrl.metrics.surface import sentence_bleu, sentence_chrf
from semrl.rewards.base import RewardComponent
from semrl.rewards.spec import ComponentBase


class OverlapSpec(ComponentBase):
    type: Literal["bleu", "chrf", "rougeL"] = Field(
        description="sentence score against the reference, in [0, 1]"
    )
    lang: str | None = Field(None, description="language of the references; picks the tokenization")


_SENTENCE: dict[str, Callable[[str, str, str | None], float]] = {
    "bleu": lambda hyp, ref, lang: sentence_bleu(hyp, ref, lang) / 100.0,
    "chrf": lambda hyp, ref, lang: sentence_chrf(hyp, ref, lang) / 100.0,
    "rougeL": sentence_rouge_l,
}


class OverlapReward(RewardComponent):
    needs = ("reference",)

    def __init__(self, spec: OverlapSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.type = spec.type
        self._fn = _SENTENCE[spec.type]

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        return [
            min(max(self._fn(text, ref, self.spec.lang), 0.0), 1.0) if text.strip() else 0.0
            for text, ref in zip(completions, refs["reference"], strict=True)
        ]
