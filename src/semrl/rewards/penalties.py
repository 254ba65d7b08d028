"""Anti-hacking penalties from the sibling paper, each in [0, 1] (0 = no penalty).

length: outputs grew to 5x gold length without it. The penalty is 0 up to `start` x the median
length (of the batch, or of the row's reference) and grows linearly to 1 at `end` x.
repetition: 0 while the repeated-n-gram ratio (1 - distinct/total n-grams) is at or below the
threshold, then linear to 1 at ratio 1. Lengths and n-grams count metric tokens of the language
(Tibetan syllables, Chinese characters, words).
"""

from __future__ import annotations

import statistics

from semrl.rewards.base import RewardComponent
from semrl.rewards.config import LengthSpec, RepetitionSpec
from semrl.text.tokenize import guess_lang, metric_tokenizer


def _tokens(text: str, lang: str | None) -> list[str]:
    return metric_tokenizer(lang or guess_lang(text))(text)


def length_penalty(length: float, median: float, start: float = 2.5, end: float = 5.0) -> float:
    ratio = length / max(median, 1.0)
    if ratio <= start:
        return 0.0
    return min((ratio - start) / (end - start), 1.0)


def repeated_ngram_ratio(tokens: list[str], n: int = 4) -> float:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def repetition_penalty(tokens: list[str], n: int = 4, threshold: float = 0.15) -> float:
    ratio = repeated_ngram_ratio(tokens, n)
    return 0.0 if ratio <= threshold else (ratio - threshold) / (1.0 - threshold)


class LengthPenalty(RewardComponent):
    type = "length"

    def __init__(self, spec: LengthSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.needs = ("reference",) if spec.relative_to == "reference" else ()

    def score(self, prompts, completions, refs):
        lengths = [len(_tokens(text, self.spec.lang)) for text in completions]
        if self.spec.relative_to == "reference":
            medians = [float(len(_tokens(ref, self.spec.lang))) for ref in refs["reference"]]
        else:
            medians = [float(statistics.median(lengths))] * len(lengths) if lengths else []
        return [length_penalty(n, m, self.spec.start, self.spec.end) for n, m in zip(lengths, medians)]


class RepetitionPenalty(RewardComponent):
    type = "repetition"

    def __init__(self, spec: RepetitionSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec

    def score(self, prompts, completions, refs):
        return [
            repetition_penalty(_tokens(text, self.spec.lang), self.spec.n, self.spec.threshold)
            for text in completions
        ]
