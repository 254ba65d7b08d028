"""The demo's evidence beyond the task metrics, each read from a finished stage's files: whether
the rewards can be gamed before RL (audit_encoder), the oracle's pairwise preference
(oracle_preference), whether each arm learned and how far its weights moved (learning_evidence),
and the oracle on the few-shot headline outputs (headline_oracle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.api import RewardConfig, Run, audit, bootstrap_mean, build_reward, compare, read_json, read_jsonl
from semrl.sandbox.grammar import Meaning, realise_l
from semrl.sandbox.learning import reward_trend, weight_movement
from semrl.sandbox.measures import chance_adequacy, load_world, test_meanings
from semrl.sandbox.oracle import judge


def read_rows(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path, numbered=False, allow_empty=True)


def audit_encoder(world: Path, encoder: Path, contrasts: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Can the demo's rewards be gamed, before any RL? Per reward (variant -> its semantic term's
    contrast option, None for the plain cosine): how often a true paraphrase (another L realisation of
    the meaning) outranks each corruption (the copy of the reference always scores 1 under a cosine),
    and the constant-output attack (one sentence for every row). Semantic + language as in training,
    at tau 0 (the cold-start tau needs a policy)."""
    import random

    lexicon, rng = load_world(world).lexicon, random.Random(0)
    rows = [
        {
            "reference": r["reference"],
            "source": r["source"],
            "paraphrase": realise_l(Meaning(*r["meaning"]), lexicon, rng),
        }
        for r in read_rows(world / "mt_test.jsonl")
    ]
    train = read_rows(world / "mt_train.jsonl")
    semantic = {"type": "semantic", "weight": 1.5, "encoder": str(encoder)}
    language = {"type": "language", "weight": 1.0, "lang": "bo", "threshold": 0.95}
    out = {}
    for variant, contrast in contrasts.items():
        spec = {**semantic, **({"contrast": contrast} if contrast else {})}
        reward = build_reward(RewardConfig.model_validate({"rewards": [spec, language]}))
        reward.prepare(train, 0)  # the bank is drawn from training references, as in a GRPO stage
        result = audit(rows, reward, {"reference": "reference", "source": "source"}, "bo")
        total = result["scores"]["total"]
        out[variant] = {
            "paraphrase_above": total.get("paraphrase_above"),
            "copy_above": total["copy_above"],
            "mean": total["mean"],
            "constant": result.get("constant"),
        }
    return out


def oracle_preference(run_dir: Path, world: Path, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Pairwise preference judged by the oracle (the sandbox's stand-in for the paper's LLM judge):
    the output with the higher adequacy wins, then grammaticality, then purity; both orders."""
    lexicon, meanings = load_world(world).lexicon, test_meanings(world)

    def verdict(prompt: str, a: str, b: str, row: dict[str, Any]) -> float:
        ja, jb = judge(a, meanings[row["id"]], lexicon, "l"), judge(b, meanings[row["id"]], lexicon, "l")
        return (
            (ja.adequacy - jb.adequacy) * 100
            + (ja.grammatical - jb.grammatical) * 10
            + (ja.purity - jb.purity)
        )

    results = {}
    for a, b in pairs:
        path_a, path_b = run_dir / "eval" / f"{a}.outputs.jsonl", run_dir / "eval" / f"{b}.outputs.jsonl"
        if path_a.exists() and path_b.exists():
            rows_a, rows_b = read_rows(path_a), read_rows(path_b)
            results[f"{a} vs {b}"] = {
                "a": a,
                "b": b,
                "judge": "oracle",
                **compare(
                    [r["source"] for r in rows_a],
                    [r["hypothesis"] for r in rows_a],
                    [r["hypothesis"] for r in rows_b],
                    rows_a,
                    verdict,
                ),
            }
    return results


def learning_evidence(
    mt_dir: Path, results: dict[str, Any], base: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per GRPO arm the reward trend (last 20% of steps minus first 20%, bootstrap interval); per
    arm the weight movement of its last stage from the model it started from."""
    trends, movement = {}, {}
    run = Run(mt_dir)
    for arm in results["arms"]:
        if arm == "base":
            continue
        stages = run.arm_stages(arm)
        if "grpo" in stages and (stages["grpo"] / "log_history.json").exists():
            history = stages["grpo"] / "log_history.json"
            trends[arm] = reward_trend(read_json(history), key="reward")
            movement[arm] = {
                "grpo_from_cold_start": weight_movement(stages["sft"] / "final", stages["grpo"] / "final")
            }
        if stages:
            movement.setdefault(arm, {})["from_base"] = weight_movement(
                base, list(stages.values())[-1] / "final"
            )
    return trends, movement


def headline_oracle(world: Path, transfer: dict[str, Any]) -> dict[str, Any]:
    """The oracle on the few-shot headline outputs of each start (agent, object and action in L)."""
    world_obj = load_world(world)
    slots = ("agent", "action", "object")
    meanings = {row["id"]: Meaning(*row["meaning"]) for row in read_rows(world / "headline_test.jsonl")}
    out: dict[str, Any] = {"chance": chance_adequacy(world_obj, slots)}
    for name, start in (transfer.get("starts") or {}).items():
        path = Path(start["run_dir"]) / "eval" / f"{transfer['arm']}.outputs.jsonl"
        if path.exists():
            rows = read_rows(path)
            items = [
                judge(r["hypothesis"], meanings[r["id"]], world_obj.lexicon, "l", slots).adequacy
                for r in rows
            ]
            similarity = [r["seg_sim"] for r in rows if "seg_sim" in r]
            out[name] = {
                "adequacy": {"value": sum(items) / len(items), "ci95": bootstrap_mean(items), "items": items},
                "similarity": {
                    "value": sum(similarity) / len(similarity) if similarity else None,
                    "items": similarity if len(similarity) == len(rows) else None,
                },
                "distinct": len({r["hypothesis"] for r in rows}),
            }
    return out
