"""What a stage reports from its log history, and the completions rows it writes: the pure functions
of semrl.train (no trainer runs here; whole runs are in tests/e2e)."""

from __future__ import annotations

import json
import math

import pytest

from semrl.train.common import stage_train_loss, summarize_logs
from semrl.train.completions import completion_rows, read_completions, step_monitors
from semrl.train.guard import interrupted_message, null_nonfinite_entry, stage_run_name


def test_stage_train_loss_weights_each_logged_loss_by_the_steps_it_covers():
    # losses logged at steps 2, 6 and 7: each is the mean since the previous log
    history = [{"loss": 4.0, "step": 2}, {"loss": 1.0, "step": 6}, {"loss": 0.5, "step": 7}]
    assert stage_train_loss(history) == pytest.approx((4.0 * 2 + 1.0 * 4 + 0.5 * 1) / 7)


def test_stage_train_loss_is_the_same_for_a_resumed_history_as_for_an_uninterrupted_one():
    uninterrupted = [
        {"loss": 3.0, "step": 5},
        {"loss": 2.0, "step": 10},
        {"loss": 1.0, "step": 15},
        {"train_runtime": 9.0, "train_loss": 2.0, "step": 15},
    ]
    # the Trainer's own train_loss after a resume at step 10 covers only the last call: 1.0
    resumed = uninterrupted[:2] + [
        {"loss": 1.0, "step": 15},
        {"train_runtime": 3.0, "train_loss": 1.0, "step": 15},
    ]
    assert stage_train_loss(resumed) == stage_train_loss(uninterrupted) == pytest.approx(2.0)


def test_stage_train_loss_ignores_entries_without_a_numeric_loss_or_a_step():
    history = [
        {"loss": None, "step": 1},
        {"loss": 2.0},
        {"eval_loss": 9.0, "step": 3},
        {"loss": 1.5, "step": 4},
    ]
    assert stage_train_loss(history) == pytest.approx(1.5)
    assert stage_train_loss([]) is None


def test_summarize_logs_gives_first_last_mean_and_count_of_each_key_and_the_stage_totals():
    history = [
        {"loss": 2.0, "reward": 0.1, "step": 5},
        {"loss": 1.0, "reward": 0.3, "kl": 0.01, "step": 10},
        {"train_runtime": 12.5, "train_loss": 1.5, "step": 10},
    ]
    summary = summarize_logs(history, ("loss", "reward", "kl", "grad_norm"))
    assert summary["loss"] == {"first": 2.0, "last": 1.0, "mean": 1.5, "n": 2}
    assert summary["reward"] == pytest.approx({"first": 0.1, "last": 0.3, "mean": 0.2, "n": 2})
    assert summary["kl"] == {"first": 0.01, "last": 0.01, "mean": 0.01, "n": 1}
    assert "grad_norm" not in summary  # never logged
    assert summary["train_runtime_s"] == 12.5
    assert summary["train_loss"] == pytest.approx(1.5)
    assert summary["steps"] == 10


def test_summarize_logs_means_only_the_numbers_a_step_logged():
    # TRL logs None for a metric with no valid value in the step; the guard nulls non-finite values
    history = [{"kl": None, "step": 1}, {"kl": 0.2, "step": 2}, {"kl": 0.4, "step": 3}]
    assert summarize_logs(history, ("kl",))["kl"] == pytest.approx(
        {"first": None, "last": 0.4, "mean": 0.3, "n": 3}
    )
    assert summarize_logs([{"kl": None, "step": 1}], ("kl",))["kl"]["mean"] is None


def test_summarize_logs_falls_back_to_the_trainers_loss_when_no_step_was_logged():
    # fewer steps than logging_steps: only the Trainer's end-of-training entry has a loss
    summary = summarize_logs([{"train_runtime": 1.0, "train_loss": 0.7, "step": 3}], ("loss",))
    assert summary["train_loss"] == 0.7 and summary["steps"] == 3 and "loss" not in summary
    assert summarize_logs([], ("loss",)) == {"train_loss": None, "steps": 0}


def test_step_monitors_are_read_only_from_the_entry_of_that_step():
    history = [
        {"step": 4, "monitor/distinct": 0.5},
        {"step": 6, "monitor/distinct": 0.25, "monitor/hub": 0.8, "reward": 1.0},
    ]
    assert step_monitors(history, 6) == {"monitor/distinct": 0.25, "monitor/hub": 0.8}
    assert step_monitors(history, 4) == {}  # not the last entry: that step's values are gone
    assert step_monitors([], 1) == {}


def _sample_logs():
    return {
        "prompt": ["p1", "p2", "p3"],
        "completion": ["a", [{"role": "assistant", "content": "b"}], "c"],
        "rewards": {"semantic": [0.5, 0.25, float("nan")], "language": [1.0, 0.0, 1.0]},
        "advantages": [0.7, -0.7, float("inf")],
    }


def test_completion_rows_weigh_each_reward_function_and_keep_json_finite():
    rows = completion_rows(
        _sample_logs(), ["semantic", "language"], [1.5, 1.0], step=8, monitors={"monitor/distinct": 1.0}
    )
    assert [row["completion"] for row in rows] == ["a", "b", "c"]  # chat messages become their text
    assert rows[0]["reward"] == pytest.approx(1.5 * 0.5 + 1.0)
    assert rows[1]["reward"] == pytest.approx(1.5 * 0.25)
    assert rows[2]["reward"] is None  # NaN (no function could score it) is not a JSON number
    assert rows[2]["rewards"] == {"semantic": None, "language": 1.0}
    assert rows[2]["advantage"] is None and rows[0]["advantage"] == 0.7
    assert all(row["step"] == 8 and row["monitors"] == {"monitor/distinct": 1.0} for row in rows)
    json.dumps(rows, allow_nan=False)  # strict JSON
    assert len(completion_rows(_sample_logs(), ["semantic", "language"], [1.5, 1.0], 8, limit=2)) == 2


def test_completion_rows_show_the_composed_rewards_components_when_it_logged_them():
    logs = {
        **_sample_logs(),
        "rewards": {"total": [2.0, 1.0, 0.0]},
        "extra": {"semantic": [0.9, 0.4, 0.1], "language": [1, 1, 0]},
    }
    rows = completion_rows(logs, ["total"], [1.0], step=1)
    assert rows[0]["rewards"] == {"semantic": 0.9, "language": 1.0}
    assert [row["reward"] for row in rows] == [2.0, 1.0, 0.0]


def test_read_completions_stops_at_a_torn_last_line(tmp_path):
    path = tmp_path / "completions.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "compl', encoding="utf-8")
    assert read_completions(path) == [{"step": 1}, {"step": 2}]


def test_null_nonfinite_entry_names_what_it_replaced():
    entry = {"loss": float("nan"), "reward": 1.0, "grad_norm": float("inf"), "step": 3}
    cleaned = null_nonfinite_entry(entry)
    assert cleaned["loss"] is None and cleaned["grad_norm"] is None and cleaned["reward"] == 1.0
    assert cleaned["nonfinite"] == {"loss": "nan", "grad_norm": "inf"}
    again = null_nonfinite_entry({**cleaned, "kl": -math.inf})
    assert again["nonfinite"] == {"loss": "nan", "grad_norm": "inf", "kl": "-inf"}
    finite = {"loss": 1.0, "step": 1}
    assert null_nonfinite_entry(finite) is finite


def test_stage_run_name_is_the_run_folder_arm_and_stage(tmp_path):
    assert (
        stage_run_name(tmp_path / "tiny-bo-zh" / "semantic_rl" / "grpo", "semantic_rl/grpo")
        == "tiny-bo-zh/semantic_rl/grpo"
    )
    assert (
        stage_run_name(tmp_path / "run" / "stages" / "sft-0123", "semantic_rl/sft") == "run/semantic_rl/sft"
    )
    assert stage_run_name(tmp_path / "run" / "encoder", "encoder") == "run/encoder"
    assert stage_run_name(tmp_path / "elsewhere", "semantic_rl/grpo") == "semantic_rl/grpo"


def test_interrupted_message_says_how_to_resume_the_commands_that_can():
    assert (
        interrupted_message(["run", "x.yaml", "--out", "runs/my run"])
        == "resume with: semrl run x.yaml --out 'runs/my run' --resume"
    )
    assert (
        interrupted_message(["train", "sft", "--config", "x.yaml", "--resume"])
        == "resume with: semrl train sft --config x.yaml --resume"
    )
    assert interrupted_message(["rm", "transfer", "--config", "r.yaml"]).startswith(
        "resume with: semrl rm transfer"
    )
    assert interrupted_message(["eval", "runs/x"]) == "run again: semrl eval runs/x"
