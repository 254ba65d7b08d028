"""Which stages each recipe trains, which checkpoint a resume picks, and the Trainer arguments a
stage gets: semrl.train's decisions, checked without training."""

from __future__ import annotations

import json

import pytest

from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig
from semrl.recipes.plan import plan_arm, plan_experiment
from semrl.train.cold_start import sample_order
from semrl.train.common import discard_incomplete_checkpoints, latest_checkpoint, training_kwargs
from semrl.train.settings import StageSettings

REWARD = {"rewards": [{"type": "semantic", "against": "source"}, {"type": "language", "lang": "bo"}]}


def experiment(*arms: dict, examples: int | None = 10, rewards: dict | None = None) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "plans",
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "zh", "target_lang": "bo"},
            "data": {"train": "rows.jsonl"},
            "rewards": rewards or REWARD,
            "sft": {"examples": examples},
            "arms": list(arms),
        }
    )


def stages(plans) -> list[tuple[str, str, str, str, bool]]:
    return [(p.stage, p.trainer, p.init, p.rows, p.with_reference) for p in plans]


def test_each_recipe_trains_its_stages_from_the_right_start_on_the_right_rows():
    exp = experiment(
        {"name": "rl", "recipe": "two_stage"},
        {"name": "sft", "recipe": "strong_sft"},
        {"name": "trr", "recipe": "train_reinforce_recover"},
        {"name": "cont", "recipe": "sft_continue"},
        {"name": "one", "recipe": "grpo"},
    )
    plans = {arm.name: plan_arm(exp, arm) for arm in exp.arms}
    assert stages(plans["rl"]) == [
        ("sft", "sft", "base", "cold_start", True),
        ("grpo", "grpo", "sft", "rest", True),
    ]
    assert stages(plans["sft"]) == [("sft", "sft", "base", "all", True)]
    assert stages(plans["trr"]) == [
        ("sft", "sft", "base", "cold_start", True),
        ("grpo", "grpo", "sft", "rest", False),  # reference-free
        ("recover", "sft", "grpo", "cold_start", True),
    ]
    assert stages(plans["cont"]) == [
        ("sft", "sft", "base", "cold_start", True),
        ("continue", "sft", "sft", "rest", True),
    ]
    assert stages(plans["one"]) == [("grpo", "grpo", "base", "all", True)]
    assert [p.key for p in plan_experiment(exp)][:2] == ["rl/sft", "rl/grpo"]


def test_a_plain_sft_arm_trains_on_the_cold_start_rows_only_when_examples_is_set():
    with_n = experiment({"name": "s", "recipe": "sft"})
    without = experiment({"name": "s", "recipe": "sft"}, examples=None)
    assert stages(plan_arm(with_n, with_n.arms[0]))[0][3] == "cold_start"
    assert stages(plan_arm(without, without.arms[0]))[0][3] == "all"


def test_a_recipe_with_a_cold_start_needs_its_size():
    exp = experiment({"name": "rl", "recipe": "two_stage"}, examples=None)
    with pytest.raises(UserError, match=r"arms.rl: two_stage needs sft.examples"):
        plan_arm(exp, exp.arms[0])


def test_the_reference_free_grpo_stage_refuses_a_reward_that_needs_the_reference():
    exp = experiment(
        {"name": "trr", "recipe": "train_reinforce_recover"},
        rewards={"rewards": [{"type": "semantic", "against": "reference"}]},
    )
    with pytest.raises(UserError, match="reference-free"):
        plan_experiment(exp)


def test_sample_order_is_a_seeded_permutation():
    order = sample_order(50, seed=3)
    assert sorted(order) == list(range(50)) and order != list(range(50))
    assert sample_order(50, seed=3) == order and sample_order(50, seed=4) != order


def _checkpoint(stage, step: int, complete: bool, weights: bool = True) -> None:
    import torch
    from safetensors.torch import save_file

    folder = stage / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if weights:
        save_file({"w": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    (folder / "trainer_state.json").write_text(
        json.dumps({"global_step": step}) if complete else '{"glob', encoding="utf-8"
    )


def test_a_resume_starts_from_the_newest_complete_checkpoint_and_drops_torn_ones(tmp_path):
    for step, complete in ((2, True), (10, True), (12, False)):  # 10 sorts after 2 by number, not by name
        _checkpoint(tmp_path, step, complete)
    _checkpoint(tmp_path, 14, complete=True, weights=False)  # its weights deleted since
    (tmp_path / "checkpoint-notes").mkdir()  # not a checkpoint
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert discard_incomplete_checkpoints(tmp_path) == [
        ("checkpoint-12", "incomplete (interrupted while saving)"),
        ("checkpoint-14", "damaged: its weights (model.safetensors) are missing"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2", "checkpoint-notes"]
    assert latest_checkpoint(tmp_path / "none") is None


def test_training_kwargs_take_the_stage_spec_and_keep_every_curve_checkpoint(tmp_path):
    exp = experiment({"name": "rl", "recipe": "two_stage"})
    settings = StageSettings.from_experiment(exp)
    kwargs = training_kwargs(settings, exp.sft, tmp_path, "cpu")
    assert (kwargs["learning_rate"], kwargs["num_train_epochs"], kwargs["lr_scheduler_type"]) == (
        2e-5,
        2.0,
        "cosine",
    )
    assert (kwargs["save_steps"], kwargs["save_total_limit"], kwargs["report_to"]) == (50, 2, [])
    assert kwargs["use_cpu"] and not kwargs["bf16"] and kwargs["seed"] == kwargs["data_seed"] == 0
    curves = StageSettings(seed=1, save_every=5, report_to="tensorboard")
    kwargs = training_kwargs(curves, exp.grpo, tmp_path, "cpu")
    assert (kwargs["save_steps"], kwargs["save_total_limit"], kwargs["report_to"]) == (
        5,
        None,
        ["tensorboard"],
    )
