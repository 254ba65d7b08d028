"""Reward-model stage: TRL's RewardTrainer (Bradley-Terry) on prompt/chosen/rejected pairs,
evaluated by pair accuracy (chosen scored above rejected) on held-out pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.models.loading import load_classifier, load_tokenizer, score_texts
from semrl.train.common import progress_callback, save_log_history, summarize_logs, training_kwargs
from semrl.train.guard import train_guarded
from semrl.train.settings import StageSettings
from semrl.train.sharded import full_parameters, save_final


def pair_accuracy(model, tokenizer, pairs: list[dict[str, str]], max_length: int = 512) -> float | None:
    """Share of pairs scored chosen > rejected; None (JSON null; test_pairs = 0 beside it) without pairs."""
    if not pairs:
        return None
    chosen = score_texts(
        model, tokenizer, [p.get("prompt", "") + p["chosen"] for p in pairs], max_length=max_length
    )
    rejected = score_texts(
        model, tokenizer, [p.get("prompt", "") + p["rejected"] for p in pairs], max_length=max_length
    )
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


def run_rm(
    settings: StageSettings,
    spec,
    base_path: str,
    train: list[dict[str, str]],
    test: list[dict[str, str]],
    out_dir: Path,
    device: str,
    resume: bool = False,
    label: str = "rm",
) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    tokenizer = load_tokenizer(base_path, settings.trust_remote_code)
    set_seed(settings.seed)  # the score head is initialised here, before the Trainer seeds anything
    model = load_classifier(base_path, settings.dtype, device, settings.trust_remote_code)
    model.config.pad_token_id = tokenizer.pad_token_id
    before = pair_accuracy(model, tokenizer, test, spec.max_length)
    args = RewardConfig(
        **training_kwargs(settings, spec, out_dir, device),
        per_device_train_batch_size=spec.batch_size,
        max_length=spec.max_length,
        **({"optim": spec.optim} if spec.optim else {}),
    )  # None: the library's default
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train),
        processing_class=tokenizer,
        callbacks=[progress_callback(label)],
    )
    train_guarded(trainer, out_dir, resume, label)
    save_log_history(trainer, out_dir)
    final = save_final(trainer, tokenizer, out_dir)
    with full_parameters(trainer):
        after = pair_accuracy(
            trainer.accelerator.unwrap_model(trainer.model), tokenizer, test, spec.max_length
        )
    return {
        "final_model": str(final),
        "pairs": len(train),
        "test_pairs": len(test),
        "pair_accuracy_before": before,
        "pair_accuracy": after,
        **summarize_logs(trainer.state.log_history, ("loss",)),
    }
