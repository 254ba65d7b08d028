"""Loading the policy and its tokenizer (safetensors, no remote code unless the config says so)."""

from __future__ import annotations

from pathlib import Path

from semrl.errors import UserError
from semrl.train.common import torch_dtype


def check_model_reference(path: str, trust_remote_code: bool = False) -> None:
    """Fail before training when a model folder is missing or a hub id is not available offline."""
    if Path(path).exists():
        if not (Path(path) / "config.json").exists():
            raise UserError(f"model {path}: folder has no config.json (not a transformers model)")
        return
    if path.startswith((".", "/", "~")):
        raise UserError(f"model {path}: path does not exist")
    from transformers import AutoConfig

    from semrl.hub import require_available

    require_available(path, "model")
    try:
        AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"model {path}: not a local folder and not loadable ({str(exc).splitlines()[0]})") from None


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    from semrl.notices import warn

    if trust_remote_code:
        warn(f"model.trust_remote_code is ON: code shipped with {path} will run")
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UserError(f"model {path}: tokenizer has neither a pad nor an eos token; add a pad token "
                            "(tokenizer.add_special_tokens) and save the model again")
        warn(f"model {path}: tokenizer has no pad token; padding with eos {tokenizer.eos_token!r}")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str, dtype: str, device: str, trust_remote_code: bool = False,
                   attn_implementation: str | None = None):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype(dtype, device), trust_remote_code=trust_remote_code,
        attn_implementation=attn_implementation,  # None: the library's choice
    )
