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


def test_known_optimizer_missing_its_package_is_refused(tmp_path):
    from semrl.checks.settings import optimizer_unusable, optimizers

    missing = next((name for name in optimizers() if optimizer_unusable(name)), None)
    if missing is None:
        pytest.skip("every optimizer transformers knows can be built here")
    result, out = dry_run(tmp_path, sft={"optim": missing})
    assert result.returncode == 2
    assert f"sft.optim: '{missing}' cannot be used here" in result.stderr
    assert not out.exists()


def test_defaults_and_documented_values_pass(tmp_path):
    from trl import GRPOConfig

    from semrl.checks.settings import CHECKS, documented_values, schedulers

    arms = [{"name": "rl", "recipe": "two_stage"}, {"name": "s", "recipe": "strong_sft"}]
    result, out = dry_run(tmp_path, arms=arms, rewards=REWARDS, sft={"examples": 10})
    assert result.returncode == 0, result.stderr
    assert not out.exists()
    for field in ("loss_type", "scale_rewards"):
        assert documented_values(GRPOConfig, field), f"nothing read from GRPOConfig about {field}"
        assert all(CHECKS[field](value) is None for value in documented_values(GRPOConfig, field))
    assert all(CHECKS["scheduler"](name) is None for name, why in schedulers().items() if why is None)
    assert all(
        CHECKS[field](value) is None
        for field, value in [
            ("optim", "adamw_torch"),
            ("attn_implementation", "eager"),
            ("attn_implementation", "sdpa"),
            ("report_to", "tensorboard"),
            ("dtype", "bfloat16"),
        ]
    )


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
