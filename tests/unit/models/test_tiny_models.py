"""The models semrl builds locally: tokenizers trained on the data, tiny random models of each family
saved as plain `from_pretrained` folders, and the small helpers around them."""

from __future__ import annotations

import json

import pytest

from semrl.errors import UserError
from semrl.models.families import FAMILIES, build_tiny_family, family_tokenizer
from semrl.models.gguf import models_cache
from semrl.models.loading import as_trained
from semrl.models.tiny import TinySpec, build_tiny_lm, train_tokenizer

TEXTS = ["བཀྲ་ཤིས་བདེ་ལེགས། ཁྱེད་རང་སྐུ་གཟུགས་བདེ་པོ་ཡིན་པས།", "你好，今天天气很好。", "The cat sat on the mat."] * 20


def test_the_tokenizer_round_trips_tibetan_chinese_and_english_with_its_special_tokens():
    tokenizer = train_tokenizer(TEXTS, vocab_size=400)
    for text in TEXTS[:3]:
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids) == text  # byte-level: nothing becomes unknown
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token) == (
        "<|pad|>",
        "<|bos|>",
        "<|eos|>",
    )
    assert len(tokenizer) <= 400
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "hi" in chat and chat.endswith("<|assistant|>")


def test_a_tiny_lm_is_a_plain_folder_that_transformers_loads(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = TinySpec(vocab_size=400, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, seed=3)
    out = build_tiny_lm(tmp_path / "lm", TEXTS, spec)
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))  # safetensors only
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    assert model.config.vocab_size == len(tokenizer) and model.config.tie_word_embeddings
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    again = build_tiny_lm(tmp_path / "again", TEXTS, spec)  # the same seed builds the same weights
    assert (again / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


@pytest.mark.parametrize("name", ["qwen3", "gemma", "mistral"])
def test_each_family_tokenizer_has_that_familys_tokens_and_template(name):
    family = FAMILIES[name]
    tokenizer = family_tokenizer(name, TEXTS, vocab_size=400)
    assert tokenizer.eos_token == family.tokens["eos"] and tokenizer.pad_token == family.tokens["pad"]
    ids = tokenizer("The cat")["input_ids"]
    assert (ids[0] == tokenizer.bos_token_id) == family.bos_first
    for token in family.added:  # Qwen3's <think>: added but not special, so decoding keeps it
        assert tokenizer.decode(tokenizer(token)["input_ids"], skip_special_tokens=True) == token
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "hi" in prompt


def test_a_family_model_stops_at_its_end_of_turn_token(tmp_path):
    out = build_tiny_family(
        "gemma",
        tmp_path / "gemma",
        TEXTS,
        TinySpec(vocab_size=400, hidden_size=32, intermediate_size=64, num_layers=1),
    )
    generation = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    tokenizer = family_tokenizer("gemma", TEXTS, vocab_size=400)
    assert generation["eos_token_id"] == [
        tokenizer.eos_token_id,
        tokenizer.convert_tokens_to_ids("<end_of_turn>"),
    ]
    with pytest.raises(UserError, match="model.tiny.family: unknown family 'gpt2'"):
        build_tiny_family("gpt2", tmp_path / "x", TEXTS)


def test_as_trained_appends_eos_once():
    tokenizer = train_tokenizer(TEXTS, vocab_size=400)
    assert as_trained(tokenizer, "a reply") == "a reply<|eos|>"
    assert as_trained(tokenizer, "a reply<|eos|>") == "a reply<|eos|>"


def test_converted_models_live_under_semrl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMRL_CACHE", str(tmp_path / "cache"))
    assert models_cache() == tmp_path / "cache" / "models"
