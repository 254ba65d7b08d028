"""strip_broken_tail: a character a token limit cut in half leaves the text; nothing else does."""

from __future__ import annotations

import pytest

from semrl.text.decoding import strip_broken_tail

ZH = "今天下午城里下了一场大雨。"  # 3 bytes a character
BO = "དེ་རིང་ཉིན་གུང་གནམ་གཤིས་ཡག་པོ་འདུག"  # 3 bytes a letter or vowel sign


def cut(text: str, n_bytes: int) -> str:
    """What a decode of the first `n_bytes` of `text`'s UTF-8 gives: the cut character as U+FFFD."""
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="replace")


@pytest.mark.parametrize("text", [ZH, BO])
def test_every_cut_inside_a_character_gives_back_the_complete_prefix(text):
    n_chars = len(text)
    broken_cuts = 0
    for k in range(n_chars):
        start = len(text[:k].encode("utf-8"))
        width = len(text[k].encode("utf-8"))
        for inside in range(1, width):  # cuts that split character k
            broken = cut(text, start + inside)
            assert broken.endswith("\ufffd") and broken != text[:k]  # the decode really is broken
            assert strip_broken_tail(broken) == text[:k]
            broken_cuts += 1
    assert broken_cuts == 2 * n_chars  # every character here is 3 bytes: two cuts inside each


def test_several_broken_bytes_at_the_end_all_go():
    # a 4-byte character cut after 3 bytes, following a lone continuation byte: two U+FFFD at the end
    broken = ("雨".encode() + b"\x80" + "𠀀".encode()[:3]).decode("utf-8", errors="replace")
    assert broken.count("\ufffd") >= 2
    assert strip_broken_tail(broken) == "雨"


def test_a_replacement_character_inside_the_text_is_kept():
    inside = ZH[:3] + "\ufffd" + ZH[3:]
    assert strip_broken_tail(inside) == inside
    assert strip_broken_tail(inside + "\ufffd") == inside


def test_complete_text_and_empty_text_are_unchanged():
    for text in (ZH, BO, "The sun has risen. ", "", "  "):
        assert strip_broken_tail(text) == text
    assert strip_broken_tail("\ufffd\ufffd") == ""


def test_whitespace_before_the_broken_character_is_kept():
    """Only what the cut added goes; the space was written (evaluation strips it anyway)."""
    assert strip_broken_tail(cut("雨 雨", 5)) == "雨 "
