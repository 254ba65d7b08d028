"""Loading models the way every stage, reward and evaluation does: safetensors, no remote code
unless the config says so, a pad token always set, and reward models scored on the tokens TRL's
RewardTrainer trained them on."""

from __future__ import annotations

from pathlib import Path

from semrl.devices import pick_device, torch_dtype
from semrl.errors import UserError
from semrl.hub import require_available
from semrl.notices import warn
from semrl.text.surrogates import encodable
from semrl.weights import check_cached_weights, check_weights


def check_model_reference(path: str, trust_remote_code: bool = False, field: str = "model") -> None:
    """Fail before training when a model folder is missing, its weights are missing or torn, or a
    hub id is not available offline. `field` names the setting or option in the message."""
    if Path(path).exists():
        if not (Path(path) / "config.json").exists():
            raise UserError(f"model {path}: folder has no config.json (not a transformers model)")
        check_weights(path, field)
        return
    if Path(path).is_symlink():
        raise UserError(f"model {path}: a symlink loop or a link to nothing")
    if path.startswith((".", "/", "~")):
        raise UserError(f"model {path}: path does not exist")
    from transformers import AutoConfig

    require_available(path, "model")
    try:
        AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"model {path}: not a local folder and not loadable ({str(exc).splitlines()[0]})"
        ) from None
    check_cached_weights(path, field)


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    if trust_remote_code:
        warn(f"model.trust_remote_code is ON: code shipped with {path} will run")
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UserError(
                f"model {path}: tokenizer has neither a pad nor an eos token; add a pad token "
                "(tokenizer.add_special_tokens) and save the model again"
            )
        warn(f"model {path}: tokenizer has no pad token; padding with eos {tokenizer.eos_token!r}")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    path: str,
    dtype: str,
    device: str,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        path,
        dtype=torch_dtype(dtype, device),
        trust_remote_code=trust_remote_code,
        attn_implementation=attn_implementation,  # None: the library's choice
    )


def load_for_generation(
    path: str,
    dtype: str,
    device: str,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
):
    """(model, tokenizer) of a causal LM on `device` in eval mode: what evaluation and judges generate
    with."""
    tokenizer = load_tokenizer(path, trust_remote_code)
    model = load_causal_lm(path, dtype, device, trust_remote_code, attn_implementation).to(device)
    model.eval()
    return model, tokenizer


def load_classifier(path: str, dtype: str | None, device: str, trust_remote_code: bool = False):
    """A one-label sequence classifier (a reward model, or a causal LM read as one: the score head
    is new). dtype None: the library's default."""
    from transformers import AutoModelForSequenceClassification

    kwargs = {"dtype": torch_dtype(dtype, device)} if dtype is not None else {}
    return AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, trust_remote_code=trust_remote_code, **kwargs
    )


def load_scorer(
    path: str, device: str | None = None, dtype: str | None = None, trust_remote_code: bool = False
):
    """(model, tokenizer) of a reward model on `device`, in eval mode, with a pad token id the
    classifier pools by (it reads its score at the last non-pad token)."""
    if not Path(path).is_dir():
        raise UserError(f"reward model {path}: not a local model folder")
    check_weights(path, "reward model")
    device = pick_device(device)
    try:
        tokenizer = load_tokenizer(path, trust_remote_code)
        model = load_classifier(path, dtype, device, trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"reward model {path}: could not be loaded: {str(exc).splitlines()[0]}") from None
    if model.config.pad_token_id != tokenizer.pad_token_id:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


def as_trained(tokenizer, text: str) -> str:
    """The plain text TRL's RewardTrainer trained the score on: it appends EOS to plain-text pairs, and
    the classifier reads its score at the last non-pad token, so scoring without the EOS reads the
    head at a position it never learned (unless EOS doubles as the pad token)."""
    eos = tokenizer.eos_token
    return text if not eos or text.endswith(eos) else text + eos


def score_texts(
    model, tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 512, templated: bool = False
) -> list[float]:
    """The RM's score (logit 0) of each text, tokenized as TRL's RewardTrainer tokenized it: plain text
    with EOS appended and the tokenizer's special tokens; `templated` text (rendered by the chat
    template, which writes its own BOS/EOS) without adding any, so BOS is never doubled."""
    import torch

    model.eval()
    texts = [encodable(text if templated else as_trained(tokenizer, text)) for text in texts]
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
            add_special_tokens=not templated,
        ).to(model.device)
        with torch.inference_mode():
            scores.extend(
                model(**batch).logits[:, 0].float().tolist()
            )  # NaN stays NaN for the caller to count
    return scores
