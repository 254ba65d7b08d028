"""SFT stage: TRL's SFTTrainer on prompt/completion records, loss on the completion only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.models.loading import load_causal_lm, load_tokenizer
from semrl.train.common import (
    lora_config,
    progress_callback,
    save_log_history,
    summarize_logs,
    training_kwargs,
)
from semrl.train.guard import train_guarded
from semrl.train.settings import StageSettings
from semrl.train.sharded import save_final


def run_sft(
    settings: StageSettings,
    spec,
    model_path: str,
    records: list[dict[str, Any]],
    out_dir: Path,
    device: str,
    resume: bool = False,
    label: str = "sft",
) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(model_path, settings.trust_remote_code)
    model = load_causal_lm(
        model_path, settings.dtype, device, settings.trust_remote_code, settings.attn_implementation
    )
    args = SFTConfig(
        **training_kwargs(settings, spec, out_dir, device),
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        warmup_steps=spec.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=spec.weight_decay,
        max_length=spec.max_length,
        completion_only_loss=True,
        **({"optim": spec.optim} if spec.optim else {}),  # None: the library's default
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=lora_config(settings.lora),
        callbacks=[progress_callback(label)],
    )
    train_guarded(trainer, out_dir, resume, label)
    save_log_history(trainer, out_dir)
    final = save_final(trainer, tokenizer, out_dir)
    return {
        "final_model": str(final),
        "examples": len(records),
        **summarize_logs(trainer.state.log_history, ("loss", "grad_norm")),
    }
