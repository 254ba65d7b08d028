"""Tibetan: syllable segmentation (the unit of BLEU/ROUGE for Tibetan) and normalisation.

Tibetan writes no spaces between words; the tsheg (་) ends every syllable and the shad (།)
ends a clause. semrl's metrics therefore count syllables. The rule (README: Metrics): split on
tsheg U+0F0B/U+0F0C, the shad family U+0F0D–U+0F12, U+0F14 and whitespace, and drop those marks.
Nothing else is split, so a Han character glued to a syllable stays in it.
"""

from __future__ import annotations

import re
import unicodedata

TSHEG = "\u0f0b"
SYLLABLE_BREAKS = "\u0f0b\u0f0c\u0f0d\u0f0e\u0f0f\u0f10\u0f11\u0f12\u0f14"
_SPLIT = re.compile(f"[{SYLLABLE_BREAKS}\\s]+")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_REPEATED_TSHEG = re.compile(f"{TSHEG}{{2,}}")


def syllables(text: str) -> list[str]:
    """Tibetan syllables of `text`, marks dropped, empty pieces removed."""
    return [piece for piece in _SPLIT.split(text) if piece]


def spaced_syllables(text: str) -> str:
    """Syllables joined by single spaces: the string sacrebleu sees for Tibetan (tokenize='none')."""
    return " ".join(syllables(text))


def normalize_tibetan(text: str) -> str:
    """NFC plus the usual Tibetan fixes.

    botok's `normalize_unicode` (offline, no dialect pack) decomposes the discouraged vowel signs
    (U+0F73, U+0F75, U+0F81) and deprecated ones (U+0F77, U+0F79), puts subjoined consonants
    before vowel signs when typed in the wrong order, and repairs a few invalid sequences. We
    then apply NFC, drop zero-width characters, map the non-breaking tsheg U+0F0C to U+0F0B and
    collapse repeated tshegs, so that texts typed differently compare equal.
    """
    from botok import normalize_unicode  # light: botok's normaliser needs no dialect pack

    text = _ZERO_WIDTH.sub("", text)
    if any("\u0f00" <= char <= "\u0fff" for char in text):
        text = normalize_unicode(text, form="nfd")
        text = text.replace("\u0f0c", TSHEG)
        text = _REPEATED_TSHEG.sub(TSHEG, text)
    return unicodedata.normalize("NFC", text)
