"""The demo over several seeds: one seed can reproduce a claim by luck, so each claim is reported
as how many seeds reproduced it, and every number behind it as a mean with a Student-t 95%
interval over seeds (with 3-5 seeds, 1.96 would be far too narrow).

What is averaged: every finite number in a claim's evidence and in the run's evidence, keyed by a
dotted path, when at least two seeds have it. Skipped on purpose:
- "ci95" (and any list longer than 4): the mean of per-seed interval bounds is not an interval,
  and per-item vectors are already summarised by their differences; the t interval over seeds
  is the one to read.
- lists of records (e.g. C2's matched-quality rows): row i need not mean the same thing in two seeds.
- booleans: the status counts already say how often a claim held.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from semrl.sandbox.claims import claim_key

STATUSES = ("reproduced", "not reproduced", "not testable")
SHORT_LIST = 4
SKIPPED_KEYS = {"ci95"}

# t_{0.975, df} for df = 1..30, used only when scipy is not importable
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def t_quantile(df: int) -> float:
    """t_{0.975, df}: scipy when present (a dependency of sentence-transformers), else a table for
    df <= 30 and a Cornish-Fisher expansion above it (both within 1e-3 of the exact value)."""
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, df))
    except ImportError:
        if df <= len(_T975):
            return _T975[df - 1]
        z = 1.959964
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _clean(values: list[Any]) -> list[float]:
    return [float(v) for v in values if _number(v)]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd


def t_interval(values: list[float]) -> list[float] | None:
    """Student-t 95% interval of the mean of `values` (finite ones only); None below two values."""
    data = _clean(values)
    if len(data) < 2:
        return None
    mean, sd = _mean_sd(data)
    half = t_quantile(len(data) - 1) * sd / math.sqrt(len(data))
    return [mean - half, mean + half]


def numeric_leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted path, number) for every finite number in nested dicts and short numeric lists."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if str(key) not in SKIPPED_KEYS:
                yield from numeric_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        if len(tree) <= SHORT_LIST and all(_number(v) or v is None for v in tree):
            for i, value in enumerate(tree):
                yield from numeric_leaves(value, f"{prefix}.{i}")
    elif _number(tree):
        yield prefix, float(tree)


def _summaries(trees: list[Any]) -> dict[str, dict[str, Any]]:
    """Per dotted path present in >= 2 trees: mean, sd, n, values and the t interval."""
    collected: dict[str, list[float]] = {}
    for tree in trees:
        for path, value in numeric_leaves(tree):
            collected.setdefault(path, []).append(value)
    out = {}
    for path, values in collected.items():
        if len(values) >= 2:
            mean, sd = _mean_sd(values)
            out[path] = {
                "mean": mean,
                "sd": sd,
                "n": len(values),
                "ci95": t_interval(values),
                "values": values,
            }
    return out


def aggregate_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Claims and evidence of several seeded runs, side by side.

    Returns {"seeds", "claims": {id: {"statement", "counts", "per_seed"}},
    "claim_evidence": {"C1.path": summary}, "evidence": {"path": summary}}, where a summary is
    {"mean", "sd", "n", "ci95" (Student-t, n-1 df), "values"}.
    """
    claims: dict[str, dict[str, Any]] = {}
    evidence_by_claim: dict[str, list[Any]] = {}
    for run in runs:
        for claim in run.get("claims", []):
            entry = claims.setdefault(
                claim_key(claim),
                {
                    "statement": claim.get("statement", ""),
                    "counts": dict.fromkeys(STATUSES, 0),
                    "per_seed": [],
                },
            )
            status = claim["status"]
            entry["counts"][status] += 1
            entry["per_seed"].append(
                {
                    "seed": run.get("seed"),
                    "world_seed": run.get("world_seed"),
                    "status": status,
                    "reason": claim.get("reason", ""),
                }
            )
            evidence_by_claim.setdefault(claim_key(claim), []).append(claim.get("evidence", {}))
    claim_evidence = {
        f"{cid}.{path}": summary
        for cid, trees in evidence_by_claim.items()
        for path, summary in _summaries(trees).items()
    }
    return {
        "seeds": len(runs),
        "claims": claims,
        "claim_evidence": claim_evidence,
        "evidence": _summaries([run.get("evidence", {}) for run in runs]),
    }


def seed_configs(base: dict[str, Any] | BaseModel, n: int) -> list[dict[str, Any]]:
    """n demo configs (model_dump() dicts) with the run seed and the world seed both offset by
    0..n-1, so each seed also gets a freshly generated world, not just new initialisations."""
    if isinstance(base, BaseModel):
        base = base.model_dump()
    if n < 1:
        raise ValueError(f"need at least one seed, got {n}")
    configs = []
    for k in range(n):
        config = copy.deepcopy(base)
        config["seed"] = base.get("seed", 0) + k
        config["world"] = {**config.get("world", {}), "seed": base.get("world", {}).get("seed", 0) + k}
        configs.append(config)
    return configs
