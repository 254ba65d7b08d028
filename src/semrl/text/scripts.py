"""Which writing system each character belongs to, and the script profile of a string.

The language reward and the language-consistency metric ask one question: are the *letters* of
an output in the target script? Digits, punctuation, symbols and spaces are set apart first
(by Unicode general category), so "2024", "。" or a Tibetan shad never count for or against a
language. Letters and combining marks are then assigned to a script by Unicode block ranges.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections import Counter
from dataclasses import dataclass

# Non-letter classes.
DIGIT = "digit"
PUNCT = "punct"
SPACE = "space"
SYMBOL = "symbol"
CONTROL = "control"
INHERITED = "inherited"  # generic combining marks (U+0300…): not a letter of any script
OTHER = "Other"  # a letter outside every range below
NON_LETTER = frozenset({DIGIT, PUNCT, SPACE, SYMBOL, CONTROL, INHERITED})

# (first, last, script) for letters and script-specific combining marks; sorted, not overlapping.
_RANGES: list[tuple[int, int, str]] = sorted(
    [
        (0x0041, 0x024F, "Latin"),
        (0x0250, 0x02AF, "Latin"),  # IPA extensions
        (0x0300, 0x036F, INHERITED),
        (0x0370, 0x03FF, "Greek"),
        (0x0400, 0x052F, "Cyrillic"),
        (0x0530, 0x058F, "Armenian"),
        (0x0590, 0x05FF, "Hebrew"),
        (0x0600, 0x06FF, "Arabic"),
        (0x0700, 0x074F, "Syriac"),
        (0x0750, 0x077F, "Arabic"),
        (0x0780, 0x07BF, "Thaana"),
        (0x08A0, 0x08FF, "Arabic"),
        (0x0900, 0x097F, "Devanagari"),
        (0x0980, 0x09FF, "Bengali"),
        (0x0A00, 0x0A7F, "Gurmukhi"),
        (0x0A80, 0x0AFF, "Gujarati"),
        (0x0B00, 0x0B7F, "Oriya"),
        (0x0B80, 0x0BFF, "Tamil"),
        (0x0C00, 0x0C7F, "Telugu"),
        (0x0C80, 0x0CFF, "Kannada"),
        (0x0D00, 0x0D7F, "Malayalam"),
        (0x0D80, 0x0DFF, "Sinhala"),
        (0x0E00, 0x0E7F, "Thai"),
        (0x0E80, 0x0EFF, "Lao"),
        (0x0F00, 0x0FFF, "Tibetan"),
        (0x1000, 0x109F, "Myanmar"),
        (0x10A0, 0x10FF, "Georgian"),
        (0x1100, 0x11FF, "Hangul"),
        (0x1200, 0x139F, "Ethiopic"),
        (0x13A0, 0x13FF, "Cherokee"),
        (0x1780, 0x17FF, "Khmer"),
        (0x1800, 0x18AF, "Mongolian"),
        (0x1AB0, 0x1AFF, INHERITED),
        (0x1C80, 0x1C8F, "Cyrillic"),
        (0x1C90, 0x1CBF, "Georgian"),
        (0x1D00, 0x1DBF, "Latin"),  # phonetic extensions
        (0x1DC0, 0x1DFF, INHERITED),
        (0x1E00, 0x1EFF, "Latin"),
        (0x1F00, 0x1FFF, "Greek"),
        (0x20D0, 0x20FF, INHERITED),
        (0x2C00, 0x2C5F, "Glagolitic"),
        (0x2C60, 0x2C7F, "Latin"),
        (0x2D80, 0x2DDF, "Ethiopic"),
        (0x2DE0, 0x2DFF, "Cyrillic"),
        (0x2E80, 0x2FDF, "Han"),  # radicals
        (0x3005, 0x3007, "Han"),  # 々 〆 〇
        (0x3021, 0x3029, "Han"),  # Hangzhou numerals
        (0x3038, 0x303B, "Han"),
        (0x3040, 0x309F, "Hiragana"),
        (0x30A0, 0x30FF, "Katakana"),
        (0x3100, 0x312F, "Bopomofo"),
        (0x3130, 0x318F, "Hangul"),
        (0x31A0, 0x31BF, "Bopomofo"),
        (0x31F0, 0x31FF, "Katakana"),
        (0x3400, 0x4DBF, "Han"),
        (0x4E00, 0x9FFF, "Han"),
        (0xA000, 0xA4CF, "Yi"),
        (0xA640, 0xA69F, "Cyrillic"),
        (0xA720, 0xA7FF, "Latin"),
        (0xA960, 0xA97F, "Hangul"),
        (0xAB30, 0xAB6F, "Latin"),
        (0xAC00, 0xD7FF, "Hangul"),
        (0xF900, 0xFAFF, "Han"),
        (0xFB00, 0xFB06, "Latin"),
        (0xFB1D, 0xFB4F, "Hebrew"),
        (0xFB50, 0xFDFF, "Arabic"),
        (0xFE20, 0xFE2F, INHERITED),
        (0xFE70, 0xFEFF, "Arabic"),
        (0xFF21, 0xFF3A, "Latin"),  # fullwidth A-Z
        (0xFF41, 0xFF5A, "Latin"),  # fullwidth a-z
        (0xFF66, 0xFF9F, "Katakana"),  # halfwidth
        (0xFFA0, 0xFFDC, "Hangul"),  # halfwidth
        (0x16FE0, 0x16FFF, "Han"),
        (0x1B000, 0x1B16F, "Hiragana"),
        (0x20000, 0x323AF, "Han"),  # CJK extensions B–H and compatibility supplement
    ]
)
_STARTS = [first for first, _, _ in _RANGES]

# Language code -> the scripts its letters are written in (ISO 639-1/-3 codes).
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{code: frozenset({"Tibetan"}) for code in ("bo", "bod", "tib", "dz", "dzo")},
    **{code: frozenset({"Han"}) for code in ("zh", "zho", "chi", "cmn", "yue", "wuu", "lzh")},
    "ja": frozenset({"Han", "Hiragana", "Katakana"}),
    "ko": frozenset({"Hangul", "Han"}),
    **{
        code: frozenset({"Latin"})
        for code in (
            "en",
            "es",
            "it",
            "fr",
            "de",
            "pt",
            "nl",
            "sv",
            "da",
            "no",
            "nb",
            "fi",
            "pl",
            "cs",
            "sk",
            "ro",
            "hu",
            "tr",
            "id",
            "ms",
            "vi",
            "sw",
            "ca",
            "eu",
            "gl",
            "hr",
            "sl",
            "et",
            "lv",
            "lt",
            "tl",
            "az",
            "uz",
            "sq",
            "is",
            "ga",
            "cy",
            "af",
            "eo",
            "la",
        )
    },
    **{
        code: frozenset({"Cyrillic"}) for code in ("ru", "uk", "be", "bg", "mk", "sr", "kk", "ky", "tg", "mn")
    },
    **{code: frozenset({"Arabic"}) for code in ("ar", "fa", "ur", "ps", "ug", "ckb", "sd")},
    **{code: frozenset({"Devanagari"}) for code in ("hi", "mr", "ne", "sa")},
    "el": frozenset({"Greek"}),
    "he": frozenset({"Hebrew"}),
    "yi": frozenset({"Hebrew"}),
    "hy": frozenset({"Armenian"}),
    "ka": frozenset({"Georgian"}),
    "th": frozenset({"Thai"}),
    "lo": frozenset({"Lao"}),
    "my": frozenset({"Myanmar"}),
    "km": frozenset({"Khmer"}),
    "bn": frozenset({"Bengali"}),
    "pa": frozenset({"Gurmukhi"}),
    "gu": frozenset({"Gujarati"}),
    "or": frozenset({"Oriya"}),
    "ta": frozenset({"Tamil"}),
    "te": frozenset({"Telugu"}),
    "kn": frozenset({"Kannada"}),
    "ml": frozenset({"Malayalam"}),
    "si": frozenset({"Sinhala"}),
    "am": frozenset({"Ethiopic"}),
    "ti": frozenset({"Ethiopic"}),
}
SCRIPTS: frozenset[str] = frozenset(script for _, _, script in _RANGES if script != INHERITED)


def char_class(char: str) -> str:
    """Script name for a letter or mark, else one of the non-letter classes."""
    category = unicodedata.category(char)
    major = category[0]
    if major == "N":
        return DIGIT
    if major == "P":
        return PUNCT
    if major == "Z" or char.isspace():
        return SPACE
    if major == "S":
        return SYMBOL
    if major == "C":
        return CONTROL
    code = ord(char)
    index = bisect.bisect_right(_STARTS, code) - 1
    if index >= 0:
        first, last, script = _RANGES[index]
        if first <= code <= last:
            return script
    return INHERITED if major == "M" else OTHER


@dataclass(frozen=True)
class ScriptProfile:
    """Letter counts per script; non-letters are counted apart and never change the shares."""

    letters: Counter[str]
    non_letters: Counter[str]

    @property
    def n_letters(self) -> int:
        return sum(self.letters.values())

    def shares(self) -> dict[str, float]:
        total = self.n_letters
        return {script: count / total for script, count in self.letters.most_common()} if total else {}

    def share_of(self, scripts: frozenset[str] | set[str]) -> float:
        """Share of letters written in any of `scripts`; 0.0 when there are no letters at all."""
        total = self.n_letters
        if not total:
            return 0.0
        return sum(count for script, count in self.letters.items() if script in scripts) / total

    def dominant(self) -> str | None:
        return self.letters.most_common(1)[0][0] if self.letters else None


def script_profile(text: str) -> ScriptProfile:
    letters: Counter[str] = Counter()
    non_letters: Counter[str] = Counter()
    for char in text:
        klass = char_class(char)
        (non_letters if klass in NON_LETTER else letters)[klass] += 1
    return ScriptProfile(letters=letters, non_letters=non_letters)


def resolve_scripts(lang: str | None = None, script: str | list[str] | None = None) -> frozenset[str]:
    """Target scripts from a language code (`bo`, `zh-Hans`) or explicit script name(s) (`Tibetan`)."""
    if script is not None:
        names = [script] if isinstance(script, str) else list(script)
        by_lower = {name.lower(): name for name in SCRIPTS | {OTHER}}
        unknown = [name for name in names if name.lower() not in by_lower]
        if unknown:
            raise ValueError(f"unknown script {unknown[0]!r}; known: {', '.join(sorted(SCRIPTS))}")
        return frozenset(by_lower[name.lower()] for name in names)
    if lang is None:
        raise ValueError("give a language code or a script")
    base = lang.replace("_", "-").split("-")[0].lower()
    if base not in LANGUAGE_SCRIPTS:
        raise ValueError(
            f"no script known for language code {lang!r}; give the script instead (e.g. script: Latin)"
        )
    return LANGUAGE_SCRIPTS[base]


def target_share(text: str, scripts: frozenset[str]) -> float:
    """Share of the letters of `text` that are in the target scripts (0.0 for text without letters)."""
    return script_profile(text).share_of(scripts)
