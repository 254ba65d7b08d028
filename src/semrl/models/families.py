"""Tiny random models of the architectures users fine-tune: Qwen3, Qwen2.5, Llama 3, Gemma 3
(text) and Mistral, each with a byte-level BPE tokenizer semrl trains on the given texts, the
family's special tokens and a compact chat template in the family's format.

They exist so tests can run the whole pipeline (SFT -> GRPO with LoRA -> merge -> eval) on each
architecture's quirks without downloads: Qwen3's `<think>` tags (added tokens that are NOT
special, so decoding keeps them), Llama 3 and Mistral without a pad token, Gemma without a system
role and with turns that end in `<end_of_turn>` rather than eos, tied embeddings (Qwen small
models, Gemma) and untied ones (Llama 3 8B, Mistral), grouped-query attention.
`build_tiny_family("llama", ...)` is the plain tiny Llama of models/tiny.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from semrl.errors import UserError
from semrl.files import publish_folder, read_text
from semrl.models.tiny import TinySpec, build_tiny_lm, llama_config, train_tokenizer

# Qwen3: ChatML; the final assistant turn carries a (possibly empty) <think> block, as the real
# template renders it; `enable_thinking=false` pre-fills an empty block in the generation prompt.
QWEN3_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}<|im_start|>assistant\n"
    "{% set c = m['content'] %}{% if '</think>' in c %}"
    "{% set c = c.split('</think>')[-1].lstrip('\n') %}{% endif %}"
    "{% if loop.last %}<think>\n\n</think>\n\n{% endif %}{{ c }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
# Qwen2.5: ChatML with a default system message when none is given.
QWEN2_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# Gemma 3: no system role; a system message is merged into the first user turn. The model's
# role is "model" and turns end with <end_of_turn> (not eos).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set prefix = '' %}{% set ms = messages %}"
    "{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
    "{% set ms = messages[1:] %}{% endif %}"
    "{% for m in ms %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ prefix if loop.first else '' }}{{ m['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# Mistral (v0.3 style): a system message is prepended to the last user message.
MISTRAL_TEMPLATE = (
    "{% set sys = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}"
    "{% set ms = messages[1:] if messages[0]['role'] == 'system' else messages %}"
    "{{ bos_token }}{% for m in ms %}"
    "{% if m['role'] == 'user' %}[INST] {% if sys and loop.revindex <= 2 %}{{ sys }}\n\n{% endif %}"
    "{{ m['content'] }}[/INST]"
    "{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class Family:
    config: str  # transformers config class
    special: list[str]  # special tokens (skipped when decoding)
    tokens: dict[str, str | None]  # bos/eos/pad token names; None: the family has none
    template: str | None
    tie: bool
    stop: list[str] = field(default_factory=list)  # extra end-of-turn tokens in generation_config
    added: list[str] = field(default_factory=list)  # added tokens that are not special (kept when decoding)
    extra: tuple[str, ...] = ()  # config settings set to the tiny head size
    bos_first: bool = False  # the tokenizer adds bos when it encodes text (Llama 3, Gemma, Mistral)


FAMILIES: dict[str, Family] = {
    "qwen3": Family(
        "Qwen3Config",
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>"},
        QWEN3_TEMPLATE,
        tie=True,
        stop=["<|endoftext|>"],
        added=["<think>", "</think>"],
        extra=("head_dim",),
    ),
    "qwen2": Family(
        "Qwen2Config",
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>"},
        QWEN2_TEMPLATE,
        tie=True,
        stop=["<|endoftext|>"],
    ),
    "llama3": Family(
        "LlamaConfig",
        ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": None},
        LLAMA3_TEMPLATE,
        tie=False,
        stop=["<|end_of_text|>"],
        bos_first=True,
    ),
    "gemma": Family(
        "Gemma3TextConfig",
        ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
        {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>", "unk": "<unk>"},
        GEMMA_TEMPLATE,
        tie=True,
        stop=["<end_of_turn>"],
        extra=("head_dim", "query_pre_attn_scalar"),
        bos_first=True,
    ),
    "mistral": Family(
        "MistralConfig",
        ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"],
        {"bos": "<s>", "eos": "</s>", "pad": None, "unk": "<unk>"},
        MISTRAL_TEMPLATE,
        tie=False,
        bos_first=True,
    ),
}
FAMILY_NAMES = ("llama", *FAMILIES)


def family_tokenizer(name: str, texts: Iterable[str], vocab_size: int = 512):
    """The family's tokenizer: byte-level BPE trained on `texts` with the family's special tokens."""
    from tokenizers import AddedToken

    family = FAMILIES[name]
    names = {f"{role}_token": token for role, token in family.tokens.items() if token is not None}
    tokenizer = train_tokenizer(texts, vocab_size, special_tokens=family.special, **names)
    if family.bos_first:  # as the real tokenizers do: plain tokenization starts with bos
        from tokenizers.processors import TemplateProcessing

        bos = family.tokens["bos"]
        tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
            single=f"{bos} $A",
            pair=f"{bos} $A {bos} $B",
            special_tokens=[(bos, tokenizer.convert_tokens_to_ids(bos))],
        )
    if family.added:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in family.added])
    tokenizer.chat_template = family.template
    return tokenizer


_DEFAULT_SPEC = TinySpec()  # frozen, so one shared default is safe


def build_tiny_family(
    name: str, out_dir: str | Path, texts: Iterable[str], spec: TinySpec = _DEFAULT_SPEC
) -> Path:
    """A tiny random model of family `name` (see FAMILIES; "llama" is models/tiny.py's) in `out_dir`."""
    if name == "llama":
        return build_tiny_lm(out_dir, texts, spec)
    if name not in FAMILIES:
        raise UserError(f"model.tiny.family: unknown family {name!r}; choose {', '.join(FAMILY_NAMES)}")
    import torch
    from transformers import AutoModelForCausalLM

    family = FAMILIES[name]
    torch.manual_seed(spec.seed)
    tokenizer = family_tokenizer(name, texts, spec.vocab_size)
    ids = {
        f"{role}_token_id": tokenizer.convert_tokens_to_ids(token) if token else None
        for role, token in family.tokens.items()
        if role != "unk"
    }
    model = AutoModelForCausalLM.from_config(family_config(name, spec, len(tokenizer), **ids))
    eos = [tokenizer.eos_token_id] + [tokenizer.convert_tokens_to_ids(t) for t in family.stop]
    model.generation_config.eos_token_id = eos if len(eos) > 1 else eos[0]
    model.generation_config.bos_token_id = ids["bos_token_id"]
    model.generation_config.pad_token_id = ids["pad_token_id"]
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def family_config(name: str, spec: TinySpec, vocab_size: int | None = None, **extra):
    """The transformers config of a tiny model of family `name` and `spec`'s sizes (module names and
    sizes are read from it unbuilt); the builder passes its tokenizer's size and token ids."""
    if name == "llama":
        return llama_config(spec, vocab_size, **extra)
    import transformers

    family = FAMILIES[name]
    return getattr(transformers, family.config)(
        vocab_size=vocab_size or spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=max(1, spec.num_heads // 2),  # grouped-query attention, as these families use
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=family.tie,
        **extra,
        # head_dim (Qwen3, Gemma default to 128/256) and Gemma's attention scale follow the tiny sizes
        **{key: spec.hidden_size // spec.num_heads for key in family.extra},
    )


def build_tiny_base(target: Path, spec, seed: int, texts: list[str]) -> str:
    """A `model.tiny` base built once into `target` (written beside it, then renamed into place)."""
    if (target / "config.json").exists():
        return str(target)
    corpus = texts + [read_text(path) for path in spec.corpus]
    with publish_folder(target, replace=False) as tmp:
        build_tiny_family(getattr(spec, "family", "llama"), tmp, corpus, spec.tiny_spec(seed))
    return str(target)
