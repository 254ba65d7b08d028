"""Tiny Llama-config models with a byte-level BPE tokenizer trained on the user's own text.

Why Llama: with a Qwen2 config, AutoTokenizer swaps in Qwen's pre-tokenizer and silently
changes token ids of a self-built tokenizer; a Llama config keeps ours. Everything is saved
with save_pretrained (safetensors), so the real `from_pretrained` path loads it like any hub model.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from semrl.errors import UserError
from semrl.files import check_output_folder, read_lines

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>"
    "{% generation %}{{ message['content'] }}<|eos|>{% endgeneration %}\n"
    "{% else %}{{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model; the defaults give ~0.3M parameters (fast on 2 CPU cores)."""

    vocab_size: int = 512
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 256
    seed: int = 0


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 512, special_tokens: list[str] | None = None, **token_names: str
):
    """A byte-level BPE tokenizer (tokenizers library) wrapped as a transformers fast tokenizer.
    `special_tokens` and `token_names` (bos_token=..., eos_token=..., pad_token=...) replace ours
    (models/families.py builds other families' tokenizers this way)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens or SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=trainer)
    names = (
        token_names
        if special_tokens
        else {"pad_token": "<|pad|>", "bos_token": "<|bos|>", "eos_token": "<|eos|>"}
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **names)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def llama_config(spec: TinySpec, vocab_size: int | None = None, **extra):
    """The LlamaConfig of a tiny model of `spec`'s sizes (the memory estimate sizes it unbuilt); the
    builders pass their tokenizer's size and token ids."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size or spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        **extra,
    )


def bert_config(spec: TinySpec, vocab_size: int | None = None, **extra):
    """The BertConfig of a tiny encoder of `spec`'s sizes, as llama_config is the LM's."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size or spec.vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_positions,
        **extra,
    )


def _config(tokenizer, spec: TinySpec, **extra):
    ids = {f"{name}_token_id": getattr(tokenizer, f"{name}_token_id") for name in ("pad", "bos", "eos")}
    return llama_config(spec, len(tokenizer), **ids, **extra)


def build_tiny_lm(out_dir: str | Path, texts: Iterable[str], spec: TinySpec = TinySpec()) -> Path:
    """Train a tokenizer on `texts`, initialise a tiny LlamaForCausalLM, save both to `out_dir`."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(spec.seed)
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = LlamaForCausalLM(_config(tokenizer, spec))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_classifier(out_dir: str | Path, texts: Iterable[str], spec: TinySpec = TinySpec()) -> Path:
    """A tiny LlamaForSequenceClassification with one label: a reward model to train or test with."""
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(spec.seed)
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = LlamaForSequenceClassification(_config(tokenizer, spec, num_labels=1))
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_encoder(out_dir: str | Path, texts: Iterable[str], spec: TinySpec = TinySpec()) -> Path:
    """A tiny BERT-style encoder with mean pooling, saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel

    torch.manual_seed(spec.seed)
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    config = bert_config(spec, len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    out = Path(out_dir)
    backbone = out / "backbone"
    BertModel(config, add_pooling_layer=False).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    word = models.Transformer(str(backbone), max_seq_length=spec.max_positions)
    pooling = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(out))
    shutil.rmtree(backbone)  # the saved model holds its own copy of the backbone
    return out


SIZES = {
    "tiny": dict(vocab_size=384, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2),
    "small": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4),
    "base": dict(vocab_size=2048, hidden_size=256, intermediate_size=688, num_layers=4, num_heads=8),
}
_FALLBACK_CORPUS = ["semrl builds tiny models from your own text.", "A small corpus is enough for a test."]


def build_tiny(
    out_dir: str | Path, corpus: Sequence[str | Path], kind: str = "lm", size: str = "small", seed: int = 0
) -> Path:
    """`semrl model tiny`: read the corpus files, build the requested kind of model."""
    if size not in SIZES:
        raise UserError(f"--size: unknown size {size!r}; choose {', '.join(SIZES)}")
    builders = {"lm": build_tiny_lm, "classifier": build_tiny_classifier, "encoder": build_tiny_encoder}
    if kind not in builders:
        raise UserError(f"--kind: unknown kind {kind!r}; choose {', '.join(builders)}")
    check_output_folder(out_dir, "--out", empty=True)
    texts = [line for path in corpus for line in read_lines(path) if line.strip()] or _FALLBACK_CORPUS
    return builders[kind](out_dir, texts, TinySpec(**SIZES[size], seed=seed))
