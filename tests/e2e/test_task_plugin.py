"""A task type from outside semrl: a plugin registers it, the schema accepts it, and `semrl run`
trains and evaluates it, in worker processes too (which import the plugin the config names)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli_in_process, experiment, stderr_lines
from semrl.data.tasks import TaskExamples
from semrl.experiment_config import load_experiment
from semrl.tasks import Task, register_task, task_names

PLUGIN = Path(__file__).resolve().parents[1] / "data" / "plugins" / "paraphrase_task.py"


def test_a_registered_task_trains_and_evaluates_in_parallel_workers(tmp_path):
    config = experiment(
        tmp_path,
        plugins=[str(PLUGIN)],
        task={"type": "paraphrase", "source_lang": "bo", "target_lang": "zh"},
        parallel=2,
        sft={"max_steps": 2, "batch_size": 4, "logging_steps": 1},
        eval={"resamples": 20, "max_new_tokens": 4},
        arms=[  # two independent stages: each trains in a worker
            {"name": "a", "recipe": "strong_sft"},
            {"name": "b", "recipe": "strong_sft", "sft": {"learning_rate": 1.0e-4}},
        ],
    )
    exp = load_experiment(config)
    assert "paraphrase" in task_names()
    prompt = TaskExamples(exp.task, use_chat=False).prompt({"source": "ཁོང་", "reference": "他"})
    assert prompt == "Say this another way, in Chinese:\nཁོང་\n"
    result = cli_in_process("run", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "parallel: 2 stages to train in 2 worker processes" in result.stderr, result.stderr[-2000:]
    for arm in ("a", "b"):
        evaluated = json.loads((tmp_path / "run" / "eval" / f"{arm}.json").read_text(encoding="utf-8"))
        assert set(evaluated["task"]) == {"chrf", "lang"}  # the task's own default metrics


def test_an_unknown_task_is_refused_and_a_task_must_prompt_from_a_known_role(tmp_path):
    result = cli_in_process(
        "run",
        str(experiment(tmp_path, task={"type": "paraphrase2"})),
        "--dry-run",
        "--out",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2
    [line] = stderr_lines(result)
    assert "task.type: unknown task type 'paraphrase2'" in line
    with pytest.raises(ValueError, match="roles must be"):
        register_task(Task("quiz", "{question}", ("question", "reference"), ("chrf",)))
    with pytest.raises(ValueError, match="'translate' is already registered"):
        register_task(Task("translate", "{source}", ("source", "reference"), ("chrf",)))
