"""lm-evaluation-harness benchmarks in the general suite, for real and offline: a local task
(tests/data/lm_eval/tasks: a YAML and a JSONL the project wrote) run by the installed lm-eval on
tiny models semrl builds, through `semrl eval` and through a `semrl run`'s alignment tax; bad
lm_eval entries are refused up front; the shipped paper suite parses and names known tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

pytest.importorskip("lm_eval")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "lm_eval"
SUITE = DATA / "suite.yaml"
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
LIMIT = 6  # the suite's `limit:` for the lm-eval task


def _lm_eval_accuracy(model_dir: Path, rows: list[dict]) -> float:
    """Accuracy (percent) of the task by hand: the prompt of tasks/semrl_tiny_mc.yaml, each choice's
    summed log-likelihood after it, encoded as lm-eval's HF backend does (whole minus context)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    correct = []
    for row in rows:
        context = f"Question: {row['question']}\nAnswer:"
        context_ids = tokenizer(context, add_special_tokens=False).input_ids
        scores = []
        for choice in row["choices"]:
            whole = tokenizer(context + " " + choice, add_special_tokens=False).input_ids
            continuation = whole[len(context_ids) :]
            ids = torch.tensor([(context_ids + continuation)[:-1]])
            with torch.no_grad():
                logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
            positions = range(len(context_ids) - 1, len(context_ids) - 1 + len(continuation))
            scores.append(sum(float(logprobs[p, t]) for p, t in zip(positions, continuation, strict=True)))
        correct.append(float(max(range(len(scores)), key=scores.__getitem__) == row["answer"]))
    return 100.0 * sum(correct) / len(correct)


def _task_rows() -> list[dict]:
    lines = (DATA / "tasks" / "tiny_mc.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:LIMIT]]


def _eval_config(tmp_path: Path, model: Path) -> Path:
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"name: e\nmodel: {{path: {model}}}\ntask: {{type: translate, source_lang: bo, target_lang: zh}}\n"
        f"data: {{train: {BO_ZH}, test_size: 2}}\n"
        "eval: {resamples: 50, metrics: [chrf], max_new_tokens: 4}\n",
        encoding="utf-8",
    )
    return config


def test_semrl_eval_reports_an_lm_eval_task_beside_the_built_in_benchmarks(tmp_path, tiny_lm):
    result = run_cli(
        "eval",
        "--model",
        str(tiny_lm),
        "--config",
        str(_eval_config(tmp_path, tiny_lm)),
        "--name",
        "tiny",
        "--suite",
        str(SUITE),
        "--out",
        str(tmp_path / "eval"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    general = json.loads((tmp_path / "eval" / "tiny.json").read_text(encoding="utf-8"))["general"]
    assert list(general) == ["mc", "text", "tiny-mc"]
    assert general["mc"]["accuracy"]["n"] > 0 and general["text"]["nll_mean"]["value"] > 0
    lm = general["tiny-mc"]
    assert set(lm) == {"accuracy", "accuracy_norm"}
    assert lm["accuracy"]["n"] == lm["accuracy_norm"]["n"] == LIMIT  # lm-eval's limit, one item per document
    assert lm["accuracy"]["value"] == pytest.approx(_lm_eval_accuracy(tiny_lm, _task_rows()))
    low, high = lm["accuracy"]["ci95"]
    assert 0.0 <= low <= lm["accuracy"]["value"] <= high <= 100.0


def test_a_run_taxes_the_lm_eval_benchmark_like_the_built_in_ones(tmp_path):
    config = {
        "name": "lmeval",
        "seed": 0,
        "model": {"tiny": {}},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 2},
        "sft": {
            "max_steps": 3,
            "batch_size": 8,
            "learning_rate": 3.0e-3,
            "save_steps": 100,
            "logging_steps": 1,
        },
        "eval": {"suite": str(SUITE), "metrics": ["chrf"], "resamples": 50, "max_new_tokens": 4},
        "arms": [{"name": "sft", "recipe": "strong_sft"}],
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run_cli("run", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    base, tuned = results["arms"]["base"]["general"], results["arms"]["sft"]["general"]
    tax = results["alignment_tax"]["sft"]
    for bench in ("mc", "tiny-mc"):  # the same entry, computed the same way, for both kinds
        entry = tax[bench]["accuracy"]
        assert entry["base"] == pytest.approx(base[bench]["accuracy"]["value"])
        assert entry["tuned"] == pytest.approx(tuned[bench]["accuracy"]["value"])
        assert entry["tax"] == pytest.approx(entry["base"] - entry["tuned"])
        assert entry["ci95"][0] <= entry["tax"] <= entry["ci95"][1]
        assert ("relative" in entry) and (entry["relative"] is not None or entry["relative_reason"])
    assert set(tax["tiny-mc"]) == {"accuracy", "accuracy_norm"}
    assert tax["overall"]["score"]["benchmarks"] == 2  # mc and the lm-eval task: both in the overall tax
    assert base["tiny-mc"]["accuracy"]["n"] == tuned["tiny-mc"]["accuracy"]["n"] == LIMIT
    assert "tiny-mc" in (tmp_path / "run" / "summary.md").read_text(encoding="utf-8")


def test_a_missing_include_path_exits_2_naming_the_field(tmp_path, tiny_lm):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "benchmarks:\n  - {name: x, type: lm_eval, task: semrl_tiny_mc, include_path: nope}\n",
        encoding="utf-8",
    )
    result = run_cli(
        "eval",
        "--model",
        str(tiny_lm),
        "--config",
        str(_eval_config(tmp_path, tiny_lm)),
        "--suite",
        str(suite),
        "--out",
        str(tmp_path / "eval"),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "include_path: folder not found" in lines[0] and str(tmp_path / "nope") in lines[0], lines[0]
    assert not (tmp_path / "eval").exists()


def _suite(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(f"benchmarks:\n  - {entry}\n", encoding="utf-8")
    return path


def test_bad_lm_eval_entries_are_refused_before_any_model_runs(tmp_path, monkeypatch):
    from semrl.errors import UserError
    from semrl.evaluate.suite import load_suite

    tasks = DATA / "tasks"
    with pytest.raises(UserError, match=r"benchmark x: task: 'no_such_task' is not an lm-eval task"):
        load_suite(_suite(tmp_path, f"{{name: x, type: lm_eval, task: no_such_task, include_path: {tasks}}}"))
    with pytest.raises(UserError, match=r"`limit:` is for lm_eval benchmarks only"):
        load_suite(_suite(tmp_path, "{name: x, type: nll, file: a.txt, limit: 3}"))
    broken = tmp_path / "broken"  # a local task whose data file is missing: lm-eval cannot load it
    broken.mkdir()
    text = (tasks / "semrl_tiny_mc.yaml").read_text(encoding="utf-8").replace("tiny_mc.jsonl", "gone.jsonl")
    (broken / "semrl_tiny_mc.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=r"benchmark x: task semrl_tiny_mc: lm-eval cannot load it"):
        load_suite(
            _suite(tmp_path, f"{{name: x, type: lm_eval, task: semrl_tiny_mc, include_path: {broken}}}")
        )
    # a hub task (lm-eval's own; found after include_path) whose data is not cached, with the hub off
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from semrl.evaluate import lm_eval_tasks

    monkeypatch.setattr(lm_eval_tasks, "_hub_data_available", lambda repo_id: False)
    with pytest.raises(UserError, match=r"task belebele_bod_Tibt: its data 'facebook/belebele' is not in"):
        load_suite(
            _suite(tmp_path, f"{{name: x, type: lm_eval, task: belebele_bod_Tibt, include_path: {tasks}}}")
        )


@pytest.mark.slow  # builds lm-eval's whole task index (~15 s)
def test_the_paper_general_suite_parses_and_names_known_tasks():
    from semrl.config_files import load_config
    from semrl.evaluate.lm_eval_tasks import find_task
    from semrl.evaluate.suite import SuiteConfig

    suite = load_config(SuiteConfig, ROOT / "configs" / "paper" / "general-suite.yaml")
    kinds = {b.name: b.type for b in suite.benchmarks}
    assert kinds["cmrc2018"] == "qa" and {"nll", "kl"} <= set(kinds.values())
    tasks = {b.task for b in suite.benchmarks if b.type == "lm_eval"}
    assert tasks == {"belebele_bod_Tibt", "belebele_zho_Hans"}
    for spec in suite.benchmarks:
        if spec.type == "lm_eval":
            assert find_task(spec)[1].name == spec.task  # in lm-eval's index (no data is fetched)
