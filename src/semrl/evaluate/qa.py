"""Extractive QA scoring, SQuAD/CMRC style: exact match and token F1 after language-aware
normalisation (English: lower case, punctuation and articles removed; Chinese: characters,
punctuation removed; Tibetan: syllables), the best over all gold answers."""

from __future__ import annotations

import re
from collections import Counter

from semrl.text.scripts import char_class
from semrl.text.tokenize import CHARACTER_CODES, TIBETAN_CODES, base_code, metric_tokenizer

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_tokens(text: str, lang: str) -> list[str]:
    code = base_code(lang)
    if code in CHARACTER_CODES:
        return [c.lower() for c in text if char_class(c) not in ("punct", "space", "symbol", "control")]
    if code in TIBETAN_CODES:
        return metric_tokenizer(code)(text)
    cleaned = "".join(" " if char_class(c) in ("punct", "symbol") else c for c in text.lower())
    if code == "en":
        cleaned = _ARTICLES.sub(" ", cleaned)
    return cleaned.split()


def exact_match(prediction: str, answers: list[str], lang: str) -> float:
    pred = normalize_tokens(prediction, lang)
    return float(any(pred == normalize_tokens(a, lang) for a in answers))


def f1_score(prediction: str, answers: list[str], lang: str) -> float:
    pred = normalize_tokens(prediction, lang)
    best = 0.0
    for answer in answers:
        gold = normalize_tokens(answer, lang)
        common = sum((Counter(pred) & Counter(gold)).values())
        if not pred or not gold:
            score = float(pred == gold)
        elif common == 0:
            score = 0.0
        else:
            precision, recall = common / len(pred), common / len(gold)
            score = 2 * precision * recall / (precision + recall)
        best = max(best, score)
    return best


def qa_prompt(context: str, question: str) -> str:
    return f"Context: {context}\nQuestion: {question}\nAnswer:"
