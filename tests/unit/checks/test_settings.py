"""Settings passed to TRL/transformers by name (loss type, reward scaling, schedulers, optimizer,
attention) are refused by `semrl run --dry-run` with exit 2 and one line naming the field, the bad
value and what the installed libraries accept, before anything is written; every default passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli_in_process, experiment, stderr_lines

REWARDS = {"rewards": [{"type": "language", "lang": "zh"}]}
GRPO_ARM = {"arms": [{"name": "rl", "recipe": "grpo"}], "rewards": REWARDS}


def dry_run(tmp_path: Path, **extra):
    out = tmp_path / "run"
    result = cli_in_process("run", str(experiment(tmp_path, **extra)), "--dry-run", "--out", str(out))
    return result, out


@pytest.mark.parametrize(
    "extra, field, bad, accepted",
    [
        ({"grpo": {"loss_type": "dapoo"}, **GRPO_ARM}, "grpo.loss_type", "dapoo", "dr_grpo"),
        ({"grpo": {"scale_rewards": "groups"}, **GRPO_ARM}, "grpo.scale_rewards", "groups", "batch"),
        ({"sft": {"scheduler": "cosin"}}, "sft.scheduler", "cosin", "cosine"),
        ({"recover": {"scheduler": "lineer"}}, "recover.scheduler", "lineer", "linear"),
        ({"rm": {"scheduler": "constnat"}}, "rm.scheduler", "constnat", "constant"),
        (
            {
                "arms": [{"name": "rl", "recipe": "grpo", "grpo": {"scheduler": "constnat"}}],
                "rewards": REWARDS,
            },
            "arms.rl.grpo.scheduler",
            "constnat",
            "constant",
        ),
        (
            {"arms": [{"name": "s", "recipe": "strong_sft", "sft": {"optim": "adam"}}]},
            "arms.s.sft.optim",
            "adam",
            "adamw_torch",
        ),
        ({"grpo": {"optim": "adamw"}}, "grpo.optim", "adamw", "sgd"),
        (
            {"model": {"tiny": {}, "attn_implementation": "flash"}},
            "model.attn_implementation",
            "flash",
            "eager",
        ),
    ],
)
def test_bad_setting_is_refused_before_anything_is_written(tmp_path, extra, field, bad, accepted):
    result, out = dry_run(tmp_path, **extra)
    assert result.returncode == 2, result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"semrl: error: {field}: '{bad}' "), result.stderr
    assert accepted in lines[0]
    assert not out.exists()


def test_all_bad_settings_are_reported_at_once(tmp_path):
    result, out = dry_run(
        tmp_path, sft={"scheduler": "cosin"}, grpo={"loss_type": "x", "scale_rewards": "y"}, **GRPO_ARM
    )
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert (
        "sft.scheduler: 'cosin'" in line
        and "grpo.loss_type: 'x'" in line
        and "grpo.scale_rewards: 'y'" in line
    )
    assert not out.exists()


def test_scheduler_that_needs_unpassed_settings_is_refused(tmp_path):
    from semrl.checks.settings import schedulers

    needy = [name for name, why in schedulers().items() if why]
    if not needy:
        pytest.skip("every scheduler of this transformers builds without lr_scheduler_kwargs")
    result, out = dry_run(tmp_path, sft={"scheduler": needy[0]})
    assert result.returncode == 2
    assert f"sft.scheduler: '{needy[0]}' needs settings semrl does not pass" in result.stderr
    assert not out.exists()


def test_scheduler_the_trainer_config_refuses_is_refused(tmp_path):
    """transformers refuses reduce_lr_on_plateau without an eval strategy (semrl sets none) when the
    stage's config is built: asked of that config, it is refused at the dry run instead."""
    from semrl.checks.settings import built, config_class

    refused = built(config_class("sft"), "lr_scheduler_type", "reduce_lr_on_plateau")[1]
    if refused is None:
        pytest.skip("this transformers builds reduce_lr_on_plateau without an eval strategy")
    result, out = dry_run(tmp_path, sft={"scheduler": "reduce_lr_on_plateau"})
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith("semrl: error: sft.scheduler: 'reduce_lr_on_plateau' is refused by trl "), line
    assert "SFTConfig" in line and refused in line and "use one of: " in line and "cosine" in line
    assert not out.exists()


def test_known_optimizer_missing_its_package_is_refused(tmp_path):
    from semrl.checks.settings import optimizer_unusable, optimizers

    missing = next((name for name in optimizers() if optimizer_unusable(name)), None)
    if missing is None:
        pytest.skip("every optimizer transformers knows can be built here")
    result, out = dry_run(tmp_path, sft={"optim": missing})
    assert result.returncode == 2
    assert f"sft.optim: '{missing}' cannot be used here" in result.stderr
    assert not out.exists()


def test_defaults_and_the_values_trl_judges_pass(tmp_path):
    from trl import GRPOConfig

    from semrl.checks.settings import CHECKS, config_class, judged_values, usable_schedulers

    arms = [{"name": "rl", "recipe": "two_stage"}, {"name": "s", "recipe": "strong_sft"}]
    result, out = dry_run(tmp_path, arms=arms, rewards=REWARDS, sft={"examples": 10})
    assert result.returncode == 0, result.stderr
    assert not out.exists()
    for field in ("loss_type", "scale_rewards", "multi_objective_aggregation"):
        assert judged_values(GRPOConfig, field), f"nothing read from GRPOTrainer about {field}"
        assert all(CHECKS[field](value) is None for value in judged_values(GRPOConfig, field))
    assert {"grpo", "dr_grpo", "dapo"} <= set(judged_values(GRPOConfig, "loss_type"))
    assert set(judged_values(GRPOConfig, "scale_rewards")) == {"group", "batch", "none"}
    for stage in ("sft", "grpo", "rm"):
        usable = usable_schedulers(config_class(stage))
        assert "cosine" in usable and all(CHECKS["scheduler"](name, stage) is None for name in usable)
    assert all(
        CHECKS[field](value, stage) is None
        for field, value, stage in [
            ("optim", "adamw_torch", "sft"),
            ("optim", "adamw_torch", "rm"),
            ("scheduler", "cosine", "grpo"),
            ("attn_implementation", "eager", None),
            ("attn_implementation", "sdpa", None),
            ("report_to", "tensorboard", None),
            ("dtype", "bfloat16", None),
        ]
    )


def test_a_literal_annotation_is_asked_before_the_trainer(tmp_path):
    """Once a config declares its choices (Literal), they are used; else the trainer's comparisons, read
    from the module named like the config's with _trainer (trl/trainer/grpo_trainer.py)."""
    import dataclasses
    import importlib
    import sys
    from typing import Literal

    from semrl.checks.settings import judged_values

    (tmp_path / "fake_config.py").write_text(
        "import dataclasses\n\n@dataclasses.dataclass\nclass FakeConfig:\n    mode: str = 'a'\n",
        encoding="utf-8",
    )
    (tmp_path / "fake_trainer.py").write_text(
        "def step(self, args):\n"
        "    if self.mode == 'b' or args.mode in ('c', 'd'):\n        pass\n"
        "    match self.mode:\n        case 'e':\n            pass\n"
        "    if self.other == 'x':\n        pass\n",
        encoding="utf-8",
    )
    sys.path.insert(0, str(tmp_path))
    try:
        fake = importlib.import_module("fake_config").FakeConfig
        assert set(judged_values(fake, "mode")) == {"a", "b", "c", "d", "e"}  # not other's "x"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fake_config", None)

    mode = ("mode", Literal["p", "q"], dataclasses.field(default="p"))  # an annotation, not a string
    declared = dataclasses.make_dataclass("Declared", [mode])
    assert judged_values(declared, "mode") == ("p", "q")


def test_asking_the_configs_leaves_the_device_state_alone():
    """Building TrainingArguments sets up accelerate's process state (and under torchrun, the process
    group); the configs built here must not, or the run's own trainer would find it fixed to cpu."""
    from accelerate.state import PartialState
    from trl import GRPOConfig, SFTConfig

    from semrl.checks.settings import built

    before = dict(PartialState._shared_state)
    config, refused = built(GRPOConfig, "loss_type", "grpo")
    assert refused is None and config.loss_type == "grpo" and config.world_size == 1
    assert built(SFTConfig, "lr_scheduler_type", "cosin")[1].startswith("cosin is not a valid SchedulerType")
    assert PartialState._shared_state == before


def test_optim_and_attention_reach_the_libraries(monkeypatch, tmp_path):
    import transformers
    import trl

    from semrl.experiment_config import ExperimentConfig
    from semrl.models.loading import load_causal_lm
    from semrl.train.grpo import grpo_config
    from semrl.train.settings import StageSettings

    exp = ExperimentConfig.model_validate(
        {
            "name": "x",
            "model": {"tiny": {}, "attn_implementation": "eager"},
            "task": {"type": "generic"},
            "data": {"train": "x.jsonl"},
            "grpo": {"optim": "sgd"},
        }
    )
    monkeypatch.setattr(trl, "GRPOConfig", lambda **kwargs: kwargs)
    settings = StageSettings.from_experiment(exp)
    assert grpo_config(settings, exp.grpo, tmp_path, "cpu")["optim"] == "sgd"
    assert "optim" not in grpo_config(settings, exp.grpo.model_copy(update={"optim": None}), tmp_path, "cpu")
    seen = {}
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM, "from_pretrained", lambda path, **kw: seen.update(kw)
    )
    load_causal_lm("m", "auto", "cpu", False, exp.model.attn_implementation)
    assert seen["attn_implementation"] == "eager"
