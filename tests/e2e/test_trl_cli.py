"""semrl's reward inside TRL's own CLI: the real `trl grpo` command (accelerate launch, TRL's
script importing `--reward_funcs` by dotted path), offline, on a tiny model semrl builds and a
local JSONL dataset."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sample_lines, write_jsonl

TRL_ARGS = (
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "4",
    "--num_generations",
    "2",
    "--max_completion_length",
    "8",
    "--logging_steps",
    "1",
    "--bf16",
    "false",
    "--use_cpu",
    "true",
    "--report_to",
    "none",
    "--save_strategy",
    "no",
    "--activation_checkpointing",
    "false",
    "--dtype",
    "float32",
)


def trl_command() -> list[str]:
    """TRL's console script beside this interpreter (the venv's), as a user types `trl`."""
    script = Path(sys.executable).parent / "trl"
    return [str(script)] if script.exists() else [shutil.which("trl") or "trl"]


def trl_grpo(
    tmp_path: Path, model: Path, reward_funcs: str, config: Path | None
) -> subprocess.CompletedProcess:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    lines = sample_lines("en.txt")[:8]
    write_jsonl(data / "train.jsonl", [{"prompt": f"Repeat: {line}\n", "reference": line} for line in lines])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("SEMRL_REWARD_CONFIG", None)
    if config is not None:
        env["SEMRL_REWARD_CONFIG"] = str(config)
    return subprocess.run(
        [
            *trl_command(),
            "grpo",
            "--model_name_or_path",
            str(model),
            "--dataset_name",
            str(data),
            "--reward_funcs",
            reward_funcs,
            "--output_dir",
            str(tmp_path / "out"),
            *TRL_ARGS,
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )


def logged_steps(stdout: str) -> list[dict]:
    """The log dicts TRL's trainer prints, one a line (`{'loss': '0', ...}`), less the final summary."""
    rows = [ast.literal_eval(line) for line in stdout.splitlines() if re.match(r"^\{'", line)]
    return [row for row in rows if "train_runtime" not in row]


def test_trl_grpo_cli_trains_with_semrl_reward_and_logs_each_term(tmp_path, tiny_lm):
    config = tmp_path / "reward.yaml"
    config.write_text(
        "rewards:\n"
        "  - {type: semantic, weight: 1.5, encoder: default, tau: 0.0}\n"
        "  - {type: language, weight: 1.0, lang: en}\n",
        encoding="utf-8",
    )
    result = trl_grpo(tmp_path, tiny_lm, "semrl.rewards.trl.reward", config)
    assert result.returncode == 0, result.stderr[-4000:]
    steps = logged_steps(result.stdout)
    assert len(steps) == 2, result.stdout[-3000:]
    for step in steps:
        semantic, language = float(step["reward/semantic"]), float(step["reward/language"])
        assert 0.0 <= semantic <= 1.0 and 0.0 <= language <= 1.0  # batch means of [0, 1] terms
        # TRL's total is semrl's composition of the two terms (batch means, so the same weighted sum)
        assert float(step["rewards/semrl_reward/mean"]) == pytest.approx(1.5 * semantic + language, abs=2e-3)
        assert {"monitor/distinct", "monitor/hub", "monitor/retrieval"} <= set(step)
    assert (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.slow  # another minute of TRL's start-up; the in-process lookup test below covers the message
def test_trl_grpo_cli_without_the_variable_says_so_in_one_line(tmp_path, tiny_lm):
    result = trl_grpo(tmp_path, tiny_lm, "semrl.rewards.trl.reward", None)
    assert result.returncode != 0
    # accelerate repeats the script's stderr tail in its own traceback: one distinct line of ours
    ours = {line for line in result.stderr.splitlines() if line.startswith("semrl: error:")}
    assert len(ours) == 1 and "SEMRL_REWARD_CONFIG is not set" in ours.pop(), result.stderr[-3000:]
    assert "Loading weights" not in result.stderr  # it stopped at the lookup, before the model loaded
    assert not (tmp_path / "out").exists()


def test_language_rewards_score_and_log_under_trl_contract():
    import semrl.rewards.trl as trl_rewards

    logged: dict[str, float] = {}
    values = trl_rewards.language_bo(
        prompts=["p", "p"],
        completions=["བཀྲ་ཤིས་བདེ་ལེགས།", "你好"],
        trainer_state=None,
        log_metric=logged.__setitem__,
        log_extra=None,
    )
    assert values == [1.0, 0.0] and logged == {"reward/language_bo": 0.5}
    messages = [[{"role": "assistant", "content": "你好世界"}]]  # conversational completions
    assert trl_rewards.language_zh(prompts=[[{"role": "user", "content": "x"}]], completions=messages) == [
        1.0
    ]
    assert trl_rewards.language_zh.__name__ == "language_zh"


@pytest.mark.parametrize(
    "setting, message",
    [
        (None, "SEMRL_REWARD_CONFIG is not set"),
        ("missing.yaml", "missing.yaml: no such file"),
        ("bad.yaml", "tau: cold_start needs a semrl GRPO stage"),
    ],
)
def test_reward_lookup_fails_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys, setting, message):
    import semrl.rewards.trl as trl_rewards

    (tmp_path / "bad.yaml").write_text("rewards:\n  - {type: semantic, tau: cold_start}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trl_rewards, "_BUILT", {})
    if setting is None:
        monkeypatch.delenv("SEMRL_REWARD_CONFIG", raising=False)
    else:
        monkeypatch.setenv("SEMRL_REWARD_CONFIG", setting)
    with pytest.raises(SystemExit) as exit_info:
        trl_rewards.reward  # noqa: B018 - the lookup TRL's script does
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("semrl: error:") and message in lines[0]


def test_reward_from_the_variable_matches_semrl_composition(tmp_path, monkeypatch):
    import semrl.rewards.trl as trl_rewards
    from semrl.rewards import load_reward

    config = tmp_path / "reward.yaml"
    config.write_text(
        "rewards:\n  - {type: chrf, weight: 2.0}\n  - {type: language, weight: 1.0, lang: en}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(trl_rewards, "_BUILT", {})
    monkeypatch.setenv("SEMRL_REWARD_CONFIG", str(config))
    completions, references = ["The sun has risen.", "太阳"], ["The sun has risen.", "The sun has risen."]
    got = trl_rewards.reward(prompts=["a", "b"], completions=completions, reference=references)
    expected = load_reward(config)[1](prompts=["a", "b"], completions=completions, reference=references)
    assert got == expected and got[0] > got[1]
    assert trl_rewards.reward is trl_rewards.reward  # built once
    assert json.dumps(got)  # plain floats, as TRL needs
