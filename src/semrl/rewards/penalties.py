"""Anti-hacking penalties from the sibling paper, each in [0, 1] (0 = no penalty).

length: outputs grew to 5x gold length without it. The penalty is 0 up to `start` x the median
length (of the batch, or of the row's reference) and grows linearly to 1 at `end` x.
repetition: 0 while the repeated-n-gram ratio (1 - distinct/total n-grams) is at or below the
threshold, then linear to 1 at ratio 1. Lengths and n-grams count metric tokens of the language
(Tibetan syllables, Chinese characters, words).

TRL ships two neighbours in `trl.rewards`; we reuse what computes the same thing and keep ours
where the paper's recipe differs:

- The repeated-n-gram ratio is TRL's `get_repetition_penalty_reward(n, max_penalty=-1.0)` (it
  returns minus that ratio), called on ids of our metric tokens: no copy kept here. Two things are
  ours. (1) The paper's threshold form: TRL charges every repeat linearly from ratio 0, the paper
  charges nothing up to 0.15 (a sentence that says "the" twice is not degenerate): at ratio 0.1
  TRL gives -0.1, ours 0. (2) The unit: TRL counts n-grams of the policy's token ids, so the
  number depends on the tokenizer rather than on the text. Our own Tibetan sentence
  "ཉི་མ་ཤར་སོང་། རྟ་དཀར་པོ་རི་ལ་ཡོད། ཁྱི་ནག་པོས་ཆུ་འཐུང་གི་འདུག" repeats no syllable 4-gram
  (ratio 0 here), yet TRL on its UTF-8 byte ids (a byte vocabulary, as ByT5 has) reports 0.39,
  over the 0.15 threshold: Tibetan letters share lead bytes. "ཁྱི་ནག་པོས་ཆུ་འཐུང་གི་འདུག།" said twice
  is 0.36 on syllables, 0.46 on a byte-level BPE trained on our sample lines (0.63 on bytes).
  Tibetan and Chinese have no spaces, so counting words would not help either; we count
  syllables/characters (tests/unit/rewards/test_reward_audit_hacks.py measures these numbers).
- Length is not TRL's `get_soft_overlong_punishment`: that ramps from an absolute
  `max_completion_len - soft_punish_cache` to `max_completion_len` policy tokens, while the paper's
  thresholds move with the batch (or reference) median. With lengths (10, 10, 10, 60) ours charges
  the 60-token output fully (6x the median); TRL with max_completion_len=256 charges nothing, and
  it charges a batch of uniformly long, correct translations that ours leaves alone.
"""

from __future__ import annotations

import statistics
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from semrl.rewards.base import RewardComponent
from semrl.rewards.spec import ComponentBase
from semrl.text.tokenize import guess_lang, metric_tokenizer


class LengthSpec(ComponentBase):
    type: Literal["length"] = Field(description="penalty in [0, 1] for outputs much longer than the median")
    weight: float = Field(-0.2, description="negative: a penalty subtracts")
    start: float = Field(2.5, gt=0, description="no penalty up to start x the median length")
    end: float = Field(5.0, gt=0, description="full penalty (1.0) at end x the median length")
    relative_to: Literal["batch", "reference"] = Field(
        "batch", description="median length of the batch's outputs, or the output's own reference length"
    )
    lang: str | None = Field(None, description="language of the outputs; picks how length is counted")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be greater than start")
        return self


class RepetitionSpec(ComponentBase):
    type: Literal["repetition"] = Field(description="penalty in [0, 1] for repeated n-grams")
    weight: float = Field(-0.05, description="negative: a penalty subtracts")
    n: int = Field(4, ge=1, description="n-gram length")
    threshold: float = Field(
        0.15,
        ge=0.0,
        lt=1.0,
        description="no penalty while the repeated-n-gram ratio stays at or below this; then linear to 1",
    )
    lang: str | None = Field(None, description="language of the outputs; picks the tokenization")


def _tokens(text: str, lang: str | None) -> list[str]:
    return metric_tokenizer(lang or guess_lang(text))(text)


def length_penalty(length: float, median: float, start: float = 2.5, end: float = 5.0) -> float:
    ratio = length / max(median, 1.0)
    if ratio <= start:
        return 0.0
    return min((ratio - start) / (end - start), 1.0)


def repeated_ngram_ratio(tokens: list[str], n: int = 4) -> float:
    """1 - distinct/total n-grams (0 with fewer than n tokens), by TRL's repetition reward on
    token ids: with max_penalty=-1 it returns exactly minus this ratio."""
    from trl.rewards import get_repetition_penalty_reward

    ids: dict[str, int] = {}
    token_ids = [ids.setdefault(token, len(ids)) for token in tokens]
    return 0.0 - float(get_repetition_penalty_reward(ngram_size=n, max_penalty=-1.0)([token_ids])[0])


def repetition_penalty(tokens: list[str], n: int = 4, threshold: float = 0.15) -> float:
    ratio = repeated_ngram_ratio(tokens, n)
    return 0.0 if ratio <= threshold else (ratio - threshold) / (1.0 - threshold)


class LengthPenalty(RewardComponent):
    type = "length"
    penalty = True

    def __init__(self, spec: LengthSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.needs = ("reference",) if spec.relative_to == "reference" else ()

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        lengths = [len(_tokens(text, self.spec.lang)) for text in completions]
        if self.spec.relative_to == "reference":
            medians = [float(len(_tokens(ref, self.spec.lang))) for ref in refs["reference"]]
        else:
            medians = [float(statistics.median(lengths))] * len(lengths) if lengths else []
        return [
            length_penalty(n, m, self.spec.start, self.spec.end)
            for n, m in zip(lengths, medians, strict=True)
        ]


class RepetitionPenalty(RewardComponent):
    type = "repetition"
    penalty = True

    def __init__(self, spec: RepetitionSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        return [
            repetition_penalty(_tokens(text, self.spec.lang), self.spec.n, self.spec.threshold)
            for text in completions
        ]
