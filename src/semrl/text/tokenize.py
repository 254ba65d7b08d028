"""One metric tokenizer per language code: the unit BLEU/ROUGE/repetition/length count in.

`bo`/`dz`: Tibetan syllables; `zh`/`ja`/`yue`: characters; any other code: lower-cased words
split on whitespace and punctuation. Each tokenizer carries a name that goes into metric
signatures, so a number can always be traced back to how it was tokenized.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from semrl.text.chinese import characters, jieba_words
from semrl.text.scripts import NON_LETTER, char_class, script_profile
from semrl.text.tibetan import normalize_tibetan, syllables

TIBETAN_CODES = frozenset({"bo", "bod", "tib", "dz", "dzo"})
CHARACTER_CODES = frozenset({"zh", "zho", "chi", "cmn", "yue", "wuu", "lzh", "ja"})


def base_code(lang: str | None) -> str:
    return (lang or "").replace("_", "-").split("-")[0].lower()


_SEPARATORS = NON_LETTER - {"digit", "inherited"}


def words(text: str) -> list[str]:
    """Lower-cased words; punctuation and symbols act as separators (so 'end.' == 'end')."""
    cleaned = "".join(" " if char_class(c) in _SEPARATORS else c for c in text)
    return unicodedata.normalize("NFC", cleaned).lower().split()


@dataclass(frozen=True)
class MetricTokenizer:
    """A named text -> tokens function; `name` is recorded in metric signatures."""

    name: str
    lang: str
    fn: Callable[[str], list[str]]

    def __call__(self, text: str) -> list[str]:
        return self.fn(text)

    def tokenize(self, text: str) -> list[str]:  # rouge-score's tokenizer protocol
        return self.fn(text)

    @property
    def joiner(self) -> str:
        """How tokens are written back to text (used to build perturbed candidates)."""
        if base_code(self.lang) in TIBETAN_CODES:
            return "\u0f0b"
        if base_code(self.lang) in CHARACTER_CODES and self.name.startswith("chars"):
            return ""
        return " "


def tibetan_tokens(text: str) -> list[str]:
    return syllables(normalize_tibetan(text))


def botok_words(dialect_pack: str | Path) -> Callable[[str], list[str]]:
    """botok word tokenizer from a *local* dialect pack; never lets botok reach the network."""
    pack = Path(dialect_pack)
    if not pack.is_dir():
        raise ValueError(f"botok dialect pack {pack} is not a local folder (botok would try to download it)")
    from botok import WordTokenizer

    tokenizer = WordTokenizer(dialect_pack_path=pack)

    def tokenize(text: str) -> list[str]:
        pieces = (token.text.strip("\u0f0b\u0f0d ") for token in tokenizer.tokenize(normalize_tibetan(text)))
        return [piece for piece in pieces if piece]

    return tokenize


def metric_tokenizer(
    lang: str | None, words_mode: str | None = None, dialect_pack: str | None = None
) -> MetricTokenizer:
    """The tokenizer for `lang`. `words_mode`: None (default unit), 'jieba' (zh), 'botok' (bo, needs a
    pack)."""
    code = base_code(lang)
    if words_mode == "jieba":
        return MetricTokenizer("jieba-words", code, jieba_words)
    if words_mode == "botok":
        if dialect_pack is None:
            raise ValueError("the botok tokenizer needs dialect_pack: a local folder (offline)")
        return MetricTokenizer("botok-words", code, botok_words(dialect_pack))
    if words_mode is not None:
        raise ValueError(f"unknown word tokenizer {words_mode!r} (choose jieba or botok)")
    if code in TIBETAN_CODES:
        return MetricTokenizer("bo-syllables", code, tibetan_tokens)
    if code in CHARACTER_CODES:
        return MetricTokenizer("chars", code, characters)
    return MetricTokenizer("words", code, words)


def guess_lang(text: str) -> str:
    """A language code good enough to pick a tokenizer for text of unknown language."""
    script = script_profile(text).dominant()
    if script == "Tibetan":
        return "bo"
    if script in {"Han", "Hiragana", "Katakana"}:
        return "zh"
    return "und"
