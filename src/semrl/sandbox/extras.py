"""The two side experiments of the demo: few-shot headline transfer (from the MT-RL vs the MT-SFT
model) and reward-model transfer (an RM trained on H pairs vs one trained on L pairs, both judged
on held-out L pairs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from semrl.files import atomic_write_jsonl, atomic_write_text


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


def machine_translator(world_json: Path, error_rate: float, seed: int):
    """The sandbox's MT system, H -> L: each H sentence is parsed to its meaning and written in
    canonical L (one word per concept, one word order: translationese), with a wrong concept in one
    slot for `error_rate` of the sentences; "Translate into H: <L>" prompts become
    "Translate into L: <H>", so translated pairs have the shape of native L pairs."""
    import random

    from semrl.sandbox.grammar import Meaning, realise_h, realise_l
    from semrl.sandbox.lexicon import SLOTS
    from semrl.sandbox.oracle import parse_h, parse_l
    from semrl.sandbox.world import World, WorldSpec

    world = World(WorldSpec.model_validate(json.loads(world_json.read_text(encoding="utf-8"))["spec"]))
    rng = random.Random(seed)

    def meaning(found: dict[str, set[int]]) -> Meaning | None:
        if not all(found[slot] for slot in SLOTS):
            return None
        return Meaning(*(min(found[slot]) for slot in SLOTS))

    def translate_one(text: str) -> str:
        prefix = "Translate into H: "
        if text.startswith(prefix):
            parsed = meaning(parse_l(text[len(prefix):], world.lexicon))
            return f"Translate into L: {realise_h(parsed, world.lexicon)}\n" if parsed else text
        parsed = meaning(parse_h(text, world.lexicon))
        if parsed is None:
            return text
        if rng.random() < error_rate:
            parsed = world.corrupt(parsed, rng)
        return realise_l(parsed, world.lexicon)

    return lambda texts: [translate_one(text) for text in texts]


def reward_model_transfer(config, world: Path, base: Path, out: Path) -> dict[str, Any]:
    """Paper 3's question offline: an RM trained on native H pairs vs. one trained on machine-made L
    pairs (H pairs through the sandbox MT), both judged on native H and native L pairs."""
    from semrl.data.preferences import load_preferences, translate_pairs
    from semrl.rm.transfer import run_rm_transfer

    out, world, base = out.resolve(), world.resolve(), base.resolve()  # the YAML below holds absolute paths
    done = out / "rm_transfer.json"
    if not done.exists():
        out.mkdir(parents=True, exist_ok=True)
        h_pairs = load_preferences(str(world / "prefs_h.jsonl"))
        translated = translate_pairs(h_pairs, machine_translator(world / "world.json", config.rm_mt_error, config.seed), "l")
        atomic_write_jsonl(out / "prefs_l_machine.jsonl", [{k: v for k, v in p.items() if k != "__line__"} for p in translated])
        rm = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 16, **config.rm, "save_steps": 10_000}
        setup = {
            "name": "sandbox-rm", "seed": config.seed, "model": {"path": str(base)},
            "data": {"files": [{"path": str(world / "prefs_h.jsonl"), "split": "both"},
                               {"path": str(out / "prefs_l_machine.jsonl"), "split": "train"},
                               {"path": str(world / "prefs_l.jsonl"), "split": "eval"}],
                     "test_size": 0.3},
            "reference_language": "h", "rm": rm, "representation": {"max_inputs": 64}, "resamples": 500,
        }
        atomic_write_text(out / "rm_transfer.yaml", yaml.safe_dump(setup, sort_keys=False, allow_unicode=True))
        run_rm_transfer(out / "rm_transfer.yaml", out)
    result = json.loads(done.read_text(encoding="utf-8"))
    matrix = result["matrix"]
    return {"rm_h": {"accuracy_on_l": matrix["h"]["l"]["accuracy"], "accuracy_on_h": matrix["h"]["h"]["accuracy"]},
            "rm_l": {"accuracy_on_l": matrix["l"]["l"]["accuracy"], "accuracy_on_h": matrix["l"]["h"]["accuracy"],
                     "trained_on": "machine-translated H pairs"},
            "test_pairs_l": result["pairs"]["l"]["eval"], "train_pairs": result["pairs"]["h"]["train"],
            "matrix": matrix, "reference_vs_native": result["reference_vs_native"],
            "representation_shift": result.get("representation", {}).get("shift"), "report": str(out / "report.html")}
