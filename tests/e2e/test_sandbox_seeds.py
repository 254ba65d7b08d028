"""Aggregation over seeds: status counts, Student-t intervals, and per-seed configs."""

from __future__ import annotations

import math

import pytest

from semrl.sandbox import seeds
from semrl.sandbox.config import DemoConfig
from semrl.sandbox.seeds import aggregate_seeds, numeric_leaves, seed_configs, t_interval


def _claim(cid: str, status: str, difference: float | None, reason: str = "") -> dict:
    return {
        "id": cid,
        "statement": f"claim {cid}",
        "status": status,
        "reproduced": status == "reproduced",
        "reason": reason,
        "evidence": {
            "diff": {"difference": difference, "ci95": [-1.0, 1.0]},
            "items": [0.1] * 10,
            "rows": [{"difference": 1.0}],
            "flag": True,
        },
    }


def _runs() -> list[dict]:
    statuses = ["reproduced", "not reproduced", "not testable"]
    return [
        {
            "seed": k,
            "world_seed": 100 + k,
            "claims": [_claim("C1", "reproduced", float(k + 1)), _claim("C2", statuses[k], 0.5, f"why {k}")],
            "evidence": {"competence": {"qa": 0.5 + k}, "only_seed_0": 1.0}
            if k == 0
            else {"competence": {"qa": 0.5 + k}, "pair": [k, 2 * k]},
        }
        for k in range(3)
    ]


def test_t_interval_matches_hand_computation():
    lo, hi = t_interval([1, 2, 3])
    half = 4.302653 * 1.0 / math.sqrt(3)  # mean 2, sd 1, t_{0.975,2}
    assert lo == pytest.approx(2 - half, abs=1e-5) and hi == pytest.approx(2 + half, abs=1e-5)
    assert t_interval([1.0]) is None and t_interval([1.0, float("nan")]) is None


def test_t_quantile_fallback_without_scipy(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert seeds.t_quantile(2) == pytest.approx(4.303)
    assert seeds.t_quantile(60) == pytest.approx(2.000, abs=1e-3)


def test_aggregate_counts_statuses_and_reasons():
    out = aggregate_seeds(_runs())
    assert out["seeds"] == 3
    assert out["claims"]["C1"]["counts"] == {"reproduced": 3, "not reproduced": 0, "not testable": 0}
    c2 = out["claims"]["C2"]
    assert c2["counts"] == {"reproduced": 1, "not reproduced": 1, "not testable": 1}
    assert [s["status"] for s in c2["per_seed"]] == ["reproduced", "not reproduced", "not testable"]
    assert [s["reason"] for s in c2["per_seed"]] == ["why 0", "why 1", "why 2"]
    assert [(s["seed"], s["world_seed"]) for s in c2["per_seed"]] == [(0, 100), (1, 101), (2, 102)]


def test_aggregate_evidence_paths_and_intervals():
    out = aggregate_seeds(_runs())
    c1 = out["claim_evidence"]["C1.diff.difference"]
    assert (c1["mean"], c1["sd"], c1["n"], c1["values"]) == (2.0, 1.0, 3, [1.0, 2.0, 3.0])
    assert c1["ci95"] == t_interval([1, 2, 3])
    assert out["claim_evidence"]["C2.diff.difference"]["sd"] == 0.0
    # ci95 bounds, long per-item lists, lists of records and booleans are not averaged
    kept = list(out["claim_evidence"])
    assert not any(k.endswith(("ci95.0", "flag")) or ".items" in k or ".rows" in k for k in kept)
    assert out["evidence"]["competence.qa"]["mean"] == pytest.approx(1.5)
    assert out["evidence"]["pair.1"]["values"] == [2.0, 4.0]  # short numeric lists are kept, per index
    assert "only_seed_0" not in out["evidence"]  # present in one seed only


def test_missing_values_reduce_n():
    runs = [{"seed": k, "claims": [_claim("C1", "not testable", v)]} for k, v in enumerate([1.0, None, 3.0])]
    summary = aggregate_seeds(runs)["claim_evidence"]["C1.diff.difference"]
    assert summary["n"] == 2 and summary["mean"] == 2.0


def test_numeric_leaves_paths():
    tree = {"a": {"b": 1, "c": [1, 2]}, "ci95": [0, 1], "s": "text", "n": None}
    assert dict(numeric_leaves(tree)) == {"a.b": 1.0, "a.c.0": 1.0, "a.c.1": 2.0}


def test_seed_configs_vary_run_and_world_seed():
    base = DemoConfig().model_dump()
    base["seed"], base["world"]["seed"] = 5, 40
    configs = seed_configs(base, 3)
    assert [(c["seed"], c["world"]["seed"]) for c in configs] == [(5, 40), (6, 41), (7, 42)]
    assert base["seed"] == 5 and base["world"]["seed"] == 40  # base untouched
    assert configs[1]["world"]["parallel"] == base["world"]["parallel"]
    for config in configs:
        DemoConfig.model_validate(config)  # still a valid demo config
    assert seed_configs(DemoConfig(), 2)[1]["world"]["seed"] == DemoConfig().world.seed + 1
    with pytest.raises(ValueError):
        seed_configs(base, 0)
