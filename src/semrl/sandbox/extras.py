"""The two side experiments of the demo: few-shot headline transfer (from the MT-RL vs the MT-SFT
model) and reward-model transfer (an RM trained on H pairs vs one trained on L pairs, both judged
on held-out L pairs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from semrl.files import atomic_write_json, atomic_write_text


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def headline_transfer(config, world: Path, encoder: Path, mt_dir: Path, out: Path) -> dict[str, Any]:
    from semrl.evaluate.transfer import run_transfer

    done = out / "transfer.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    exp = {
        "name": "sandbox-headline", "seed": config.seed, "model": {"path": "placeholder"},
        "task": {"type": "headline", "source_lang": "bo", "target_lang": "bo", "target_name": "L",
                 "chat_template": "never"},
        "data": {"train": str(world / "headline_train.jsonl"), "test": str(world / "headline_test.jsonl")},
        "sft": {"epochs": 4, "learning_rate": 1e-3, "batch_size": 8, **config.sft, "save_steps": 1000},
        "eval": {"encoder": str(encoder), "metrics": ["rougeL", "sim", "lang"], "resamples": 500},
        "decoding": {"max_new_tokens": 24},
        "arms": [{"name": "headline_sft", "recipe": "strong_sft"}],
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "headline.yaml"
    atomic_write_text(path, yaml.safe_dump(exp, sort_keys=False, allow_unicode=True))
    starts = [f"rl={mt_dir / 'semantic_rl' / 'grpo' / 'final'}", f"sft={mt_dir / 'strong_sft' / 'sft' / 'final'}"]
    return run_transfer(path, starts, config.transfer_k, out)


def reward_model_transfer(config, world: Path, base: Path, out: Path) -> dict[str, Any]:
    """Paper 3's question offline: does an RM trained on H judge L pairs as well as one trained on L?"""
    from semrl.config import ExperimentConfig, RMSpec
    from semrl.data.splits import split_rows
    from semrl.train.rm import run_rm

    done = out / "rm_transfer.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    exp = ExperimentConfig.model_validate({
        "name": "sandbox-rm", "seed": config.seed, "model": {"path": str(base)}, "task": {"type": "generic"},
        "data": {"train": str(world / "prefs_h.jsonl")},
    })
    spec = RMSpec(**{"epochs": 2, "learning_rate": 1e-3, "batch_size": 16, **config.rm, "save_steps": 10_000})
    keep = ("prompt", "chosen", "rejected")
    h_pairs = [{k: r[k] for k in keep} for r in _rows(world / "prefs_h.jsonl")]
    l_train, l_test = split_rows([{k: r[k] for k in keep} for r in _rows(world / "prefs_l.jsonl")], 0.3, config.seed)
    h_train = h_pairs[: len(l_train)]  # same amount of training data for both
    result: dict[str, Any] = {"test_pairs_l": len(l_test), "train_pairs": len(l_train)}
    for name, train in (("rm_h", h_train), ("rm_l", l_train)):
        metrics = run_rm(exp, spec, str(base), train, l_test, out / name, "cpu", label=f"rm ({name})")
        result[name] = {"accuracy_on_l": metrics["pair_accuracy"], "before": metrics["pair_accuracy_before"]}
    atomic_write_json(done, result)
    return result
