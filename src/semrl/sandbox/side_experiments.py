"""The two side experiments of the demo: few-shot headline transfer (from the MT-RL vs the MT-SFT
model) and reward-model transfer (an RM trained on H pairs vs one trained on machine-translated L
pairs, both judged on held-out native L pairs, with an RM trained on native L pairs as the ceiling).

Each result is cached in its folder next to `inputs.json`, a hash of everything it depends on (the
settings, the content of every input file and model folder, and the code's version below); it is
reused only when that hash matches, otherwise the folder is removed and the experiment rerun.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import yaml

from semrl.api import (
    LINE,
    Run,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    load_preferences,
    read_json,
    read_jsonl,
    run_rm_transfer,
    run_transfer,
    split_rows,
    translate_pairs,
)
from semrl.sandbox.config import spec_hash
from semrl.sandbox.grammar import Meaning, realise_l
from semrl.sandbox.lexicon import SLOTS
from semrl.sandbox.measures import load_world
from semrl.sandbox.oracle import parse_h
from semrl.sandbox.rm_claim import KINDS, kb_answer, kb_question, parse_kb_h

INPUTS = "inputs.json"
# bump when headline_transfer's procedure changes (invalidates cached results);
# 3: the starts are the points (arm, checkpoint) chosen on dev, one RL start per reward variant
HEADLINE_VERSION = 3
RM_VERSION = 2  # 2: KB pairs, eval split before translation, equal training sizes, native-L ceiling RM
RM_TEST_SIZE = 0.3  # share of each language's pairs held out for evaluation
RM_LANGUAGES = {"h": "native H pairs", "l": "machine-translated H pairs", "l-native": "native L pairs"}


# a trainer's bookkeeping beside a model's weights: it names the output folder and the step times,
# so two identical trainings would differ in it
BOOKKEEPING = ("training_args.bin", "trainer_state.json")


def fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, or of every file under a folder (relative path and bytes) but the
    trainer's bookkeeping, so a cache key names what a model is, not where or when it was trained."""
    digest = hashlib.sha256()
    path = Path(path)
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and p.name not in BOOKKEEPING)
    )
    if not files:
        raise FileNotFoundError(f"{path}: nothing to fingerprint")
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cached(out: Path, name: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result `out/name` when `out/inputs.json` holds the hash of `inputs`; otherwise
    None, after removing `out` (a stale or unfinished result) so the caller reruns in a fresh folder."""
    done, stamp = out / name, out / INPUTS
    if done.exists() and stamp.exists():
        stored = read_json(stamp, default=None)  # a torn or foreign stamp: rerun
        saved = stored.get("hash") if isinstance(stored, dict) else None
        if saved == spec_hash(inputs):
            return read_json(done)
    if out.exists():
        shutil.rmtree(out)
    return None


def stamp(out: Path, inputs: dict[str, Any]) -> None:
    """Mark the result in `out` as computed from `inputs` (written last, after the result)."""
    atomic_write_json(out / INPUTS, {"hash": spec_hash(inputs), "inputs": inputs})


def headline_setup(
    config, world: Path, encoder: Path, mt_dir: Path, starts: dict[str, Path] | None = None
) -> tuple[dict[str, Any], dict[str, Path], dict[str, Any]]:
    """(experiment dict, starts, inputs) of the headline transfer; `inputs` is everything its result
    depends on (hashed into the cache key). `starts`: name -> model folder (default: the x1 RL and SFT)."""
    exp = {
        "name": "sandbox-headline",
        "seed": config.seed,
        "model": {"path": "placeholder"},
        "task": {
            "type": "headline",
            "source_lang": "bo",
            "target_lang": "bo",
            "target_name": "L",
            "chat_template": "never",
        },
        "data": {"train": str(world / "headline_train.jsonl"), "test": str(world / "headline_test.jsonl")},
        "sft": {"epochs": 4, "learning_rate": 1e-3, "batch_size": 8, **config.sft, "save_steps": 1000},
        "eval": {"encoder": str(encoder), "metrics": ["rougeL", "sim", "lang"], "resamples": 500},
        "decoding": {"max_new_tokens": 24},
        "arms": [{"name": "headline_sft", "recipe": "strong_sft"}],
    }
    starts = starts or {
        "rl": Run(mt_dir).arm_stage("semantic_rl", "grpo") / "final",
        "sft": Run(mt_dir).arm_stage("strong_sft", "sft") / "final",
    }
    inputs = {
        "version": HEADLINE_VERSION,
        "experiment": exp,
        "k": config.transfer_k,
        "files": {name: fingerprint(world / f"{name}.jsonl") for name in ("headline_train", "headline_test")},
        "encoder": fingerprint(encoder),
        "starts": {name: fingerprint(path) for name, path in starts.items()},
    }
    return exp, starts, inputs


def headline_transfer(
    config, world: Path, encoder: Path, mt_dir: Path, out: Path, starts: dict[str, Path] | None = None
) -> dict[str, Any]:
    exp, starts, inputs = headline_setup(config, world, encoder, mt_dir, starts)
    reused = cached(out, "transfer.json", inputs)
    if reused is not None:
        return reused
    out.mkdir(parents=True, exist_ok=True)
    path = out / "headline.yaml"
    atomic_write_text(path, yaml.safe_dump(exp, sort_keys=False, allow_unicode=True))
    result = run_transfer(path, [f"{name}={start}" for name, start in starts.items()], config.transfer_k, out)
    stamp(out, inputs)
    return result


def machine_translator(world_json: Path, error_rate: float, seed: int):
    """The sandbox's MT system, H -> L: each H sentence (a KB question or answer, or a five-slot
    sentence) is parsed to its meaning and written in canonical L (one word per concept, one word
    order: translationese), with a wrong concept in one slot for `error_rate` of the statements.
    Text it cannot parse comes back unchanged."""
    import random

    world = load_world(world_json.parent)
    rng = random.Random(seed)

    def wrong(slot: str, concept: int) -> int:
        others = [c for c in range(world.sizes[slot]) if c != concept]
        return rng.choice(others) if others else concept

    def translate_one(text: str) -> str:
        kb = parse_kb_h(text, world.lexicon)
        if kb is not None:
            kind, question, agent, value = kb
            if question or value is None:  # a question: it has no value
                return kb_question(kind, agent, world.lexicon, "l") + text[len(text.rstrip()) :]
            if rng.random() < error_rate:
                if rng.random() < 0.5:
                    agent = wrong("agent", agent)
                else:
                    value = wrong(KINDS[kind], value)
            return kb_answer(kind, agent, value, world.lexicon, "l")
        found = parse_h(text, world.lexicon)
        if not all(found[slot] for slot in SLOTS):
            return text
        meaning = Meaning(*(min(found[slot]) for slot in SLOTS))
        if rng.random() < error_rate:
            meaning = world.corrupt(meaning, rng)
        return realise_l(meaning, world.lexicon)

    return lambda texts: [translate_one(text) for text in texts]


def rm_training_sets(world: Path, error_rate: float, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Train/eval pairs of the RM experiment. Each language's eval pairs are split off first, and
    only the H training split is machine-translated (no H eval pair reaches any training set); the
    three training sets (H, machine-translated L, native L) are cut to one size, keeping the H
    pairs whose translations survived (translate_pairs drops pairs whose answers became equal)."""
    h_train, h_eval = split_rows(load_preferences(str(world / "prefs_h.jsonl")), RM_TEST_SIZE, seed)
    l_train, l_eval = split_rows(load_preferences(str(world / "prefs_l.jsonl")), RM_TEST_SIZE, seed)
    machine = translate_pairs(h_train, machine_translator(world / "world.json", error_rate, seed), "l")
    survived = {pair[LINE] for pair in machine}
    h_train = [pair for pair in h_train if pair[LINE] in survived]
    n = min(len(h_train), len(machine), len(l_train))

    def clean(pairs: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
        return [
            {
                "prompt": p["prompt"],
                "chosen": p["chosen"],
                "rejected": p["rejected"],
                "language": language,
                "category": p["category"],
                **({"source_line": p[LINE]} if LINE in p else {}),
            }
            for p in pairs
        ]

    return {
        "h_train": clean(h_train[:n], "h"),
        "h_eval": clean(h_eval, "h"),
        "l_machine": clean(machine[:n], "l"),
        "l_native_train": clean(l_train[:n], "l-native"),
        "l_eval": clean(l_eval, "l"),
    }


def per_pair_hits(scores_path: Path) -> dict[str, dict[str, list[float]]]:
    """hits[rm][language] -> 0/1 per eval pair, in pair order, from rm transfer's scores.jsonl."""
    hits: dict[str, dict[str, list[float]]] = {}
    for row in read_jsonl(scores_path, numbered=False, allow_empty=True):
        hits.setdefault(row["rm"], {}).setdefault(row["language"], []).append(
            1.0 if row["chosen_score"] > row["rejected_score"] else 0.0
        )
    return hits


def rm_inputs(config, world: Path, base: Path) -> dict[str, Any]:
    """Everything the RM experiment's result depends on (hashed into the cache key)."""
    return {
        "version": RM_VERSION,
        "seed": config.seed,
        "rm": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 16, **config.rm, "save_steps": 10_000},
        "mt_error": config.rm_mt_error,
        "test_size": RM_TEST_SIZE,
        "resamples": 500,
        "base": fingerprint(base),
        "files": {
            name: fingerprint(world / name) for name in ("prefs_h.jsonl", "prefs_l.jsonl", "world.json")
        },
    }


def reward_model_transfer(config, world: Path, base: Path, out: Path) -> dict[str, Any]:
    """Paper 3's question offline: an RM trained on native H pairs vs. one trained on machine-made L
    pairs (the H training pairs through the sandbox MT), both judged on held-out native H and native
    L pairs, with an RM trained on as many native L pairs as the ceiling."""
    out, world, base = out.resolve(), world.resolve(), base.resolve()  # the YAML below holds absolute paths
    inputs = rm_inputs(config, world, base)
    rm, resamples = inputs["rm"], inputs["resamples"]
    if cached(out, "rm_transfer.json", inputs) is None:
        out.mkdir(parents=True, exist_ok=True)
        sets = rm_training_sets(world, config.rm_mt_error, config.seed)
        for name, pairs in sets.items():
            atomic_write_jsonl(out / "pairs" / f"{name}.jsonl", pairs)
        split = {
            "h_train": "train",
            "h_eval": "eval",
            "l_machine": "train",
            "l_native_train": "train",
            "l_eval": "eval",
        }
        setup = {
            "name": "sandbox-rm",
            "seed": config.seed,
            "model": {"path": str(base)},
            "data": {
                "files": [
                    {"path": str(out / "pairs" / f"{name}.jsonl"), "split": part}
                    for name, part in split.items()
                ]
            },
            "train_languages": list(RM_LANGUAGES),
            "eval_languages": ["h", "l"],
            "reference_language": "h",
            "rm": rm,
            "representation": {"max_inputs": 64},
            "resamples": resamples,
        }
        atomic_write_text(
            out / "rm_transfer.yaml", yaml.safe_dump(setup, sort_keys=False, allow_unicode=True)
        )
        run_rm_transfer(out / "rm_transfer.yaml", out)
        stamp(out, inputs)
    result = read_json(out / "rm_transfer.json")
    matrix, hits = result["matrix"], per_pair_hits(out / "scores.jsonl")

    def row(lang: str) -> dict[str, Any]:
        return {
            "accuracy_on_l": matrix[lang]["l"]["accuracy"],
            "ci95_on_l": matrix[lang]["l"]["ci95"],
            "accuracy_on_h": matrix[lang]["h"]["accuracy"],
            "ci95_on_h": matrix[lang]["h"]["ci95"],
            "trained_on": RM_LANGUAGES[lang],
            "train_pairs": result["pairs"][lang]["train"],
        }

    return {
        "rm_h": row("h"),
        "rm_l": row("l"),
        "rm_l_native": row("l-native"),
        "ceiling": matrix["l-native"]["l"]["accuracy"],
        "per_pair": {
            "rm_h_on_h": hits["h"]["h"],
            "rm_h_on_l": hits["h"]["l"],
            "rm_l_on_l": hits["l"]["l"],
            "ceiling_on_l": hits["l-native"]["l"],
        },
        "resamples": resamples,
        "seed": config.seed,
        "test_pairs_l": result["pairs"]["l"]["eval"],
        "test_pairs_h": result["pairs"]["h"]["eval"],
        "train_pairs": result["pairs"]["h"]["train"],
        "matrix": matrix,
        "reference_vs_native": result["reference_vs_native"],
        "representation_shift": result.get("representation", {}).get("shift"),
        "report": str(out / "report.html"),
    }
