"""Each method's point (an arm and one of its checkpoints), chosen on a dev split, as a user would.

The demo trains every method (strong SFT, GRPO on each reward variant) at several learning-rate
multiples and keeps checkpoints along the way. Reading a claim from one fixed multiple reads a
heuristic; reading it from the multiple that does best on test chooses on the test set. Here every
kept checkpoint and the final model of each arm's last stage translates the dev split (unbiased like
test, meanings disjoint from train and test), the oracle judges it (the sandbox's stand-in for a
user judging dev outputs, and never the training reward), and each method keeps its point with the
highest dev adequacy (ties: the earlier multiple in the fixed list, then the earlier step). Every
arm is eligible: whether its training reward rose says nothing about whether its outputs got better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.api import (
    Evaluator,
    Run,
    atomic_write_json,
    load_experiment,
    read_json,
    read_jsonl,
    stage_checkpoints,
)
from semrl.sandbox.grammar import Meaning
from semrl.sandbox.measures import judge_outputs, load_world, strip_items
from semrl.sandbox.side_experiments import fingerprint

DEV_DIR = "dev"


def last_stage(mt_dir: Path, arm: str) -> Path | None:
    """The folder of the arm's last stage (GRPO after a cold start, the SFT continuation, else SFT)."""
    stages = Run(mt_dir).arm_stages(arm)
    for stage in ("grpo", "continue", "sft"):
        if stage in stages and (stages[stage] / "final" / "config.json").exists():
            return stages[stage]
    return None


def final_model(mt_dir: Path, arm: str) -> Path | None:
    """The final model of the arm's last stage."""
    stage = last_stage(mt_dir, arm)
    return None if stage is None else stage / "final"


def point_key(arm: str, step: int) -> str:
    """How a point is named in the evidence: 'strong_sft_x0.3@40'."""
    return f"{arm}@{step}"


def candidate_points(mt_dir: Path, arm: str) -> list[tuple[int, Path]]:
    """(step, model folder) of every kept checkpoint of the arm's last stage and of its final model
    (labelled with the stage's last step; left out when a checkpoint of that step is kept already)."""
    stage = last_stage(mt_dir, arm)
    if stage is None:
        return []
    points = [(step, path) for step, path in stage_checkpoints(stage) if (path / "config.json").exists()]
    metrics = read_json(stage / "metrics.json") if (stage / "metrics.json").exists() else {}
    last = int(metrics.get("steps") or (points[-1][0] if points else 0))
    if last not in {step for step, _ in points}:
        points.append((last, stage / "final"))
    return points


def dev_oracle(mt_dir: Path, world_dir: Path, arms: list[str]) -> dict[str, dict[int, Any]]:
    """Oracle verdicts on the dev split of every candidate point of each arm, {arm: {step: verdict}}.
    Outputs are kept in `<mt>/dev/` and reused while the model's weights are unchanged (the
    fingerprint of its folder)."""
    rows = read_jsonl(world_dir / "mt_dev.jsonl", numbered=False, allow_empty=True)
    if not rows:
        return {}
    exp = load_experiment(mt_dir / "config.yaml")
    exp = exp.model_copy(
        update={
            "eval": exp.eval.model_copy(
                update={"suite": None, "metrics": ["lang"], "curve_every": None, "compare": []}
            )
        }
    )
    out_dir = mt_dir / DEV_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    world = load_world(world_dir)
    meanings = [Meaning(*row["meaning"]) for row in rows]
    evaluator = None
    verdicts: dict[str, dict[int, Any]] = {}
    for arm in arms:
        for step, model in candidate_points(mt_dir, arm):
            name = point_key(arm, step)
            stamp, outputs = out_dir / f"{name}.model.json", out_dir / f"{name}.outputs.jsonl"
            key = fingerprint(model)
            fresh = stamp.exists() and outputs.exists() and read_json(stamp).get("hash") == key
            if not fresh:
                evaluator = evaluator or Evaluator(exp, rows, str(model), out_dir, "cpu")
                evaluator.evaluate(name, str(model))
                atomic_write_json(stamp, {"hash": key, "model": str(model)})
            hypotheses = [row["hypothesis"] for row in read_jsonl(outputs, numbered=False)]
            verdict = judge_outputs(hypotheses, meanings, world)
            verdicts.setdefault(arm, {})[step] = {**verdict, "model": str(model)}
    return verdicts


def _dev_value(verdict: dict[str, Any] | None) -> float | None:
    return ((verdict or {}).get("adequacy") or {}).get("value")


def choose(dev: dict[str, dict[int, Any]], methods: dict[str, list[str]]) -> dict[str, Any]:
    """{method: {"arm", "step", "key", "model", "dev_adequacy": {key: value}, "reason"}}: the point of
    each method with the highest dev adequacy over its arms' checkpoints; arm None when it has none."""
    out: dict[str, Any] = {}
    for method, arms in methods.items():
        scores = {
            point_key(arm, step): (value, arm_index, step)
            for arm_index, arm in enumerate(arms)
            for step, verdict in sorted((dev.get(arm) or {}).items())
            if (value := _dev_value(verdict)) is not None
        }
        best = max(scores, key=lambda key: (scores[key][0], -scores[key][1], -scores[key][2]), default=None)
        if best is None:
            out[method] = {
                "arm": None,
                "step": None,
                "key": None,
                "model": None,
                "dev_adequacy": {},
                "reason": f"no point of {method} has dev outputs",
            }
            continue
        value, arm_index, step = scores[best]
        arm = arms[arm_index]
        out[method] = {
            "arm": arm,
            "step": step,
            "key": best,
            "model": dev[arm][step]["model"],
            "dev_adequacy": {key: entry[0] for key, entry in scores.items()},
            "dev_coverage": strip_items(dev[arm][step].get("coverage") or {}),
            "reason": f"{best}: highest dev adequacy {value:.3f} of {len(scores)} point(s)",
        }
    return out


def dev_summary(dev: dict[str, dict[int, Any]]) -> dict[str, Any]:
    """Per arm and step: adequacy and coverage on dev (no per-item vectors)."""
    return {arm: {str(step): strip_items(v) for step, v in steps.items()} for arm, steps in dev.items()}
