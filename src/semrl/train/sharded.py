"""Sharded training (FSDP, DeepSpeed ZeRO): FSDP on CPU processes and a resumable FSDP1 optimizer
(prepare_fsdp), gathering the full weights onto rank 0 with any LoRA update merged, and saving a
plain final model atomically (save_final). Every rank must call these together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.disk import disk_guard
from semrl.errors import UserError
from semrl.files import publish_folder


def prepare_fsdp(trainer) -> None:
    """FSDP fixes, applied to a Trainer before `train()`; a no-op without FSDP.

    1. Turn FSDP on when `accelerate launch` asked for it (ACCELERATE_USE_FSDP) but the processes
       run on CPU: accelerate enables FSDP only for accelerator devices and otherwise silently trains
       with DDP (MULTI_CPU); torch's FSDP1 itself shards on CPU with gloo. This makes
       configs/accelerate/fsdp.yaml testable without GPUs.
    2. Resume the optimizer from a sharded FSDP1 checkpoint: accelerate loads it into a template
       taken from the fresh optimizer, which has no state yet, so Adam's moments and step came back
       empty (a resumed run drifted, 7e-3 in the weights after 10 steps; measured on CPU)."""
    import os

    import torch
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    if (
        os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        and state.distributed_type == DistributedType.MULTI_CPU
    ):
        state.fsdp_plugin = FullyShardedDataParallelPlugin()  # reads the launcher's FSDP_* settings
        if state.fsdp_plugin.fsdp_version != 1:
            raise UserError(
                "FSDP on CPU works with fsdp_version: 1 only (torch's FSDP2 needs an accelerator)"
            )
        state.distributed_type = DistributedType.FSDP
        state.device = torch.device("cpu")  # FSDP1 rejects "cpu:0" as not the current device "cpu"
        trainer.is_fsdp_enabled = True
        if hasattr(trainer, "_dist"):  # TRL's GRPOTrainer read the backend at init: gather params to generate
            trainer._dist = type(trainer._dist)(trainer.accelerator)
    plugin = getattr(state, "fsdp_plugin", None)
    if plugin is None or plugin.fsdp_version != 1 or "FULL_STATE_DICT" in str(plugin.state_dict_type):
        return
    load = trainer._load_optimizer_and_scheduler

    def load_into_primed_optimizer(checkpoint):
        if checkpoint is not None and trainer.optimizer is not None:
            _prime_optimizer_state(getattr(trainer.optimizer, "optimizer", trainer.optimizer))
        return load(checkpoint)

    trainer._load_optimizer_and_scheduler = load_into_primed_optimizer


def _prime_optimizer_state(optimizer) -> None:
    """Create the optimizer's state (shapes only) by one step with zero gradients and zero learning
    rate; the checkpoint then overwrites every value, the step count included."""
    import torch

    rates = [group["lr"] for group in optimizer.param_groups]
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    for param in params:
        param.grad = torch.zeros_like(param)
    optimizer.step()
    for param in params:
        param.grad = None
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = rate


def _full_state_dict(trainer):
    """Under FSDP or DeepSpeed ZeRO-3 the weights are sharded: every rank takes part in gathering the
    full state dict (rank 0 receives it). None when the model is not sharded (save it as it is)."""
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    deepspeed = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    sharded = (
        isinstance(trainer.model_wrapped, FSDP)
        or getattr(trainer, "is_fsdp_enabled", False)
        or (deepspeed is not None and deepspeed.zero_stage == 3)
    )
    if not sharded:
        return None
    lora = hasattr(trainer.accelerator.unwrap_model(trainer.model), "merge_and_unload")
    # offloading CPU tensors "to CPU" makes FSDP1 read freed memory (segfault, seen on CPU)
    on_gpu = next(trainer.model_wrapped.parameters()).device.type != "cpu"
    if lora and isinstance(trainer.model_wrapped, FSDP):
        return _merged_lora_state_dict(trainer, offload=on_gpu)
    if lora:  # every rank stops here
        raise UserError(
            "LoRA under DeepSpeed ZeRO-3: saving a merged final model is not supported; "
            "train LoRA under FSDP or ZeRO-2"
        )
    if isinstance(trainer.model_wrapped, FSDP):  # FSDP1 (on CPU too: the model, not accelerate, says)
        config = FullStateDictConfig(offload_to_cpu=on_gpu, rank0_only=True)
        with FSDP.state_dict_type(trainer.model_wrapped, StateDictType.FULL_STATE_DICT, config):
            return trainer.model_wrapped.state_dict()
    return trainer.accelerator.get_state_dict(trainer.model_wrapped)  # FSDP2, ZeRO-3 (untested here)


def _merged_lora_state_dict(trainer, offload: bool):
    """The base model's full weights with the LoRA update merged in (W + B·A·scale), gathered from
    FSDP shards onto rank 0 under the base model's own parameter names, so final/ is a plain model
    like the one `merge_and_unload` saves without FSDP. Computed beside the gathered weights, never
    written into them: FSDP does not promise to discard changes made inside `summon_full_params`."""
    from peft.tuners.lora import LoraLayer
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    adapter = peft_model.active_adapter

    def base_name(name: str) -> str:
        name = name.replace("_fsdp_wrapped_module.", "").replace("base_layer.", "")
        return name.removeprefix("base_model.model.")

    state_dict: dict[str, Any] = {}
    with FSDP.summon_full_params(
        trainer.model_wrapped, writeback=False, rank0_only=True, offload_to_cpu=offload
    ):
        if not trainer.accelerator.is_main_process:
            return state_dict
        for name, param in peft_model.named_parameters():
            if "lora_" not in name:
                state_dict[base_name(name)] = param.detach().clone()
        for name, module in peft_model.named_modules():
            if isinstance(module, LoraLayer) and adapter in module.lora_A:
                weight = module.get_base_layer().weight
                merged = weight.detach() + module.get_delta_weight(adapter).to(weight.dtype)
                state_dict[base_name(name) + ".weight"] = merged.clone()
    return state_dict


def full_parameters(trainer):
    """A context in which the trained model holds all its weights on every rank, to score with it
    after training: under FSDP each rank holds only a shard (every rank must enter)."""
    from contextlib import nullcontext

    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    if isinstance(trainer.model_wrapped, FSDP):
        return FSDP.summon_full_params(trainer.model_wrapped, writeback=False)
    return nullcontext()


def save_final(trainer, tokenizer, out_dir: Path) -> Path:
    """Save a plain (LoRA-merged) model + tokenizer atomically: write `final.tmp`, then rename.
    Under FSDP the full weights are gathered first, whatever state dict type the checkpoints use."""
    final = out_dir / "final"
    state_dict = _full_state_dict(trainer)
    if not trainer.accelerator.is_main_process:
        trainer.accelerator.wait_for_everyone()
        return final
    model = trainer.accelerator.unwrap_model(trainer.model)
    # a failure (a full disk too) removes final.tmp, which gives its room back; the resume saves it again
    with publish_folder(final) as tmp, disk_guard(tmp):
        if state_dict is not None:
            if hasattr(model, "merge_and_unload"):  # the LoRA update is merged into state_dict already
                model = model.get_base_model()
            model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        else:
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    trainer.accelerator.wait_for_everyone()
    return final
