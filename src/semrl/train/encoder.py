"""Encoder stage: contrastive training of a sentence encoder on parallel or paraphrase pairs
(sentence-transformers, MultipleNegativesRankingLoss = in-batch negatives), from a pretrained
encoder or from a tiny one built here. This is how the paper got a Tibetan-capable reward
encoder. Evaluation: bitext retrieval accuracy on held-out pairs, before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.distributed import is_main_process, main_process_first
from semrl.encoders.loading import resolve_encoder
from semrl.files import publish_folder
from semrl.models.tiny import build_tiny_encoder
from semrl.train.common import progress_callback, save_log_history, summarize_logs
from semrl.train.guard import train_guarded
from semrl.train.settings import StageSettings
from semrl.train.sharded import full_parameters


def retrieval_accuracy(model, anchors: list[str], positives: list[str]) -> float | None:
    """Top-1 retrieval accuracy, averaged over both directions (anchor->positive, positive->anchor);
    None (JSON null; test_pairs = 0 beside it) without test pairs."""
    if not anchors:
        return None
    a = model.encode(anchors, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
    b = model.encode(positives, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
    sims = a @ b.T
    import torch

    target = torch.arange(len(anchors), device=sims.device)
    forward = (sims.argmax(dim=1) == target).float().mean().item()
    backward = (sims.argmax(dim=0) == target).float().mean().item()
    return (forward + backward) / 2


def initial_encoder(spec, texts: list[str], out_dir: Path, device: str):
    from sentence_transformers import SentenceTransformer

    if spec.base is not None:
        return SentenceTransformer(resolve_encoder(spec.base), device=device)
    path = out_dir / "init"
    with main_process_first(device):  # under accelerate launch rank 0 builds it, the others load it
        if is_main_process() and not (path / "modules.json").exists():
            with publish_folder(path) as tmp:
                build_tiny_encoder(tmp, texts, spec.tiny.tiny_spec())
    return SentenceTransformer(str(path), device=device)


def run_encoder(
    settings: StageSettings,
    spec,
    train: list[dict[str, str]],
    test: list[dict[str, str]],
    out_dir: Path,
    device: str,
    resume: bool = False,
) -> dict[str, Any]:
    """A sentence encoder fine-tuned on (anchor, positive) pairs; its held-out retrieval metrics."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses
    from sentence_transformers.training_args import BatchSamplers

    texts = [p["anchor"] for p in train] + [p["positive"] for p in train]
    model = initial_encoder(spec, texts, out_dir, device)
    model.max_seq_length = spec.max_length
    anchors, positives = [p["anchor"] for p in test], [p["positive"] for p in test]
    before = retrieval_accuracy(model, anchors, positives)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps,
        per_device_train_batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        seed=settings.seed,
        data_seed=settings.seed,
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=2,
        logging_steps=spec.logging_steps,
        use_cpu=device == "cpu",
        disable_tqdm=True,
        report_to=[] if settings.report_to == "none" else [settings.report_to],
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
    dataset = Dataset.from_dict(
        {"anchor": [p["anchor"] for p in train], "positive": [p["positive"] for p in train]}
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=losses.MultipleNegativesRankingLoss(model),
        callbacks=[progress_callback("encoder")],
    )
    train_guarded(trainer, out_dir, resume, "encoder")
    save_log_history(trainer, out_dir)
    final = out_dir / "final"
    with full_parameters(trainer):  # every rank enters: under FSDP each holds a shard only
        after = retrieval_accuracy(model, anchors, positives)
        if trainer.accelerator.is_main_process:  # one writer under accelerate launch
            with publish_folder(final) as tmp:
                model.save(str(tmp))
    trainer.accelerator.wait_for_everyone()
    return {
        "final_model": str(final),
        "pairs": len(train),
        "test_pairs": len(test),
        "retrieval_accuracy_before": before,
        "retrieval_accuracy": after,
        **summarize_logs(trainer.state.log_history, ("loss",)),
    }
