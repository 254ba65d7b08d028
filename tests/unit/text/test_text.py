"""The text layer: script classes, profiles, Tibetan syllables and normalisation, tokenizers."""

from __future__ import annotations

import unicodedata

import pytest

from semrl.text import (
    char_class,
    characters,
    guess_lang,
    metric_tokenizer,
    normalize_tibetan,
    resolve_scripts,
    script_profile,
    spaced_syllables,
    syllables,
    target_share,
    words,
)


@pytest.mark.parametrize(
    ("char", "expected"),
    [
        ("ཀ", "Tibetan"),
        ("\u0f72", "Tibetan"),  # vowel sign i (a combining mark) belongs to its script
        ("\u0fb1", "Tibetan"),  # subjoined ya
        ("中", "Han"),
        ("a", "Latin"),
        ("é", "Latin"),
        ("Ж", "Cyrillic"),
        ("ب", "Arabic"),
        ("क", "Devanagari"),
        ("あ", "Hiragana"),
        ("한", "Hangul"),
        ("\u0f0b", "punct"),  # tsheg
        ("\u0f0d", "punct"),  # shad
        ("\u0f21", "digit"),  # Tibetan digit one
        ("7", "digit"),
        ("。", "punct"),
        (" ", "space"),
        ("\u3000", "space"),
        ("$", "symbol"),
        ("\u0301", "inherited"),
    ],
)
def test_char_class(char, expected):
    assert char_class(char) == expected


def test_profile_counts_letters_only():
    profile = script_profile("བཀྲ་ཤིས། 2024, hi!")
    assert set(profile.letters) == {"Tibetan", "Latin"}
    assert profile.letters["Latin"] == 2
    assert profile.non_letters["digit"] == 4
    assert profile.dominant() == "Tibetan"
    assert abs(sum(profile.shares().values()) - 1.0) < 1e-9


def test_target_share_ignores_digits_and_punctuation():
    bo = resolve_scripts("bo")
    assert target_share("ཁང་པ་ ༢༠༢༤ ། 123 !!", bo) == 1.0
    assert target_share("123 !!", bo) == 0.0  # no letters: nothing is in the target language
    assert 0.3 < target_share("ཁང་པ་ house", bo) < 0.7


def test_resolve_scripts_by_code_and_name():
    assert resolve_scripts("bo") == {"Tibetan"}
    assert resolve_scripts("zh-Hans") == {"Han"}
    assert resolve_scripts(script="tibetan") == {"Tibetan"}
    assert resolve_scripts(script=["Latin", "Cyrillic"]) == {"Latin", "Cyrillic"}
    with pytest.raises(ValueError, match="no script known"):
        resolve_scripts("xx")
    with pytest.raises(ValueError, match="unknown script"):
        resolve_scripts(script="Klingon")


def test_syllables_follow_the_design_rule():
    text = "ཉི་མ་ཤར་སོང་། རྟ༌དཀར༎ཁྱི\u0f14ཆུ\u0f11མི"
    assert syllables(text) == ["ཉི", "མ", "ཤར", "སོང", "རྟ", "དཀར", "ཁྱི", "ཆུ", "མི"]
    assert spaced_syllables("ཉི་མ་ཤར་སོང་།") == "ཉི མ ཤར སོང"
    # only the listed marks split: a Han character glued to a syllable stays in it
    assert syllables("ང་ཚོ་拉萨་ལ") == ["ང", "ཚོ", "拉萨", "ལ"]
    assert syllables("") == []
    assert syllables("་།  ") == []


def test_normalisation_fixes_common_tibetan_variants():
    # decomposed long-i written as one discouraged code point
    assert normalize_tibetan("\u0f40\u0f73") == "\u0f40\u0f71\u0f72"
    # vowel typed before the subjoined consonant: reordered
    assert normalize_tibetan("\u0f40\u0f72\u0fb1") == "\u0f40\u0fb1\u0f72"
    # non-breaking tsheg and doubled tsheg become one plain tsheg
    assert normalize_tibetan("ཀ\u0f0c\u0f0bཁ") == "ཀ\u0f0bཁ"
    # zero-width characters disappear; the result is NFC
    out = normalize_tibetan("ཀ\u200bཁ e\u0301")
    assert out == "ཀཁ é" and unicodedata.is_normalized("NFC", out)


def test_chinese_characters():
    assert characters("我们明天去拉萨。") == list("我们明天去拉萨")
    assert characters("GDP增长了5%") == ["gdp", "增", "长", "了", "5"]


def test_tokenizer_per_language():
    assert metric_tokenizer("bo").name == "bo-syllables"
    assert metric_tokenizer("bo")("ཁང་པ་ཆེན་པོ།") == ["ཁང", "པ", "ཆེན", "པོ"]
    assert metric_tokenizer("zh")("天气很好") == ["天", "气", "很", "好"]
    assert metric_tokenizer("en")("The Dog, the DOG.") == ["the", "dog", "the", "dog"]
    assert words("Hello—world!") == ["hello", "world"]
    assert metric_tokenizer("zh", words_mode="jieba")("我们明天去拉萨") == ["我们", "明天", "去", "拉萨"]


def test_botok_words_never_reach_the_network(tmp_path):
    with pytest.raises(ValueError, match="dialect_pack"):
        metric_tokenizer("bo", words_mode="botok")
    with pytest.raises(ValueError, match="not a local folder"):
        metric_tokenizer("bo", words_mode="botok", dialect_pack=str(tmp_path / "missing"))


def test_guess_lang():
    assert guess_lang("ཉི་མ་ཤར་སོང་།") == "bo"
    assert guess_lang("天气很好") == "zh"
    assert guess_lang("fine weather") == "und"
