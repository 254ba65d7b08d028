"""Language-aware metrics: BLEU, chrF++ (sacrebleu), ROUGE-L (rouge-score), semantic similarity,
language consistency. Heavy dependencies load only when the metric that needs them runs."""

from semrl.metrics.language import language_consistency, passes_language
from semrl.metrics.rouge import corpus_rouge_l, sentence_rouge_l
from semrl.metrics.surface import CorpusScore, corpus_bleu, corpus_chrf, sentence_bleu, sentence_chrf

__all__ = [
    "CorpusScore",
    "corpus_bleu",
    "corpus_chrf",
    "corpus_rouge_l",
    "language_consistency",
    "passes_language",
    "sentence_bleu",
    "sentence_chrf",
    "sentence_rouge_l",
]
