"""Chinese: characters are the metric unit (as in CMRC and sacrebleu's `zh` tokenizer); jieba
words are an option for users who want word-level ROUGE."""

from __future__ import annotations

import re

from semrl.text.scripts import NON_LETTER, char_class

_CJK_SCRIPTS = frozenset({"Han", "Hiragana", "Katakana", "Bopomofo"})


def characters(text: str) -> list[str]:
    """Each CJK character is a token; runs of other letters/digits (e.g. 'GDP', '2024') stay whole
    and are lower-cased; punctuation, symbols and spaces separate tokens and are dropped."""
    tokens: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            tokens.append("".join(run).lower())
            run.clear()

    for char in text:
        klass = char_class(char)
        if klass in _CJK_SCRIPTS:
            flush()
            tokens.append(char)
        elif klass in NON_LETTER and klass != "digit" and klass != "inherited":
            flush()
        else:
            run.append(char)
    flush()
    return tokens


_PUNCT_OR_SPACE = re.compile(r"^[\W_]+$")


def jieba_words(text: str) -> list[str]:
    """jieba word segmentation (optional; loads its dictionary on first use, offline)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [word.lower() for word in jieba.lcut(text) if word.strip() and not _PUNCT_OR_SPACE.match(word)]
