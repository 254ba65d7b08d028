"""Pretrain the sandbox's tiny base model on the world's H text, general-task demonstrations and a
little L, so that it is competent on the general suite before any arm can make it forget.

Plain causal language modelling with TRL's SFTTrainer on a `text` dataset; the tokenizer is a
byte-level BPE trained on the same text. Competence is then measured with semrl's own general
suite (held-out items), the same code that measures the alignment tax later.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pydantic import Field

from semrl.api import (
    StrictModel,
    TinySpec,
    build_tiny_lm,
    load_suite,
    progress_callback,
    publish_folder,
    quiet,
    read_json,
    run_suite,
)


class BaseModelSpec(StrictModel):
    vocab_size: int = Field(2048, description="two scripts (H and L) share one byte-level BPE vocabulary")
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 4
    num_heads: int = 4
    max_positions: int = 256
    steps: int = Field(3000, ge=1)
    learning_rate: float = 2e-3
    batch_size: int = 32
    max_length: int = 96


def pretrain_base(texts: list[str], spec: BaseModelSpec, out_dir: Path, seed: int = 0) -> Path:
    """Train tokenizer + tiny Llama from scratch on `texts`; save to out_dir/final atomically."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    init = out_dir / "init"
    build_tiny_lm(
        init,
        texts,
        TinySpec(
            vocab_size=spec.vocab_size,
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_layers=spec.num_layers,
            num_heads=spec.num_heads,
            max_positions=spec.max_positions,
            seed=seed,
        ),
    )
    args = SFTConfig(
        output_dir=str(out_dir / "trainer"),
        max_steps=spec.steps,
        learning_rate=spec.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=spec.batch_size,
        max_length=spec.max_length,
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=True,
        dataset_text_field="text",
        packing=False,
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(init)
    trainer = SFTTrainer(
        model=str(init),
        args=args,
        train_dataset=Dataset.from_dict({"text": texts}),
        processing_class=tokenizer,
        callbacks=[progress_callback("pretrain base")],
    )
    quiet(trainer).train()
    final = out_dir / "final"
    with publish_folder(final) as tmp:
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(init, ignore_errors=True)
    return final


def competence(model_dir: Path, suite_path: Path) -> dict[str, Any]:
    """Held-out general-suite scores of a model (QA EM, copy EM, fact MC accuracy)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    suite, items = load_suite(suite_path)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    results = run_suite(suite, items, model, tokenizer)
    return {bench: {m: v["value"] for m, v in r["metrics"].items()} for bench, r in results.items()}


if __name__ == "__main__":  # python -m semrl.sandbox.pretrain WORLD_DIR STEPS
    import sys
    import time

    from semrl.api import to_json

    world_dir = Path(sys.argv[1])
    texts = read_json(world_dir / "pretrain.txt")
    start = time.time()
    path = pretrain_base(texts, BaseModelSpec(steps=int(sys.argv[2])), world_dir / "base")
    print("seconds", round(time.time() - start, 1))
    print(to_json(competence(path, world_dir / "general" / "suite.yaml"), indent=1))
