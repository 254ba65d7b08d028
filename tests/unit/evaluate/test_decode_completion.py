"""decode_completion (evaluation's and the cold start's decode): ids a token limit cut inside a
character decode to the complete prefix, with real byte-level BPE tokenizers."""

from __future__ import annotations

import pytest

from conftest import sample_lines
from semrl.evaluate.generation import GenerationSettings, decode_completion, generate

ZH = "今天下午城里下了一场大雨。"
BO = "དེ་རིང་ཉིན་གུང་གནམ་གཤིས་ཡག་པོ་འདུག"


def complete_prefix(tokenizer, text: str, ids: list[int]) -> str:
    """The characters of `text` whose every byte is in `ids`: a byte-level token spells one byte
    with one character, so the tokens' lengths add up to the bytes the ids hold."""
    n_bytes = sum(len(token) for token in tokenizer.convert_ids_to_tokens(ids))
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")


def byte_token_ids(tokenizer, text: str) -> list[int]:
    """`text` as the tokenizer's single-byte tokens (a byte-level vocabulary holds all 256): what a
    policy emits for a character its merges do not cover."""
    from tokenizers import pre_tokenizers

    [(spelled, _)] = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    ids = tokenizer.convert_tokens_to_ids(list(spelled))
    assert tokenizer.unk_token_id not in ids and tokenizer.decode(ids) == text
    return ids


def check_every_cut(tokenizer, text: str, ids: list[int]) -> int:
    """decode_completion of every cut of `ids` is the complete prefix; returns how many cuts split
    a character (the raw decode ending in U+FFFD)."""
    broken = 0
    for k in range(len(ids) + 1):
        raw = tokenizer.decode(ids[:k], skip_special_tokens=True)
        expected = complete_prefix(tokenizer, text, ids[:k])
        if raw.endswith("\ufffd"):
            broken += 1
            assert raw.rstrip("\ufffd") == expected
        else:
            assert raw == expected
        decoded = decode_completion(tokenizer, ids[:k])
        assert decoded == expected and not decoded.endswith("\ufffd")
    return broken


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_lm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm)


def test_tiny_tokenizer_cut_chinese(tiny_tokenizer):
    ids = tiny_tokenizer(ZH, add_special_tokens=False)["input_ids"]
    assert check_every_cut(tiny_tokenizer, ZH, ids) > 0  # its merges leave some characters in bytes


def test_tiny_tokenizer_cut_tibetan_byte_tokens(tiny_tokenizer):
    # its merges hold every Tibetan letter of this line whole, so spell the line in byte tokens
    assert check_every_cut(tiny_tokenizer, BO, byte_token_ids(tiny_tokenizer, BO)) == 2 * len(BO)


def test_special_tokens_after_the_cut_are_skipped(tiny_tokenizer):
    ids = byte_token_ids(tiny_tokenizer, ZH)[:4] + [tiny_tokenizer.eos_token_id, tiny_tokenizer.pad_token_id]
    assert decode_completion(tiny_tokenizer, ids) == ZH[:1]


def test_smollm2_tokenizer_cuts_chinese_and_tibetan():
    from semrl.models.gguf import missing_real_model, smollm2_folder

    if missing_real_model():
        pytest.skip(missing_real_model())
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder())
    for text in (ZH, BO):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert check_every_cut(tokenizer, text, ids) > 0


def test_generate_never_ends_in_a_broken_character(tiny_lm, tiny_tokenizer):
    """The untrained tiny model samples byte tokens freely: decoded without the strip, half of these
    3-token completions end in U+FFFD (seed 0)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    prompts = sample_lines("zh.txt")[:8]
    for n in (1, 2, 3):
        settings = GenerationSettings(max_new_tokens=n, do_sample=True)
        outputs = generate(model, tiny_tokenizer, prompts, settings)
        assert not [text for text in outputs if text.endswith("\ufffd")]
