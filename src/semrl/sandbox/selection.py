"""Each method's learning rate, chosen on a dev split, as a user would choose it.

The demo trains every method (strong SFT, GRPO on the paper's reward, GRPO on the corrected reward)
at several learning-rate multiples. Reading a claim from one fixed multiple reads a heuristic; reading
it from the multiple that does best on test chooses on the test set. Here each arm's final model
translates the dev split (unbiased like test, meanings disjoint from train and test), the oracle
judges it, and each method keeps its arm with the highest dev adequacy (ties: the earlier multiple in
the fixed list). An RL arm whose reward did not rise cannot be chosen: it says nothing about the method.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semrl.evaluate.runner import Evaluator
from semrl.experiment_config import load_experiment
from semrl.files import atomic_write_json, read_jsonl
from semrl.sandbox.extras import fingerprint
from semrl.sandbox.grammar import Meaning
from semrl.sandbox.measures import judge_outputs, load_world, strip_items

DEV_DIR = "dev"


def final_model(mt_dir: Path, arm: str) -> Path | None:
    """The final model of the arm's last stage (GRPO after a cold start, else SFT)."""
    for stage in ("grpo", "continue", "sft"):
        path = mt_dir / arm / stage / "final"
        if (path / "config.json").exists():
            return path
    return None


def dev_oracle(mt_dir: Path, world_dir: Path, arms: list[str]) -> dict[str, Any]:
    """Oracle verdicts of each arm's final model on the dev split; outputs are kept in `<mt>/dev/` and
    reused while the model's weights are unchanged (the fingerprint of its folder)."""
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
    verdicts: dict[str, Any] = {}
    for arm in arms:
        final = final_model(mt_dir, arm)
        if final is None:
            continue
        stamp, outputs = out_dir / f"{arm}.model.json", out_dir / f"{arm}.outputs.jsonl"
        key = fingerprint(final)
        fresh = (
            stamp.exists()
            and outputs.exists()
            and json.loads(stamp.read_text(encoding="utf-8")).get("hash") == key
        )
        if not fresh:
            evaluator = evaluator or Evaluator(exp, rows, str(final), out_dir, "cpu")
            evaluator.evaluate(arm, str(final))
            atomic_write_json(stamp, {"hash": key, "model": str(final)})
        hypotheses = [row["hypothesis"] for row in read_jsonl(outputs, numbered=False)]
        verdicts[arm] = judge_outputs(hypotheses, meanings, world)
    return verdicts


def choose(
    dev: dict[str, Any], methods: dict[str, list[str]], eligible: set[str] | None = None
) -> dict[str, Any]:
    """{method: {"arm", "dev_adequacy": {arm: value}, "reason"}}: the arm of each method with the highest
    dev adequacy among those `eligible` (all when None); arm None when no arm of the method qualifies."""
    out: dict[str, Any] = {}
    for method, arms in methods.items():
        scores = {arm: ((dev.get(arm) or {}).get("adequacy") or {}).get("value") for arm in arms}
        candidates = [
            arm for arm in arms if scores[arm] is not None and (eligible is None or arm in eligible)
        ]
        best = max(candidates, key=lambda arm: (scores[arm], -arms.index(arm)), default=None)
        reason = (
            f"{best}: highest dev adequacy {scores[best]:.3f} of {len(candidates)} eligible arm(s)"
            if best
            else f"no arm of {method} is eligible (did not learn, or has no dev outputs)"
        )
        out[method] = {"arm": best, "dev_adequacy": scores, "eligible": candidates, "reason": reason}
    return out


def dev_summary(dev: dict[str, Any]) -> dict[str, Any]:
    return strip_items(dev)
