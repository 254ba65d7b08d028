"""GRPO stage: TRL's GRPOTrainer with semrl's composed reward (one callable that logs each term).

Before training the reward sees the stage's rows (a contrast bank is drawn from them) and a
`tau: cold_start` is fixed from the starting model's own outputs (train/cold_start.py); after it,
the logged reward and monitors are read for signs of reward hacking (train/hacking.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler

from semrl.distributed import is_main_process
from semrl.models.loading import load_causal_lm, load_tokenizer
from semrl.notices import warn
from semrl.rewards import build_reward
from semrl.rewards.base import RewardComponent
from semrl.rewards.compose import ComposedReward
from semrl.train.cold_start import resolve_cold_start_tau
from semrl.train.common import (
    lora_config,
    progress_callback,
    save_log_history,
    summarize_logs,
    training_kwargs,
)
from semrl.train.completions import CompletionsLog
from semrl.train.guard import train_guarded
from semrl.train.hacking import hacking_check
from semrl.train.settings import StageSettings
from semrl.train.sharded import save_final
from semrl.train.stall import record_stall, stall_keys


def grpo_config(
    settings: StageSettings, spec, out_dir: Path, device: str, reward_weights: list[float] | None = None
):
    from trl import GRPOConfig

    return GRPOConfig(
        **training_kwargs(settings, spec, out_dir, device),
        per_device_train_batch_size=spec.prompts_per_step * spec.num_generations,
        gradient_accumulation_steps=spec.grad_accum,
        num_generations=spec.num_generations,
        max_completion_length=spec.max_completion_length,
        temperature=spec.temperature if spec.temperature is not None else settings.temperature,
        top_p=spec.top_p if spec.top_p is not None else settings.top_p,
        **({"top_k": settings.top_k} if settings.top_k is not None else {}),
        beta=spec.beta,
        trust_remote_code=settings.trust_remote_code,  # TRL loads the beta > 0 reference with it
        loss_type=spec.loss_type,
        epsilon=spec.epsilon,
        scale_rewards=spec.scale_rewards,
        mask_truncated_completions=spec.mask_truncated_completions,
        **({"reward_weights": reward_weights} if reward_weights is not None else {}),
        **spec.trl_kwargs(),  # only those set, under TRL's names (preflight checks their values)
        **spec.vllm_kwargs(),  # only those set; preflight refuses use_vllm without vLLM or CUDA
        **({"optim": spec.optim} if spec.optim else {}),  # None: the library's default
    )


class EpochSeededSampler(Sampler):
    """TRL's RepeatSampler draws each epoch's order from one generator seeded once, so its order in
    epoch e depends on having drawn epochs 0..e-1 in this process: a stage resumed in epoch 2
    walked the prompts in epoch 0's order and its weights drifted (up to 1e-3 after 24 steps,
    measured). This wrapper re-seeds the generator and replays the earlier draws at every epoch
    (the Trainer calls `set_epoch`), so an uninterrupted and a resumed stage see the same order."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self):
        if getattr(self.inner, "shuffle", False) and getattr(self.inner, "seed", None) is not None:
            generator = torch.Generator()
            generator.manual_seed(self.inner.seed)
            for _ in range(self.epoch):
                torch.randperm(self.inner.num_samples, generator=generator)
            self.inner.generator = generator
        return iter(self.inner)


def resumable_grpo_trainer():
    """GRPOTrainer whose prompt order is a function of (seed, epoch) only."""
    from trl import GRPOTrainer

    class ResumableGRPOTrainer(GRPOTrainer):
        completions_log: CompletionsLog | None = None  # set for grpo.log_completions

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if self.ref_model is not None:  # beta > 0 without LoRA: TRL's copy of the starting model
                # TRL scores with it under no_grad but leaves its weights trainable; frozen, it stays
                # out of any optimizer and autograd graph by construction
                self.ref_model.requires_grad_(False)

        def _get_train_sampler(self, *args, **kwargs):
            return EpochSeededSampler(super()._get_train_sampler(*args, **kwargs))

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            record_stall(self, len(inputs))  # stall/*: within-group spread and |advantage|
            return output

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            super().log(logs, start_time)
            if self.completions_log is not None:
                self.completions_log.write(self)

    return ResumableGRPOTrainer


def run_grpo(
    settings: StageSettings,
    spec,
    reward_config,
    model_path: str,
    records: list[dict[str, Any]],
    out_dir: Path,
    device: str,
    resume: bool = False,
    label: str = "grpo",
) -> dict[str, Any]:
    from datasets import Dataset

    tokenizer = load_tokenizer(model_path, settings.trust_remote_code)
    model = load_causal_lm(
        model_path, settings.dtype, device, settings.trust_remote_code, settings.attn_implementation
    )
    reward = build_reward(reward_config)
    reward.prepare(records, settings.seed)  # contrast banks, drawn from this stage's rows
    reward_funcs: Sequence[ComposedReward | RewardComponent] = [reward]
    weights: list[float] | None = None
    if (
        spec.multi_objective_aggregation == "normalize_then_sum"
    ):  # TRL normalises each term: one function each
        reward_funcs, weights = reward.separate_functions()
    args = grpo_config(settings, spec, out_dir, device, weights)
    tau = resolve_cold_start_tau(
        reward, model, tokenizer, records, args, settings.seed, out_dir, device, resume
    )
    trainer = resumable_grpo_trainer()(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=lora_config(settings.lora),
        callbacks=[progress_callback(label)],
    )
    if spec.log_completions is not False:  # default on: what earned the reward is in the run folder
        trainer.completions_log = CompletionsLog(out_dir, spec.num_completions_to_print)
    train_guarded(trainer, out_dir, resume, label)
    save_log_history(trainer, out_dir)
    final = save_final(trainer, tokenizer, out_dir)
    history = trainer.state.log_history
    hacking = hacking_check(history)
    if hacking["warning"] and is_main_process():
        warn(f"{label}: {hacking['message']}")
    names = [f"reward/{component.name}" for component, _ in reward.components]
    monitors = sorted({key for entry in history for key in entry if key.startswith("monitor/")})
    return {
        "final_model": str(final),
        "prompts": len(records),
        **summarize_logs(
            history,
            ("loss", "reward", "kl", "completions/mean_length", *names, *monitors, *stall_keys(history)),
        ),
        **({"tau_cold_start": tau} if tau is not None else {}),
        "hacking": hacking,
    }
