"""Metrics equal the field's reference implementations on the same strings."""

from __future__ import annotations

import pytest
from sacrebleu.metrics import BLEU, CHRF

from conftest import sample_lines
from semrl.metrics import (
    corpus_bleu,
    corpus_chrf,
    corpus_rouge_l,
    language_consistency,
    sentence_bleu,
    sentence_chrf,
    sentence_rouge_l,
)
from semrl.text import syllables

ZH_HYP, ZH_REF = sample_lines("zh.hyp.txt"), sample_lines("zh.txt")
BO_HYP, BO_REF = sample_lines("bo.hyp.txt"), sample_lines("bo.txt")


def test_chinese_bleu_and_chrf_equal_sacrebleu():
    assert corpus_bleu(ZH_HYP, ZH_REF, "zh").score == pytest.approx(
        BLEU(tokenize="zh").corpus_score(ZH_HYP, [ZH_REF]).score
    )
    assert corpus_chrf(ZH_HYP, ZH_REF, "zh").score == pytest.approx(
        CHRF(word_order=2).corpus_score(ZH_HYP, [ZH_REF]).score
    )
    assert "tok:zh" in corpus_bleu(ZH_HYP, ZH_REF, "zh").signature


def test_tibetan_bleu_and_chrf_are_sacrebleu_on_spaced_syllables():
    spaced_hyp = [" ".join(syllables(t)) for t in BO_HYP]
    spaced_ref = [" ".join(syllables(t)) for t in BO_REF]
    bleu = corpus_bleu(BO_HYP, BO_REF, "bo")
    assert bleu.score == pytest.approx(BLEU(tokenize="none").corpus_score(spaced_hyp, [spaced_ref]).score)
    assert bleu.signature.startswith("pre:bo-syllables|") and "tok:none" in bleu.signature
    assert corpus_chrf(BO_HYP, BO_REF, "bo").score == pytest.approx(
        CHRF(word_order=2).corpus_score(spaced_hyp, [spaced_ref]).score
    )
    # the syllable rule matters: on raw strings sacrebleu would see one "word" per sentence
    assert bleu.score != pytest.approx(BLEU(tokenize="none").corpus_score(BO_HYP, [BO_REF]).score)


def test_sentence_level_matches_sacrebleu():
    hyp, ref = "ཁྱི་ནག་པོ་ཆུ་འཐུང་གི་འདུག", "ཁྱི་ནག་པོས་ཆུ་འཐུང་གི་འདུག"
    expected = (
        BLEU(tokenize="none", effective_order=True)
        .sentence_score(" ".join(syllables(hyp)), [" ".join(syllables(ref))])
        .score
    )
    assert sentence_bleu(hyp, ref, "bo") == pytest.approx(expected)
    assert sentence_bleu(ref, ref, "bo") == pytest.approx(100.0)
    assert sentence_bleu("", ref, "bo") == 0.0
    assert sentence_chrf(ref, ref, "bo") == pytest.approx(100.0)


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@pytest.mark.parametrize(("hyp", "ref"), list(zip(BO_HYP, BO_REF, strict=True)))
def test_tibetan_rouge_l_is_lcs_f1_over_syllables(hyp, ref):
    h, r = syllables(hyp), syllables(ref)
    lcs = _lcs(h, r)
    precision, recall = lcs / len(h), lcs / len(r)
    f1 = 0.0 if lcs == 0 else 2 * precision * recall / (precision + recall)
    assert sentence_rouge_l(hyp, ref, "bo") == pytest.approx(f1)


def test_chinese_rouge_l_counts_characters():
    # rouge-score's own tokenizer would give 0 for Chinese; ours counts characters
    assert sentence_rouge_l("今天天气不错。", "今天天气很好。", "zh") == pytest.approx(4 / 6)
    assert corpus_rouge_l(ZH_HYP, ZH_REF, "zh").score > 50


def test_language_consistency_catches_code_mixing():
    result = language_consistency(ZH_HYP, "zh")
    assert result.score == pytest.approx(11 / 12)  # one output mixes Tibetan into Chinese
    assert language_consistency(BO_HYP, "bo").score == pytest.approx(11 / 12)
    assert language_consistency(BO_REF, "bo").score == 1.0


def test_semantic_similarity_separates_meanings():
    from semrl.metrics.semantic import pairwise_similarity, semantic_similarity

    refs = sample_lines("en.txt")
    paraphrases = sample_lines("en.paraphrase.txt")
    shifted = refs[1:] + refs[:1]
    same = pairwise_similarity(paraphrases, refs, "default")
    other = pairwise_similarity(shifted, refs, "default")
    assert all(-1.0 <= s <= 1.0 for s in same + other)
    assert sum(s > o for s, o in zip(same, other, strict=True)) == len(refs)
    assert semantic_similarity(refs, refs, "default").score == pytest.approx(1.0, abs=1e-4)
    assert pairwise_similarity(["", "x"], ["a b", "a b"], "default")[0] == 0.0
