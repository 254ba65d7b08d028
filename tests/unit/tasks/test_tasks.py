"""The task modules (semrl/tasks/) are the one home of a task type: the schema, the prompts, the
row checks and the evaluation read them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from semrl.data.task_rows import DATA_ROLES
from semrl.data.tasks import TaskExamples
from semrl.evaluate.task import evaluate_task
from semrl.experiment_config import TaskSpec
from semrl.tasks import TASKS


def test_the_schema_accepts_exactly_the_registered_tasks():
    for name in TASKS:
        assert TaskSpec(type=name).type == name
    with pytest.raises(
        ValidationError, match="unknown task type 'no-such-task'; choose from " + ", ".join(TASKS)
    ):
        TaskSpec(type="no-such-task")


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_prompts_from_its_input_role_and_scores_its_default_metrics(name):
    task = TASKS[name]
    assert task.roles[-1] == "reference" and set(task.roles) <= set(DATA_ROLES)
    row = {task.input_role: "the words of the row", "reference": "a reference"}
    prompt = TaskExamples(TaskSpec(type=name, source_lang="en"), use_chat=False).prompt(row)
    assert "the words of the row" in prompt
    surface = [metric for metric in task.metrics if metric != "sim"]  # sim loads an encoder: tested elsewhere
    results, segments = evaluate_task(
        name, ["a reference", "other"], ["a reference", "a reference"], "en", resamples=10, metrics=surface
    )
    assert set(results) == set(segments) == set(surface)
    assert all(len(values) == 2 for values in segments.values())
