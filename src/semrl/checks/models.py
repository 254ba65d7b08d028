"""Models of the right kind, checked before training from each folder's config.json (no weights loaded).

transformers loads almost anything into almost any Auto class: a causal LM given as a reward model
gets a new, randomly initialised score head (then GRPO trains against noise); a sentence encoder
given as the policy fails deep in generation; a LoRA target the model does not have fails in peft
after the run folder exists. Kinds are read from transformers' Auto mappings, LoRA targets matched
by peft's own matcher on the model built on the meta device; hub ids from their cached config.json.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

from semrl.checks import first_line
from semrl.encoders.loading import DEFAULT_ENCODER
from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig, LoraSpec
from semrl.files import read_json
from semrl.models.families import family_config
from semrl.models.tiny import TinySpec
from semrl.notices import warn
from semrl.rewards.encoder_binding import RUN_ENCODER
from semrl.train.common import lora_config
from semrl.weights import check_weights


def model_config(path: str) -> dict[str, Any] | None:
    """config.json of a local folder, or of a hub id from the local cache; None when neither has one
    (a missing model is reported by the existing reference checks)."""
    return _json_file(path, "config.json")


def _json_file(path: str, name: str) -> dict[str, Any] | None:
    folder = Path(path).expanduser()
    if folder.is_dir():
        file = folder / name
    else:
        if folder.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1:
            return None
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(path, name)
        if not isinstance(found, str):
            return None
        file = Path(found)
    if not file.is_file():
        return None
    data = read_json(file, own=False)
    return data if isinstance(data, dict) else None


@cache
def architectures(kind: str) -> frozenset[str]:
    """Class names transformers' Auto mapping of `kind` builds (read from the installed library)."""
    from transformers.models.auto import modeling_auto

    table = {
        "causal_lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
        "classifier": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
        "encoder": "MODEL_MAPPING_NAMES",
        "masked_lm": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    }[kind]
    names: set[str] = set()
    for value in getattr(modeling_auto, table).values():
        names.update([value] if isinstance(value, str) else value)
    return frozenset(names)


def _kind_of(config: dict[str, Any]) -> tuple[set[str], str]:
    """(the kinds its architectures belong to, the architectures as written)."""
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    kinds = {
        kind
        for kind in ("causal_lm", "classifier", "encoder", "masked_lm")
        if any(arch in architectures(kind) for arch in archs)
    }
    if any(arch.endswith("ForCausalLM") for arch in archs):
        kinds.add("causal_lm")
    return kinds, ", ".join(archs) or f"model_type {config.get('model_type')!r} (no architectures)"


def check_policy(path: str, field: str) -> None:
    """A policy is generated from and trained as a causal LM."""
    config = model_config(path)
    if config is None or _is_causal(config):
        return
    _, archs = _kind_of(config)
    what = "a sentence encoder" if _is_sentence_transformers(path) else f"a {archs} model"
    raise UserError(
        f"{field}: {path} is {what}, not a causal language model "
        "(a *ForCausalLM architecture); give a generative model"
    )


def _is_causal(config: dict[str, Any]) -> bool:
    """A causal LM by its architectures, or by its model_type when it names none."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.get("architectures"):
        return "causal_lm" in _kind_of(config)[0]
    return config.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def _is_sentence_transformers(path: str) -> bool:
    return _json_file(path, "modules.json") is not None or (Path(path) / "modules.json").is_file()


def check_scorer(path: str, field: str, init_head: bool = False) -> None:
    """A reward model scores with one logit: a sequence classifier with one label. A causal LM is
    accepted only when the user asks for a new head (init_head: true), and then said to be untrained."""
    config = model_config(path)
    if config is None:
        return
    kinds, archs = _kind_of(config)
    if "classifier" in kinds:
        id2label = config.get("id2label")  # as PretrainedConfig reads it: its size, else num_labels, else 2
        labels = len(id2label) if isinstance(id2label, dict) else int(config.get("num_labels", 2))
        if labels != 1:
            raise UserError(
                f"{field}: {path} is a classifier with {labels} labels; a reward model has one "
                "(a single score)"
            )
        return
    if init_head and "causal_lm" in kinds:
        warn(
            f"{field}: {path} is a causal LM ({archs}); init_head: true gives it a NEW score head with "
            "random weights, so its rewards are noise until that head is trained"
        )
        return
    hint = "; set init_head: true to score with a new, untrained head" if "causal_lm" in kinds else ""
    raise UserError(
        f"{field}: {path} is a {archs} model, not a sequence classifier with one label "
        f"(a trained reward model){hint}"
    )


def check_encoder_kind(path: str, field: str) -> None:
    """A semantic encoder: a sentence-transformers folder, or a plain encoder (pooled by mean)."""
    if Path(path).expanduser().is_file():
        raise UserError(f"{field}: {path} is a file; an encoder is a model folder (or a hub id)")
    config = None if _is_sentence_transformers(path) else model_config(path)
    if config is None:  # a sentence-transformers folder, or no config to read
        return
    kinds, archs = _kind_of(config)
    if kinds & {"encoder", "masked_lm"} and not kinds & {"causal_lm", "classifier"}:
        return
    raise UserError(
        f"{field}: {path} is a {archs} model, not a sentence encoder (a sentence-transformers "
        "folder or a plain encoder such as BertModel or XLMRobertaModel)"
    )


# -- LoRA target modules, on the meta device -----------------------------------------------------


LORA_LAYERS = ("Linear", "Embedding", "Conv1d", "Conv2d", "Conv3d", "Conv1D", "MultiheadAttention")  # peft's


AUTO_CLASSES = {
    "causal_lm": "AutoModelForCausalLM",
    "classifier": "AutoModelForSequenceClassification",
    "encoder": "AutoModel",
}


def meta_model(
    config: Any, kind: str = "causal_lm", lora: LoraSpec | None = None, trust_remote_code: bool = False
) -> Any:
    """The `kind` model `config` describes, with peft's adapters for `lora`, built on the meta device:
    its modules and parameter counts cost no memory."""
    import torch
    import transformers

    with torch.device("meta"):
        auto = getattr(transformers, AUTO_CLASSES[kind])
        model = auto.from_config(config, trust_remote_code=trust_remote_code)
        if lora is not None:
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(lora))
    return model


# the sizes of the model a `model.tiny` base is probed as (sizes do not change module names)
PROBE_SIZES = TinySpec(vocab_size=300, hidden_size=16, intermediate_size=16, num_layers=1, num_heads=2)


def lora_target_problem(lora: LoraSpec, modules: dict[str, str]) -> str | None:
    """Why peft would not adapt `lora.target_modules` in a model with `modules` ({name: class}), using
    peft's own matcher: every listed name (or the regex string) must match a layer LoRA can adapt."""
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists

    targets = lora.target_modules
    if isinstance(targets, str):
        try:
            re.compile(targets)
        except re.error as exc:
            return f"{targets!r} is not a valid regular expression ({exc})"
        wanted = [targets]
    else:
        if not targets:
            return "an empty list adapts nothing; name modules or use all-linear"
        wanted = list(targets)
    missing, unsupported = [], []
    for target in wanted:
        probe = LoraConfig(target_modules=target if isinstance(lora.target_modules, str) else [target])
        matched = [name for name in modules if check_target_module_exists(probe, name)]
        if not matched:
            missing.append(target)
        elif not any(modules[name] in LORA_LAYERS for name in matched):
            unsupported.append(f"{target!r} ({modules[matched[0]]})")
    leaves = sorted({name.rsplit(".", 1)[-1] for name, kind in modules.items() if kind in LORA_LAYERS})
    leaves = [leaf for leaf in leaves if not leaf.isdigit()]
    if missing:
        return (
            f"{', '.join(map(repr, missing))} matches no module of the model; its adaptable modules are: "
            f"{', '.join(leaves)} (or all-linear)"
        )
    if unsupported:
        return (
            f"{', '.join(unsupported)} is not a layer LoRA can adapt (Linear, Embedding, Conv); "
            f"use: {', '.join(leaves)} (or all-linear)"
        )
    return None


def check_lora(exp: ExperimentConfig) -> None:
    """model.lora.target_modules name layers LoRA can adapt in the policy (all-linear always does)."""
    lora = exp.model.lora
    if lora is None or lora.target_modules == "all-linear":
        return
    if exp.model.tiny is not None:
        config: Any = family_config(exp.model.tiny.family, PROBE_SIZES)
    elif exp.model.path is not None:
        config = model_config(exp.model.path)
        if config is None or not _is_causal(config):
            return  # missing or of the wrong kind: reported by the other checks
    else:
        return  # no model named: the schema reports it
    from transformers import AutoConfig

    try:
        if isinstance(config, dict):  # a folder's config.json
            config = AutoConfig.for_model(**config)
        model = meta_model(config, trust_remote_code=exp.model.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - a config transformers cannot build: not this check's question
        warn(f"model.lora.target_modules: not checked ({first_line(exc)})")
        return
    names = {name: type(module).__name__ for name, module in model.named_modules() if name}
    problem = lora_target_problem(lora, names)
    if problem:
        raise UserError(f"model.lora.target_modules: {problem}")


# -- every model the experiment names ------------------------------------------------------------


def reward_components(exp: ExperimentConfig) -> list[tuple[str, Any]]:
    """(field, spec) of every reward component and gate, top level and arms' (`arms.rl.rewards.0`)."""
    found = []
    for where, config in exp.reward_configs():
        found += [(f"{where}.{index}", spec) for index, spec in enumerate(config.rewards)]
        found += [(f"{where}.gate", config.gate)] if config.gate is not None else []
    return found


def model_kind_checks(exp: ExperimentConfig) -> list[Callable[[], None]]:
    """One check per model the experiment names, each independent (preflight reports them all)."""
    checks: list[Callable[[], None]] = []
    if exp.model.path is not None:
        checks.append(partial(check_policy, exp.model.path, "model.path"))
    checks.append(lambda: check_lora(exp))
    judge = exp.eval.judge
    if exp.eval.enabled and judge is not None and judge.model:
        if judge.type == "reward_model":
            checks.append(partial(check_scorer, judge.model, "eval.judge.model"))
        else:
            checks.append(partial(check_policy, judge.model, "eval.judge.model"))
    encoders = [("encoder.base", exp.encoder.base)]
    if exp.eval.enabled:
        encoders.append(("eval.encoder", exp.eval.encoder))
    for field, spec in reward_components(exp):
        if spec.type == "reward_model":
            checks.append(
                partial(check_scorer, spec.model, f"{field}.model", getattr(spec, "init_head", False))
            )
        elif spec.type == "semantic":
            encoders.append((f"{field}.encoder", spec.encoder))
    for field, name in encoders:
        if name and name not in (DEFAULT_ENCODER, RUN_ENCODER):
            checks.append(partial(check_encoder_kind, name, field))
    if exp.encoder.base:  # the others' weights are checked where they are resolved or built
        checks.append(partial(check_weights, exp.encoder.base, "encoder.base"))
    return checks
