"""Every JSON and JSONL file semrl writes is strict JSON (no NaN, no Infinity), so jq and
JavaScript's JSON.parse read it. The writers refuse a non-finite number, naming where it sits; an
undefined value is written as null by the code that computes it, with its reason beside it (a
relative tax when the base scores 0); a trainer's NaN is null in its log history."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from conftest import run_cli
from semrl.experiment_config import load_experiment
from semrl.recipes.plan import planned_folder

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
SUITE = ROOT / "configs" / "examples" / "general" / "suite.yaml"


def _refuse(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity, as jq and JSON.parse do."""
    return json.loads(text, parse_constant=_refuse)


def strict_files(root: Path) -> dict[Path, list[Any]]:
    """Every .json and .jsonl file under root, parsed strictly (a JSONL file: one value per line)."""
    parsed: dict[Path, list[Any]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".json", ".jsonl"):
            continue
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".json":
                parsed[path] = [strict_loads(text)]
            else:
                parsed[path] = [strict_loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise AssertionError(f"{path.relative_to(root)}: not strict JSON: {exc}") from None
    return parsed


def tax_entries(tree: Any) -> list[dict[str, Any]]:
    """Every dict with both "tax" and "relative" in a nested structure (the alignment-tax entries)."""
    found = []
    if isinstance(tree, dict):
        if "tax" in tree and "relative" in tree:
            found.append(tree)
        for value in tree.values():
            found += tax_entries(value)
    elif isinstance(tree, list):
        for value in tree:
            found += tax_entries(value)
    return found


# ---- the writers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_json_writer_refuses_non_finite_numbers_naming_the_key_path(tmp_path, bad):
    from semrl.files import atomic_write_json

    target = tmp_path / "results.json"
    obj = {"arms": {"rl": {"alignment_tax": {"qa-zh": {"em": {"tax": 0.0, "relative": bad}}}}}}
    with pytest.raises(ValueError) as error:
        atomic_write_json(target, obj)
    message = str(error.value)
    assert str(target) in message and "arms.rl.alignment_tax.qa-zh.em.relative" in message
    assert str(bad) in message
    assert not target.exists() and not list(tmp_path.iterdir())  # nothing written, no temporary left


def test_jsonl_writer_names_the_row_and_list_index(tmp_path):
    from semrl.files import atomic_write_jsonl

    target = tmp_path / "rows.jsonl"
    with pytest.raises(ValueError, match=r"row 2: .*ci95\[1\]"):
        atomic_write_jsonl(target, [{"ci95": [0.0, 1.0]}, {"ci95": [0.0, float("nan")]}])
    assert not target.exists()


def test_finite_values_and_null_are_written_as_strict_json(tmp_path):
    from semrl.files import atomic_write_json, atomic_write_jsonl

    atomic_write_json(
        tmp_path / "a.json", {"relative": None, "relative_reason": "base scores 0", "x": 1.5, "zh": "中"}
    )
    atomic_write_jsonl(tmp_path / "b.jsonl", [{"v": None}, {"v": 2}])
    assert strict_loads((tmp_path / "a.json").read_text(encoding="utf-8"))["relative"] is None
    assert "中" in (tmp_path / "a.json").read_text(encoding="utf-8")  # still UTF-8, not \\u escapes
    assert [r["v"] for r in strict_files(tmp_path)[tmp_path / "b.jsonl"]] == [None, 2]


def test_json_input_with_nan_is_refused_with_its_line(tmp_path):
    from semrl.errors import UserError
    from semrl.files import read_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"source": "a", "reference": "b"}\n{"source": "c", "reference": "d", "score": NaN}\n',
        encoding="utf-8",
    )
    with pytest.raises(UserError, match="line 2: NaN is not valid JSON"):
        read_jsonl(path)


def test_nan_in_a_json_file_reads_as_null(tmp_path):
    """NaN and infinities in one of semrl's JSON files read as null, so a report of it is strict."""
    from semrl.files import read_json

    path = tmp_path / "nan.json"
    path.write_text('{"relative": NaN, "ci95": [-Infinity, Infinity]}', encoding="utf-8")
    assert read_json(path) == {"relative": None, "ci95": [None, None]}


# ---- NaN at its sources ----------------------------------------------------------------------------


def test_relative_tax_is_null_with_its_reason_when_the_base_scores_zero():
    from semrl.evaluate.benchmarks import alignment_tax

    base = {
        "qa": {"items": {"f1": [0.0, 0.0, 0.0], "em": [0.0, 0.0, 0.0]}},
        "mc": {"items": {"accuracy": [100.0, 0.0]}},
    }
    tuned = {
        "qa": {"items": {"f1": [50.0, 0.0, 0.0], "em": [0.0, 0.0, 0.0]}},
        "mc": {"items": {"accuracy": [0.0, 0.0]}},
    }
    tax = alignment_tax(base, tuned)
    assert tax["qa"]["f1"]["relative"] is None and tax["qa"]["f1"]["relative_reason"] == "base scores 0"
    assert tax["qa"]["f1"]["tax"] == pytest.approx(-50.0 / 3)  # the absolute tax is still there
    assert (
        tax["mc"]["accuracy"]["relative"] == pytest.approx(1.0)
        and "relative_reason" not in tax["mc"]["accuracy"]
    )
    assert tax["overall"]["score"]["relative"] is not None  # mean base over qa f1 and mc accuracy is 25
    zero = alignment_tax({"qa": base["qa"]}, {"qa": tuned["qa"]})["overall"]["score"]
    assert zero["relative"] is None and zero["relative_reason"] == "base scores 0"
    strict_loads(json.dumps(tax, allow_nan=False))


def test_empty_data_gives_null_not_nan():
    from semrl.evaluate.preference import compare
    from semrl.evaluate.stats import (
        bootstrap_mean,
        bootstrap_paired_difference,
        bootstrap_stat,
        mean_with_interval,
    )
    from semrl.studies.rm.matrix import accuracy_cell

    assert bootstrap_mean([]) is None and bootstrap_paired_difference([], []) is None
    import numpy as np

    assert bootstrap_stat(np.zeros((0, 3)), lambda row: 0.0) is None
    assert bootstrap_mean([2.0, 2.0, 2.0], resamples=50) == [2.0, 2.0]  # constant data: a point, not NaN
    assert mean_with_interval([]) == {"value": None, "ci95": None, "n": 0}
    result = compare([], [], [], [], lambda *args: 0.0)
    assert result["win_rate"] is None and result["ci95"] is None and result["n"] == 0
    cell = accuracy_cell([], [], 50, 0)
    assert cell["accuracy"] is None and cell["n"] == 0
    for obj in (result, cell):
        strict_loads(json.dumps(obj, allow_nan=False))


def test_tables_show_null_with_its_reason():
    from semrl.report.tables import preference_table, tax_table, training_table

    results = {
        "arms": {
            "rl": {
                "alignment_tax": {
                    "qa": {
                        "f1": {
                            "base": 0.0,
                            "tuned": 0.0,
                            "tax": 0.0,
                            "relative": None,
                            "relative_reason": "base scores 0",
                            "ci95": None,
                        }
                    }
                }
            }
        },
        "preference": {
            "rl vs base": {
                "judge": "callable",
                "wins": 0,
                "ties": 0,
                "losses": 0,
                "win_rate": None,
                "ci95": None,
            }
        },
        "training": {
            "rl/sft": {"seconds": 1.0, "metrics": {"steps": 2, "loss": {"first": None, "last": 1.0}}}
        },
    }
    assert tax_table(results)[2][0][-1] == "– (base scores 0)"
    row = preference_table(results)[2][0]
    assert row[5] == "–" and row[6:8] == ["n/a", "n/a"]  # no items: no win rate, no agreement
    assert training_table(results)[2][0][3] == "– → 1.000"
    with_nan = {
        "arms": {
            "rl": {
                "alignment_tax": {
                    "qa": {
                        "f1": {
                            "base": 0.0,
                            "tuned": 0.0,
                            "tax": 0.0,
                            "relative": float("nan"),
                            "ci95": [0.0, 0.0],
                        }
                    }
                }
            }
        }
    }
    assert tax_table(with_nan)[2][0][-1] == "–"  # a NaN, as read from a results file that holds one


def test_seed_aggregation_skips_null_values():
    from semrl.sandbox.seeds import aggregate_seeds

    runs = [
        {
            "seed": s,
            "claims": [],
            "evidence": {"tax": {"relative": relative, "relative_reason": "base scores 0", "value": value}},
        }
        for s, relative, value in ((0, None, 1.0), (1, None, 3.0), (2, 0.5, 2.0))
    ]
    evidence = aggregate_seeds(runs)["evidence"]
    assert evidence["tax.value"]["n"] == 3 and evidence["tax.value"]["mean"] == pytest.approx(2.0)
    assert "tax.relative" not in evidence  # one finite value of three: no summary, and no NaN either
    strict_loads(json.dumps(evidence, allow_nan=False))


def test_guard_nulls_non_finite_values_in_the_log_history():
    """What the Trainer saves (trainer_state.json) and semrl copies (log_history.json) from its history."""
    from semrl.train.guard import guard_callback

    guard = guard_callback()
    state = SimpleNamespace(global_step=3, log_history=[{"loss": float("inf"), "step": 1}])  # resumed history
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    guard.on_train_begin(None, state, control)
    logs = {"loss": 2.0, "grad_norm": float("nan"), "reward": None}
    state.log_history.append({**logs, "step": 3})
    guard.on_log(None, state, control, logs=logs)
    assert guard.problem == "non-finite grad_norm (nan) at step 3"
    assert control.should_save and control.should_training_stop
    assert state.log_history == [
        {"loss": None, "step": 1, "nonfinite": {"loss": "inf"}},
        {"loss": 2.0, "grad_norm": None, "reward": None, "step": 3, "nonfinite": {"grad_norm": "nan"}},
    ]
    strict_loads(json.dumps(state.log_history, allow_nan=False))


# ---- end to end through the CLI ----------------------------------------------------------------------


def _zero_base_config(tmp_path: Path) -> Path:
    """A tiny two-stage run with the example general suite: the untrained tiny base answers no QA
    item, so its exact match and F1 are 0 and the relative tax on them is undefined."""
    config = {
        "name": "strict",
        "seed": 0,
        "model": {"tiny": {}},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 6},
        "rewards": {"rewards": [{"type": "language", "lang": "zh"}, {"type": "chrf", "lang": "zh"}]},
        "sft": {
            "examples": 40,
            "epochs": 2,
            "batch_size": 8,
            "learning_rate": 1.0e-3,
            "save_steps": 5,
            "logging_steps": 2,
        },
        "grpo": {
            "max_steps": 4,
            "learning_rate": 1.0e-4,
            "num_generations": 4,
            "prompts_per_step": 2,
            "max_completion_length": 12,
            "save_steps": 2,
            "logging_steps": 1,
        },
        "eval": {
            "suite": str(SUITE),
            "metrics": ["bleu", "chrf", "lang"],
            "resamples": 50,
            "max_new_tokens": 12,
            "curve_every": 5,
        },
        "arms": [{"name": "rl", "recipe": "two_stage"}],
    }
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_a_run_where_the_base_scores_zero_writes_only_strict_json(tmp_path):
    run = tmp_path / "run"
    config = _zero_base_config(tmp_path)
    exp = load_experiment(config)
    result = run_cli("run", str(config), "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = strict_files(run)  # checkpoints' trainer_state.json included
    names = {str(p.relative_to(run)) for p in parsed}
    assert {
        "results.json",
        "manifest.json",
        "eval/base.json",
        "eval/rl.json",
        "eval/rl.outputs.jsonl",
        f"{planned_folder(exp, 'rl', 'sft')}/log_history.json",
        f"{planned_folder(exp, 'rl', 'grpo')}/metrics.json",
        "eval/curves/base.json",
    } <= names, names
    assert any(name.endswith("trainer_state.json") for name in names)

    results = parsed[run / "results.json"][0]
    entries = tax_entries(results)
    undefined = [e for e in entries if e["relative"] is None]
    assert undefined, "the tiny base should score 0 on QA (the case this test is about)"
    assert all(e.get("relative_reason") == "base scores 0" and e["base"] == 0 for e in undefined), undefined
    assert all("relative_reason" not in e and e["base"] != 0 for e in entries if e["relative"] is not None)
    for path in (run / "eval" / "rl.json", run / "eval" / "base.json"):
        assert all(e.get("relative_reason") for e in tax_entries(parsed[path][0]) if e["relative"] is None)
    assert "– (base scores 0)" in (run / "summary.md").read_text(encoding="utf-8")


def test_a_stage_stopped_on_nan_leaves_strict_json(tiny_lm, tmp_path):
    """The NaN guard stops the stage with a checkpoint; the trainer's saved history has null there."""
    from conftest import poisoned_copy

    model = poisoned_copy(tiny_lm, tmp_path / "model", "layers.0.mlp.down_proj", float("inf"))
    config = {
        "name": "nan",
        "model": {"path": str(model)},
        "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        "data": {"train": str(BO_ZH), "test_size": 1},
        "arms": [{"name": "s", "recipe": "strong_sft"}],
        "sft": {"epochs": 1, "batch_size": 8, "logging_steps": 1, "save_steps": 1000},
    }
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("train", "sft", "--config", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and "non-finite" in result.stderr, result.stderr[-3000:]
    parsed = strict_files(tmp_path / "run")
    state = parsed[tmp_path / "run" / "train" / "sft" / "checkpoint-1" / "trainer_state.json"][0]
    flagged = [entry for entry in state["log_history"] if "nonfinite" in entry]
    assert flagged and all(entry[key] is None for entry in flagged for key in entry["nonfinite"])
