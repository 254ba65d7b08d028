"""How much memory a config needs per process, printed by `semrl run --dry-run`.

An out-of-memory error comes minutes into a run, after the model has loaded and the first batch has
been generated; the parts that scale with the model (weights, gradients, optimizer states, reference
model, reward models, the logits and activations of the largest batch) are known from the config and
the rows' lengths. `estimate_memory` is the pure arithmetic; parameters are counted on the meta
device (no weights are read or allocated), in the dtype the run will load them in on this machine's
device (model.dtype auto: bf16 on a GPU that has it, fp32 on CPU). On CPU the number is resident
memory, so this process's runtime with the libraries a stage imports is added. The CUDA context is
not included. Activations are the tensors a decoder layer saves for backward, times
ACTIVATION_OVERHEAD; the generation's KV cache holds less and is freed before the loss runs, so it
is inside that figure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semrl.checks.models import meta_model
from semrl.checks.settings import field_default
from semrl.data.tasks import TaskExamples, build_task_examples
from semrl.devices import pick_device, torch_dtype
from semrl.distributed import world_size
from semrl.encoders.loading import resolve_encoder
from semrl.errors import UserError
from semrl.hub import hub_reachable
from semrl.models.loading import load_tokenizer
from semrl.models.prompts import encode_prompts
from semrl.models.tiny import bert_config, llama_config
from semrl.rewards.encoder_binding import RUN_ENCODER
from semrl.rewards.registry import reward_type

GIB = 1024**3
LOGIT_COPIES = 3  # fp32 logits, their log-softmax and the gradient of the logits, alive together in the loss
# saved activations x this: their gradients during backward and the allocator's retention (measured
# 1.9x on SmolLM2-135M, CPU fp32 LoRA, tests/e2e/test_real_model.py)
ACTIVATION_OVERHEAD = 2.0
UNSHARDED = "one process, unsharded (FSDP or ZeRO-3 divide weights, gradients and AdamW by the processes)"


@dataclass(frozen=True)
class TextLengths:
    """Token counts of the stage's longest prompt and longest reference (an upper bound per batch)."""

    prompt: int
    reference: int


@dataclass(frozen=True)
class MemoryEstimate:
    parts: tuple[tuple[str, float], ...]  # (what, bytes per process)
    notes: tuple[str, ...]
    where: str = "GPU"  # "GPU", or "process (CPU)" where the estimate is resident memory

    @property
    def total(self) -> float:
        return sum(size for _, size in self.parts)

    def line(self) -> str:
        if not self.parts:
            return f"memory per {self.where} (est.): " + "; ".join(self.notes)
        counted = " + ".join(f"{name} {_size(size)}" for name, size in self.parts if size)
        named = "".join(f" + {name}" for name, size in self.parts if not size and " (" in name)  # not sized
        notes = "; ".join(self.notes)
        return f"memory per {self.where} (est.): {_size(self.total)} = {counted}{named}; {notes}"


def _size(size: float) -> str:
    return f"{size / GIB:.2f} GiB" if size >= GIB else f"{size / 1024**2:.1f} MiB"


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def estimate_memory(
    params: int,
    trainable: int,
    *,
    weight_bytes: int,
    lora: bool,
    beta: float,
    extras: Mapping[str, float] | None = None,
    processes: int = 1,
    zero_stage: int = 0,
    shard_reference: bool = True,
) -> MemoryEstimate:
    """Bytes per process. Full fine-tuning: gradients in the weights' dtype, AdamW's two fp32
    states, and an fp32 master copy when the weights are 16-bit (mixed precision, as ZeRO and FSDP
    keep it). LoRA: the base is frozen; adapters, their gradients and states are fp32 (peft upcasts
    them), and beta > 0 needs no reference copy (TRL turns the adapters off instead); full
    fine-tuning with beta > 0 holds one more copy of the weights, in their dtype, as the reference.
    `zero_stage` 1 shards optimizer states over `processes`, 2 also gradients, 3 (or FSDP) also
    weights and, unless `shard_reference` is false, the reference; the reward models in `extras`
    are never sharded."""
    shard = max(processes, 1)
    split = {
        part: (shard if zero_stage >= stage else 1)
        for part, stage in (("optimizer", 1), ("gradients", 2), ("weights", 3))
    }
    reference_split = split["weights"] if shard_reference else 1
    trainable_bytes = 4 if lora or weight_bytes == 4 else weight_bytes
    master = 4 if trainable_bytes < 4 else 0
    full_reference = beta > 0 and not lora  # LoRA's reference is its base with the adapters off
    parts = [
        ("weights", (params * weight_bytes + (trainable * 4 if lora else 0)) / split["weights"]),
        ("gradients", trainable * trainable_bytes / split["gradients"]),
        ("AdamW", trainable * (8 + master) / split["optimizer"]),
        ("reference", params * weight_bytes / reference_split if full_reference else 0.0),
        *(extras or {}).items(),
    ]
    notes = [
        f"{_count(params)} parameters, {_count(trainable)} trainable" + (" (LoRA)" if lora else ""),
        f"{weight_bytes * 8}-bit weights",
    ]
    notes.append(f"sharded over {shard} processes (stage {zero_stage})" if zero_stage else UNSHARDED)
    return MemoryEstimate(tuple(parts), tuple(notes))


def sharding_from_env(env: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """(processes, ZeRO stage) as `accelerate launch` exports them; FSDP counts as stage 3."""
    processes = world_size(env)
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return processes, 3
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return processes, int(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "0") or 0)
    return processes, 0


def count_parameters(config: Any, lora: Any = None, kind: str = "causal_lm") -> tuple[int, int]:
    """(all, trainable) parameters of a model built from `config` on the meta device; with a
    LoraSpec, trainable counts peft's adapters only."""
    parameters = list(meta_model(config, kind, lora).parameters())
    return sum(p.numel() for p in parameters), sum(p.numel() for p in parameters if p.requires_grad)


def _folder_config(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    # a cached hub id must not wait on the hub's retries when there is no network
    return AutoConfig.from_pretrained(
        path, trust_remote_code=trust_remote_code, local_files_only=not hub_reachable()
    )


def _policy_config(exp: Any) -> Any:
    if exp.model.path is not None:
        return _folder_config(exp.model.path, exp.model.trust_remote_code)
    # its tokenizer may end a few tokens short of vocab_size, and a tiny of another family
    # (model.tiny.family) is sized as the Llama of the same shape
    return llama_config(exp.model.tiny.tiny_spec())


def _component_config(exp: Any, loaded: Any) -> Any:
    """The config of a model a reward loads; the run's own encoder is encoder.base, or a tiny one."""
    if loaded.kind != "encoder":
        return _folder_config(loaded.name, loaded.trust_remote_code)
    if loaded.name == RUN_ENCODER and exp.encoder.base is None:
        return bert_config(exp.encoder.tiny.tiny_spec())
    return _folder_config(resolve_encoder(exp.encoder.base if loaded.name == RUN_ENCODER else loaded.name))


def _stored_bytes(config: Any) -> int:
    """Bytes per parameter as the loaders load it: the checkpoint's dtype ("auto"), else fp32."""
    import torch

    dtype = getattr(config, "dtype", None)
    dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    return dtype.itemsize if isinstance(dtype, torch.dtype) else 4


def _reward_models(exp: Any, reward: Any, device: str = "cuda") -> dict[str, float]:
    """Bytes of each encoder / RM `reward` loads beside the policy (its GPU, or the process when the
    policy runs on CPU), in its checkpoint's dtype; one elsewhere (`device:`) is named with 0."""
    sizes: dict[str, float] = {}
    for spec in reward.specs() if reward is not None else []:
        loaded = reward_type(spec.type).component.loads(spec)
        if loaded is None:
            continue
        name = loaded.name
        label = f"{loaded.label} {os.path.basename(name.rstrip('/')) or name}"
        if loaded.device not in (None, "auto", "cuda", *(("cpu",) if device == "cpu" else ())):
            sizes[f"{label} (on {loaded.device})"] = 0.0
            continue
        try:
            config = _component_config(exp, loaded)
            count, _ = count_parameters(config, kind=loaded.kind)
        except Exception:  # noqa: BLE001 - an estimate: a model that cannot be sized is named, not fatal
            sizes[f"{label} (not sized)"] = 0.0
            continue
        sizes[label] = float(count * _stored_bytes(config))
    return sizes


def estimate_for(
    exp: Any, arm: Any, grpo: bool, counts: tuple[int, int], config: Any, lengths: TextLengths | None = None
) -> MemoryEstimate:
    """One arm's largest stage: GRPO (reference, reward models, vLLM) when it has one, else SFT;
    `counts` = the policy's (all, trainable) parameters, `config` its transformers config (for the
    logits and activations) and `lengths` the rows' (for the activations)."""
    spec = exp.stage_spec(arm, "grpo" if grpo else "sft")
    params, trainable = counts
    device = _device(exp)
    weight_bytes = torch_dtype(exp.model.dtype, device).itemsize
    processes, stage = sharding_from_env()
    estimate = estimate_memory(
        params,
        trainable,
        weight_bytes=weight_bytes,
        lora=exp.model.lora is not None,
        beta=spec.beta if grpo else 0.0,
        extras={
            "logits": float(_logit_bytes(spec, grpo, int(getattr(config, "vocab_size", 0) or 0))),
            "activations": activation_bytes(config, *_batch_shape(spec, grpo, lengths), weight_bytes),
            **(_reward_models(exp, exp.reward_for(arm), device) if grpo else {}),
        },
        processes=processes,
        zero_stage=stage,
        # TRL shards the reference when FSDP is on at its init; on CPU semrl turns FSDP on later
        # (train/sharded.py), so each CPU process holds a whole reference
        shard_reference=device != "cpu",
    )
    notes = [f"arm {arm.name} ({'grpo' if grpo else 'sft'})", *estimate.notes]
    if lengths is None:
        notes.append("activations without the prompts (their lengths unknown here)")
    parts = estimate.parts
    if exp.model.dtype == "auto":
        notes.append(f"model.dtype auto loads {weight_bytes * 8}-bit weights on {device}")
    if device == "cpu":
        parts = (*parts, ("runtime (this process)", float(_runtime_bytes())))
        notes.append("CPU: resident memory, runtime (the training libraries) measured here")
    if grpo and spec.use_vllm and spec.vllm_mode != "server":
        notes.append(f"plus vLLM's {_vllm_share(spec):g} of the GPU (colocate)")
    return MemoryEstimate(parts, tuple(notes), "process (CPU)" if device == "cpu" else "GPU")


def _device(exp: Any) -> str:
    try:
        return pick_device(exp.device)
    except UserError:  # device: cuda on a machine without one (preflight says so): size it as the GPU run
        return "cuda"


def _logit_bytes(spec: Any, grpo: bool, vocab: int) -> int:
    """The largest batch's fp32 logits over the vocabulary (LOGIT_COPIES of them): with a 49k-152k
    vocabulary this is the activation that grows with the batch. SFT: batch x max_length tokens (an
    upper bound: batches are padded to their longest row). GRPO: TRL runs the head on the completion
    tokens only, prompts x generations x (max_completion_length + 1)."""
    tokens = (
        spec.prompts_per_step * spec.num_generations * (spec.max_completion_length + 1)
        if grpo
        else spec.batch_size * spec.max_length
    )
    return tokens * vocab * 4 * LOGIT_COPIES


def _batch_shape(spec: Any, grpo: bool, lengths: TextLengths | None) -> tuple[int, int]:
    """(sequences, tokens each) of the largest training batch, padded to its longest row: GRPO,
    prompts x generations of (longest prompt + max_completion_length); SFT, batch_size of (longest
    prompt + reference + EOS, at most max_length)."""
    prompt = lengths.prompt if lengths is not None else 0
    if grpo:
        return spec.prompts_per_step * spec.num_generations, prompt + spec.max_completion_length
    longest = prompt + lengths.reference + 1 if lengths is not None else spec.max_length
    return spec.batch_size, min(longest, spec.max_length)


def activation_bytes(config: Any, sequences: int, length: int, dtype_bytes: int) -> float:
    """What the loss's forward and backward hold for a batch of `sequences` x `length` tokens: per
    layer and token, the tensors a Llama-style decoder layer saves for backward (two RMSNorms, 3h
    each; queries, keys and values after repeat_kv, 3h; the attention output, h; the MLP's gate, its
    activation, up and their product, 4I; the attention weights and their softmax, 2 x heads x
    length), in the weights' dtype, times ACTIVATION_OVERHEAD."""
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    inner = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    per_token = 10 * hidden + 4 * inner + 2 * heads * length
    return float(sequences * length * per_token * layers * dtype_bytes * ACTIVATION_OVERHEAD)


def _runtime_bytes() -> int:
    """Peak resident memory of this process once it holds what a training stage imports; an optional
    library that is missing is left out (the stage that needs it says so). Each is imported by name:
    the safety scan refuses a module named at run time."""
    import resource

    import torch  # noqa: F401
    import transformers  # noqa: F401

    with contextlib.suppress(ImportError):
        import trl  # noqa: F401
    with contextlib.suppress(ImportError):
        import peft  # noqa: F401
    with contextlib.suppress(ImportError):
        import datasets  # noqa: F401
    with contextlib.suppress(ImportError):
        import accelerate  # noqa: F401
    with contextlib.suppress(ImportError):
        import sentence_transformers  # noqa: F401
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _vllm_share(spec: Any) -> float:
    """vllm_gpu_memory_utilization as given, else TRL's default (read, not copied)."""
    if spec.vllm_gpu_memory_utilization is not None:
        return spec.vllm_gpu_memory_utilization
    from trl import GRPOConfig

    return float(field_default(GRPOConfig, "vllm_gpu_memory_utilization"))


def largest_estimate(exp: Any, plans: list[Any], lengths: TextLengths | None = None) -> MemoryEstimate:
    """The arm that needs the most memory, from the stage plan (`plan.trainer` per arm)."""
    try:
        config = _policy_config(exp)
        counts = count_parameters(config, exp.model.lora)
    except Exception as exc:  # noqa: BLE001 - an estimate must not stop a dry run that passed preflight
        why = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        return MemoryEstimate((), (f"not estimated: the policy could not be sized ({why})",))
    grpo_arms = {plan.arm for plan in plans if plan.trainer == "grpo"}
    estimates = [estimate_for(exp, arm, arm.name in grpo_arms, counts, config, lengths) for arm in exp.arms]
    return max(estimates, key=lambda e: e.total)


def text_lengths(exp: Any, rows: list[dict[str, Any]]) -> TextLengths | None:
    """The longest prompt and reference of `rows` in the policy's tokens, prompts encoded as training
    encodes them; a model built on first use has no tokenizer yet, so its UTF-8 bytes stand in (a
    byte-level BPE token is at least one byte). None when the tokenizer cannot be read."""
    if not rows:
        return None
    if exp.model.path is None:
        plain = TaskExamples(exp.task, use_chat=False)
        prompt_bytes = [len(str(plain.prompt(row)).encode("utf-8")) for row in rows]
        reference_bytes = [len(str(row.get("reference", "")).encode("utf-8")) for row in rows]
        return TextLengths(max(prompt_bytes), max(reference_bytes))
    try:
        tokenizer = load_tokenizer(exp.model.path, exp.model.trust_remote_code)
    except (OSError, ValueError, UserError):
        return None
    examples = build_task_examples(exp.task, tokenizer)
    prompts = encode_prompts(tokenizer, [examples.prompt(row) for row in rows])
    references = tokenizer([str(row.get("reference", "")) for row in rows], add_special_tokens=False)
    return TextLengths(max(map(len, prompts)), max(map(len, references["input_ids"])))
