"""`semrl demo --quick` through the real CLI: the whole sandbox pipeline (over two seeds, two worlds,
among the slow checks), its report, claims with their three states, the seeds aggregate, and the
cache on a rerun."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli

CLAIM_IDS = ["C1", "C2", "C3", "C4", "C5", "C6"]
# one row per reward variant of the demo for C1, C2, C3 and C5; C4 and C6 one row each
CLAIM_KEYS = [
    "C1 (paper)",
    "C1 (paper_kl)",
    "C2 (paper)",
    "C2 (paper_kl)",
    "C3 (paper)",
    "C3 (paper_kl)",
    "C4",
    "C5 (paper)",
    "C5 (paper_kl)",
    "C6",
]
STATES = {"reproduced", "not reproduced", "not testable"}
# `--quick` smaller still, for the two-seed test: it checks the pipeline's outputs and their shape, not
# the claims' outcomes, so a base pretrained for fewer steps on less text serves (the built-in --quick:
# 150 steps). GRPO keeps its 8 steps (a reward trend needs them); test and dev keep the quick sizes.
SMALLER_QUICK = "quick: {base_steps: 40, parallel_train: 80, cold_start: 24, pretrain_scale: 0.1}\n"


@pytest.mark.parametrize("seeds", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_quick_demo_writes_report_claims_and_seeds_aggregate(tmp_path, seeds):
    """One seed in CI; two (each its own world, and the seeds aggregate) among the slow checks."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMRL_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    (tmp_path / "smaller.yaml").write_text(SMALLER_QUICK, encoding="utf-8")
    # a relative --out from the working directory, exactly as `make demo` runs it (--out runs/demo)
    command = ["demo", "--quick", "--config", "smaller.yaml", "--seeds", str(seeds), "--out", "demo"]
    result = run_cli(*command, env=env, cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "demo"
    demo = out / "seed-0" if seeds > 1 else out
    if seeds > 1:
        aggregate = json.loads((out / "seeds.json").read_text(encoding="utf-8"))
        assert aggregate["seeds"] == 2 and set(aggregate["claims"]) == set(CLAIM_KEYS)
        for claim in aggregate["claims"].values():
            assert sum(claim["counts"].values()) == 2 and set(claim["counts"]) <= STATES
        worlds = [
            json.loads((out / f"seed-{k}" / "mt" / "sandbox.json").read_text(encoding="utf-8"))["world_seed"]
            for k in (0, 1)
        ]
        assert worlds[0] != worlds[1]  # each seed regenerates the world

    run = demo / "mt"
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    claims = json.loads((run / "claims.json").read_text(encoding="utf-8"))
    assert [c["id"] + (f" ({c['variant']})" if c.get("variant") else "") for c in claims] == CLAIM_KEYS
    for c in claims:
        assert c["status"] in STATES and c["reproduced"] == (c["status"] == "reproduced") and c["reason"]
    assert {
        "base",
        "cold_sft",
        "semantic_rl",
        "semantic_kl_rl",
        "strong_sft",
        "sft_continue",
        "bleu_sem",
        "bleu_sem_lang",
    } <= set(results["arms"])
    sandbox = results["sandbox"]
    # the protocol: points chosen on dev, the rewards audited before RL, monitors against the oracle,
    # cold-start tau
    selection = sandbox["selection"]
    assert set(selection["chosen"]) == {"sft", "paper", "paper_kl"}
    assert selection["points"]["sft"].startswith("strong_sft@")  # --quick: one learning rate, its final model
    assert set(selection["dev"]) >= {"cold_sft", "strong_sft", "semantic_rl", "semantic_kl_rl"}
    assert all(step["n"] == 16 for step in selection["dev"]["strong_sft"].values())  # the quick dev split
    for variant in ("paper", "paper_kl"):
        point = selection["points"][variant]
        assert point.startswith(("semantic_rl@", "semantic_kl_rl@")) and point in sandbox["oracle"]
        assert selection["beats_cold"][variant]["beats"] in (True, False)
        audited = "paper" if variant == "paper_kl" else variant  # one audit per distinct reward
        constant = sandbox["encoder_audit"][audited]["constant"]
        assert constant["hackable"] in (True, False) and constant["share"] is not None
        assert sandbox["tradeoffs"][variant]["testable"] is False  # no curves under --quick
    assert set(sandbox["encoder_audit"]) == {"paper"}  # paper_kl trains on the paper's reward
    assert set(sandbox["monitors"]["arms"]) == {"semantic_rl", "semantic_kl_rl", "bleu_sem", "bleu_sem_lang"}
    confusion = sandbox["monitors"]["confusion"]
    assert sum(sum(row.values()) for row in confusion.values()) == 4
    for arm in ("semantic_rl", "semantic_kl_rl"):
        entry = sandbox["monitors"]["arms"][arm]
        assert entry["warning"] in (True, False) and entry["oracle"]["class"] in ("hacked", "learned", "flat")
        tau = sandbox["tau_cold_start"][arm]["semantic"]
        assert tau["quantile"] == 0.5 and tau["n"] >= 1 and -1.0 <= tau["value"] < 1.0
    # the oracle is also a semrl task metric (the plugin the experiment YAML names): evaluation scored
    # every arm's outputs with it, and it agrees with the sandbox's own reading of the same outputs
    for arm, evaluated in results["arms"].items():
        oracle = evaluated["task"]["oracle"]
        assert oracle["scale"] == "fraction 0..1" and len(oracle["ci95"]) == 2
        assert oracle["value"] == pytest.approx(sandbox["oracle"][arm]["adequacy"]["value"])
    verdict = sandbox["oracle"]["semantic_rl"]
    assert {"adequacy", "grammatical", "purity", "coverage", "distinct"} <= set(verdict)
    assert set(verdict["coverage"]) == {"covered", "uncovered"} and 1 <= verdict["distinct"] <= verdict["n"]
    assert "ceiling" in sandbox["oracle"] and sandbox["coverage"]["semantic_rl"]
    assert 0.0 < sandbox["chance"] < 0.5
    assert "adequacy" in sandbox["base_translation"]
    assert {"mixed_all_right", "pure_one_wrong"} <= set(sandbox["mix"]["similarity"])
    trend = sandbox["trend"]["semantic_rl"]
    assert len(trend["ci95"]) == 2 and trend["learned"] in (True, False, None)
    assert sandbox["weight_movement"]["semantic_rl"]["grpo_from_cold_start"]["relative"] > 0
    assert "ceiling" in sandbox
    assert set(sandbox["competence"]) >= {"qa", "copy", "facts"}
    for preference in results[
        "preference"
    ].values():  # the chosen RL arms against chosen SFT and the cold start
        assert preference["judge"] == "oracle"
        assert preference["wins"] + preference["ties"] + preference["losses"] == preference["n"]
    summary = (run / "summary.md").read_text(encoding="utf-8")
    assert (
        "Claims of the paper" in summary
        and "Before any tuning" in summary
        and "Oracle verdict per arm" in summary
    )
    assert "Reward audit on the sandbox encoder" in summary and "chosen on the dev split" in summary
    assert "Hacking monitors" in summary and "confusion table" in summary and "Stall diagnosis" in summary
    assert sandbox["stall"]["semantic_kl_rl"]["stall/advantage_abs"]["mean"] >= 0.0
    assert (run / "report.html").exists()
    for claim_id in CLAIM_IDS:
        assert claim_id in result.stdout

    # `semrl report` on a demo folder rebuilds the demo's report, its own tables included
    (run / "summary.md").unlink()
    rebuilt = run_cli("report", str(demo), env=env, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    rebuilt_summary = (run / "summary.md").read_text(encoding="utf-8")
    assert (
        rebuilt_summary.split("\n", 3)[3] == summary.split("\n", 3)[3]
    )  # all but the header naming the path


@pytest.mark.slow  # two quick demos (~2 min); `make test-all` runs it
def test_a_rerun_reuses_the_cached_world_base_model_and_encoder(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMRL_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    timings = []
    for out in ("first", "again"):
        result = run_cli("demo", "--quick", "--out", str(tmp_path / out), env=env, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        sandbox = json.loads((tmp_path / out / "mt" / "sandbox.json").read_text(encoding="utf-8"))
        timings.append(sandbox["timings"])
    assert timings[1]["base_model"] < timings[0]["base_model"]
