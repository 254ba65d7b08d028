"""`semrl demo --quick` through the real CLI: the whole sandbox pipeline, its report and claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CLAIM_IDS = ["C1", "C2", "C3", "C4", "C5", "C6"]


def test_quick_demo_writes_report_and_claims(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMRL_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    out = tmp_path / "demo"
    # a relative --out from the working directory, exactly as `make demo` runs it (--out runs/demo)
    result = subprocess.run([sys.executable, "-m", "semrl", "demo", "--quick", "--out", "demo"],
                            capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = out / "mt"
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    claims = results["claims"]
    assert [c["id"] for c in claims] == CLAIM_IDS
    assert all(isinstance(c["reproduced"], bool) and c["statement"] and c["evidence"] for c in claims)
    assert {"base", "cold_sft", "semantic_rl", "strong_sft", "bleu_sem"} <= set(results["arms"])
    sandbox = results["sandbox"]
    assert set(sandbox["oracle"]["semantic_rl"]) == {"adequacy", "grammatical", "purity"}
    assert 0.0 <= sandbox["oracle"]["semantic_rl"]["adequacy"]["value"] <= 1.0
    assert set(sandbox["competence"]) >= {"qa", "copy", "facts"}
    assert sandbox["reward_models"]["rm_h"]["accuracy_on_l"] is not None
    verdict = results["preference"]["semantic_rl vs strong_sft"]
    assert verdict["judge"] == "oracle" and verdict["wins"] + verdict["ties"] + verdict["losses"] == verdict["n"]
    assert (run / "report.html").exists() and "Claims of the paper" in (run / "summary.md").read_text(encoding="utf-8")
    for claim_id in CLAIM_IDS:
        assert claim_id in result.stdout
    # a second run reuses the cached world, base model and encoder
    again = subprocess.run([sys.executable, "-m", "semrl", "demo", "--quick", "--out", str(tmp_path / "demo2")],
                           capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0
    timings = json.loads((tmp_path / "demo2" / "mt" / "results.json").read_text(encoding="utf-8"))["sandbox"]["timings"]
    assert timings["base_model"] < sandbox["timings"]["base_model"]
