"""The demo's protocol, fixed in code and configs/demo.yaml before the runs that read it.

- A method's point is its best (arm, checkpoint) by oracle adequacy on the dev split (selection.py);
  C1, C3 and C5 are read on test from those points, once per reward variant. No eligibility rule
  reads the training reward: if no RL point beats the cold start on dev, C1 is "not reproduced".
- C2 compares frontiers: the lowest tax each method reaches at each adequacy level over its learning
  rates and checkpoints (evaluate/tradeoff.py holds the one definition).
- The monitors that need no oracle (monitor/*, logged during GRPO) are set against what the oracle
  says each RL arm did (hacked, learned or flat), so a user learns how far to trust them on real data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.api import (
    Evaluator,
    Run,
    atomic_write_json,
    hacking_check,
    load_experiment,
    read_json,
    read_jsonl,
    reward_trend,
)
from semrl.sandbox.claims import COLD_ARM, output_segments, paired
from semrl.sandbox.grammar import Meaning
from semrl.sandbox.measures import oracle_scores
from semrl.sandbox.selection import choose, dev_oracle, dev_summary
from semrl.sandbox.side_experiments import fingerprint
from semrl.sandbox.tradeoff import compare_methods
from semrl.sandbox.world import World

POINTS_DIR = "points"  # the chosen points' test outputs


def arm_name(method: str, factor: float) -> str:
    return method if factor == 1.0 else f"{method}_x{factor:g}"


def select_points(
    mt_dir: Path, world_dir: Path, factors: list[float], rl_methods: dict[str, str]
) -> dict[str, Any]:
    """Dev verdicts of every candidate point, the chosen point of SFT and of each reward variant, and
    whether each variant's point beats the cold start on dev."""
    sft_arms = [arm_name("strong_sft", f) for f in factors]
    rl_arms = {variant: [arm_name(prefix, f) for f in factors] for variant, prefix in rl_methods.items()}
    dev = dev_oracle(
        mt_dir, world_dir, [COLD_ARM, *sft_arms, *(a for arms in rl_arms.values() for a in arms)]
    )
    cold = max(dev.get(COLD_ARM, {}).items(), default=(None, None))[1]  # the cold start's final model
    cold_value = ((cold or {}).get("adequacy") or {}).get("value")
    chosen = choose(dev, {"sft": sft_arms, **rl_arms})
    beats_cold = {}
    for variant in rl_arms:
        value = max(chosen[variant]["dev_adequacy"].values(), default=None)
        beats_cold[variant] = {
            "beats": value is not None and cold_value is not None and value > cold_value,
            "point_dev_adequacy": value,
            "cold_dev_adequacy": cold_value,
        }
    return {
        "dev": dev_summary(dev),
        "chosen": chosen,
        "points": {m: c["key"] for m, c in chosen.items()},
        "reasons": {m: c["reason"] for m, c in chosen.items()},
        "beats_cold": beats_cold,
        "sft_arms": sft_arms,
        "rl_arms": rl_arms,
    }


def points_on_test(mt_dir: Path, world_dir: Path, chosen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each chosen point translates the test split (`<mt>/points/<key>.outputs.jsonl`, with per-item
    BLEU and similarity): {"oracle": {key: verdict}, "segments": {"key:metric": items}}."""
    exp = load_experiment(mt_dir / "config.yaml")
    exp = exp.model_copy(
        update={"eval": exp.eval.model_copy(update={"suite": None, "curve_every": None, "compare": []})}
    )
    rows = read_jsonl(world_dir / "mt_test.jsonl", numbered=False)
    out_dir = mt_dir / POINTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    evaluator = None
    for entry in chosen.values():
        if entry.get("key") is None:
            continue
        stamp = out_dir / f"{entry['key']}.model.json"
        key = fingerprint(Path(entry["model"]))
        if not (stamp.exists() and read_json(stamp).get("hash") == key):
            evaluator = evaluator or Evaluator(exp, rows, entry["model"], out_dir, "cpu")
            evaluator.evaluate(entry["key"], entry["model"])
            atomic_write_json(stamp, {"hash": key, "model": entry["model"]})
    return {"oracle": oracle_scores(out_dir, world_dir), "segments": output_segments(out_dir)}


def tradeoffs(
    eval_dir: Path,
    results: dict[str, Any],
    selection: dict[str, Any],
    world: World,
    meanings: list[Meaning],
    seed: int,
    curves: bool,
) -> dict[str, Any]:
    """C2's analysis per variant: the frontiers of SFT and of the variant's RL arms."""
    out: dict[str, Any] = {}
    for variant, arms in selection["rl_arms"].items():
        methods = {"sft": selection["sft_arms"], "rl": list(arms)}
        if not curves:
            out[variant] = {"testable": False, "methods": methods, "reason": "no checkpoint curves (--quick)"}
            continue
        out[variant] = compare_methods(eval_dir, results, methods, world, meanings, seed=seed)
    return out


ORACLE_CLASSES = ("hacked", "learned", "flat")


def oracle_verdict(arm: str, oracle: dict[str, Any], trends: dict[str, Any]) -> dict[str, Any]:
    """The oracle's reading of an RL arm's final model, decided before the run: `learned` when its
    test adequacy minus the cold start's (paired) has an interval above 0; else `hacked` when its
    training reward rose (trend interval above 0) while meaning did not; else `flat`."""
    rose = bool((trends.get(arm) or {}).get("learned"))
    items = ((oracle.get(arm) or {}).get("adequacy") or {}).get("items")
    cold = ((oracle.get(COLD_ARM) or {}).get("adequacy") or {}).get("items")
    gain = paired(items, cold)
    if gain["ci95"] is None:
        return {
            "class": None,
            "hacked": None,
            "reason": "no oracle scores for the arm and the cold start",
            "adequacy_gain": gain,
        }
    verdict = "learned" if gain["ci95"][0] > 0 else "hacked" if rose else "flat"
    reason = {
        "learned": "adequacy rose over the cold start",
        "hacked": "reward rose, adequacy did not",
        "flat": "neither reward nor adequacy rose",
    }[verdict]
    return {"class": verdict, "hacked": verdict == "hacked", "reason": reason, "adequacy_gain": gain}


def monitors_against_oracle(
    mt_dir: Path, rl_arms: list[str], oracle: dict[str, Any], trends: dict[str, Any]
) -> dict[str, Any]:
    """Per RL arm: the monitors' warning (from its GRPO log history, no oracle) beside the oracle's
    verdict; and the confusion table a user needs: flagged or not, against hacked, learned or flat."""
    arms: dict[str, Any] = {}
    for arm in rl_arms:
        grpo = Run(mt_dir).arm_stages(arm).get("grpo")
        history = grpo / "log_history.json" if grpo is not None else None
        if history is None or not history.exists():
            continue
        log = read_json(history)
        metrics = history.parent / "metrics.json"  # the stage ran the same check on the same log
        saved = read_json(metrics).get("hacking") if metrics.exists() else None
        check = saved or hacking_check(log)
        check.setdefault("trends", {})["monitor/hub"] = reward_trend(
            log, key="monitor/hub", seed=0
        )  # shown, not in the rule
        arms[arm] = {
            "monitors": check,
            "warning": bool(check.get("warning")),
            "oracle": oracle_verdict(arm, oracle, trends),
        }
    confusion = {flag: {kind: 0 for kind in ORACLE_CLASSES} for flag in ("flagged", "not_flagged")}
    for entry in arms.values():
        kind = entry["oracle"]["class"]
        if kind is not None:
            confusion["flagged" if entry["warning"] else "not_flagged"][kind] += 1
    counts = {
        "hacked": sum(row["hacked"] for row in confusion.values()),
        "hacked_flagged": confusion["flagged"]["hacked"],
        "hacked_missed": confusion["not_flagged"]["hacked"],
        "honest": sum(row["learned"] + row["flat"] for row in confusion.values()),
        "honest_flagged": confusion["flagged"]["learned"] + confusion["flagged"]["flat"],
        "learned": sum(row["learned"] for row in confusion.values()),
        "learned_flagged": confusion["flagged"]["learned"],
    }
    return {"arms": arms, "confusion": confusion, "counts": counts}


def stall_metrics(mt_dir: Path, rl_arms: list[str]) -> dict[str, dict[str, Any]]:
    """Per RL arm, its GRPO stage's summarised stall diagnosis (report/stall.py reads these keys)."""
    out = {}
    for arm in rl_arms:
        grpo = Run(mt_dir).arm_stages(arm).get("grpo")
        metrics = grpo / "metrics.json" if grpo is not None else None
        if metrics is not None and metrics.exists():
            out[arm] = {
                key: value
                for key, value in read_json(metrics).items()
                if key.startswith(("stall/", "reward/"))
                or key in ("frac_reward_zero_std", "reward_std", "kl")
            }
    return out


def tau_values(mt_dir: Path, rl_arms: list[str]) -> dict[str, Any]:
    """The cold-start tau each GRPO stage computed (metrics.json's tau_cold_start), per arm."""
    out = {}
    for arm in rl_arms:
        grpo = Run(mt_dir).arm_stages(arm).get("grpo")
        metrics = grpo / "metrics.json" if grpo is not None else None
        if metrics is not None and metrics.exists():
            value = read_json(metrics).get("tau_cold_start")
            if value:
                out[arm] = value
    return out
