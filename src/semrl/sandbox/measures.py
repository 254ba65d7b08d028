"""What the oracle says about a set of outputs, and the world-level properties the report shows
before any claim: the base's own translation ability, the chance line, and the encoder's
code-mixing property.

The oracle is the ground truth of the sandbox: adequacy is the share of the meaning's slots an
output expresses in L, split into concepts the narrow parallel data covers and concepts it never
shows; `distinct` counts different outputs over the test set (an output that ignores its source
gives one sentence for every item).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from semrl.api import GenerationSettings, bootstrap_mean, generate, load_encoder, read_json, read_jsonl
from semrl.sandbox.grammar import Meaning, realise_l, realise_mixed
from semrl.sandbox.lexicon import SLOTS
from semrl.sandbox.oracle import judge
from semrl.sandbox.world import World, WorldSpec, aligned_line


def load_world(world_dir: Path) -> World:
    spec = WorldSpec.model_validate(read_json(world_dir / "world.json")["spec"])
    return World(spec)


def covered(world: World) -> dict[str, set[int]]:
    """Concepts per slot that the narrow parallel data shows (all of a slot it does not restrict)."""
    bias = world.spec.parallel.bias
    return {slot: set(range(min(bias.get(slot, world.sizes[slot]), world.sizes[slot]))) for slot in SLOTS}


def chance_adequacy(world: World, slots: tuple[str, ...] = SLOTS) -> float:
    """Expected adequacy of an output that ignores its source: one uniformly random concept per slot."""
    return sum(1 / world.sizes[slot] for slot in slots) / len(slots)


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "value": sum(values) / len(values) if values else None,
        "ci95": bootstrap_mean(values) if values else None,
        "n": len(values),
        "items": values,
    }


def judge_outputs(hypotheses: list[str], meanings: list[Meaning], world: World) -> dict[str, Any]:
    """Adequacy (overall, on covered and uncovered concepts), grammaticality, purity, distinct outputs."""
    cover = covered(world)
    verdicts = [judge(h, m, world.lexicon, "l") for h, m in zip(hypotheses, meanings, strict=True)]
    slot_hits: dict[str, list[float]] = {"covered": [], "uncovered": []}
    for verdict, meaning in zip(verdicts, meanings, strict=True):
        for slot in SLOTS:
            concept = getattr(meaning, slot)
            side = "covered" if concept in cover[slot] else "uncovered"
            slot_hits[side].append(float(verdict.slots[slot] == concept))
    return {
        "adequacy": _summary([v.adequacy for v in verdicts]),
        "grammatical": _summary([float(v.grammatical) for v in verdicts]),
        "purity": _summary([v.purity for v in verdicts]),
        "coverage": {side: _summary(hits) for side, hits in slot_hits.items()},
        "distinct": len(set(hypotheses)),
        "n": len(hypotheses),
    }


def test_meanings(world_dir: Path) -> dict[int, Meaning]:
    return {row["id"]: Meaning(*row["meaning"]) for row in read_jsonl(world_dir / "mt_test.jsonl")}


def oracle_scores(eval_dir: Path, world_dir: Path) -> dict[str, Any]:
    """The oracle's verdicts on every `<name>.outputs.jsonl` in `eval_dir` (base and each arm)."""
    world, meanings = load_world(world_dir), test_meanings(world_dir)
    out: dict[str, Any] = {}
    for path in sorted(eval_dir.glob("*.outputs.jsonl")):
        rows = read_jsonl(path)
        out[path.name[: -len(".outputs.jsonl")]] = judge_outputs(
            [r["hypothesis"] for r in rows], [meanings[r["id"]] for r in rows], world
        )
    return out


def strip_items(scores: dict[str, Any]) -> dict[str, Any]:
    """The same verdicts without per-item vectors (for the report and results.json)."""
    if isinstance(scores, dict):
        return {k: strip_items(v) for k, v in scores.items() if k != "items"}
    return scores


def base_translation(base: Path, world_dir: Path, max_new_tokens: int = 40) -> dict[str, Any]:
    """The base model's own H->L translation before any tuning, asked the way aligned text appeared
    in its pretraining ('H: <sentence>' then 'L:'), judged by the oracle on the test set."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    world, rows = load_world(world_dir), read_jsonl(world_dir / "mt_test.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    prompts = [aligned_line(row["source"], "").rstrip() for row in rows]
    outputs = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=max_new_tokens))
    hypotheses = [o.splitlines()[0].strip() if o.strip() else "" for o in outputs]
    result = judge_outputs(hypotheses, [Meaning(*row["meaning"]) for row in rows], world)
    return {**strip_items(result), "prompt": "H: <source>\\nL:", "examples": hypotheses[:3]}


def mix_property(encoder: Path, world_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Does the reward encoder prefer code-mixed L with every concept right over pure L with one or
    two concepts wrong? (Real multilingual encoders do; it is the temptation C4 is about.)"""
    world, rows = load_world(world_dir), read_jsonl(world_dir / "mt_test.jsonl")
    rng = random.Random(seed)
    encoder_model = load_encoder(str(encoder))
    refs, mixed, wrong1, wrong2 = [], [], [], []
    for row in rows:
        meaning = Meaning(*row["meaning"])
        refs.append(row["reference"])
        mixed.append(realise_mixed(meaning, world.lexicon, rng, tuple(rng.sample(SLOTS, 2))))
        once = world.corrupt(meaning, rng)
        wrong1.append(realise_l(once, world.lexicon, rng))
        wrong2.append(realise_l(world.corrupt(once, rng), world.lexicon, rng))

    def cosines(texts: list[str]) -> list[float]:
        a = encoder_model.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        b = encoder_model.encode(
            refs, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return [float(x) for x in (a * b).sum(axis=1)]

    sim_mixed, sim_wrong1, sim_wrong2 = cosines(mixed), cosines(wrong1), cosines(wrong2)
    n = len(rows)
    return {
        "similarity": {
            "mixed_all_right": sum(sim_mixed) / n,
            "pure_one_wrong": sum(sim_wrong1) / n,
            "pure_two_wrong": sum(sim_wrong2) / n,
        },
        "mixed_above_pure_one_wrong": sum(m > w for m, w in zip(sim_mixed, sim_wrong1, strict=True)) / n,
        "mixed_above_pure_two_wrong": sum(m > w for m, w in zip(sim_mixed, sim_wrong2, strict=True)) / n,
        "n": n,
        "note": "code-mixed = the meaning in L with two slots written as H words; "
        "pure = L with 1 or 2 wrong slots",
    }
