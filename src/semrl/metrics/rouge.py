"""ROUGE-L over language-aware tokens, via rouge-score with our tokenizer.

rouge-score's default tokenizer keeps only [a-z0-9], so Chinese and Tibetan would score 0;
we pass the metric tokenizer of the language (Tibetan syllables, Chinese characters, words).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from semrl.metrics.surface import CorpusScore
from semrl.text.tokenize import metric_tokenizer

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer


@cache
def _scorer(lang: str | None, words_mode: str | None) -> RougeScorer:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"], tokenizer=metric_tokenizer(lang, words_mode))


def sentence_rouge_l(hyp: str, ref: str, lang: str | None, words_mode: str | None = None) -> float:
    """F1 of the longest common subsequence, in [0, 1]."""
    return float(_scorer(lang, words_mode).score(ref, hyp)["rougeL"].fmeasure)


def corpus_rouge_l(
    hyps: Sequence[str], refs: Sequence[str], lang: str | None, words_mode: str | None = None
) -> CorpusScore:
    """Mean sentence ROUGE-L F1 on 0-100, and its signature."""
    scores = [sentence_rouge_l(h, r, lang, words_mode) for h, r in zip(hyps, refs, strict=True)]
    value = 100.0 * sum(scores) / len(scores) if scores else 0.0
    tokenizer = metric_tokenizer(lang, words_mode)
    return CorpusScore(value, f"rougeL|f1|mean|tok:{tokenizer.name}|lang:{tokenizer.lang or 'und'}")
