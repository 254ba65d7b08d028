"""Task types, one module each (translate.py, headline.py, generic.py): the prompt template, the
row fields (roles) it needs and its default metrics. A new task of semrl's own is one module
defining `TASK` plus its line below; a task from outside semrl is registered with `register_task`
by a plugin the experiment names (docs/extending.md). The schema's `task.type`, the data checks,
the prompts and the evaluation all read TASKS."""

from semrl.plugins import add_to
from semrl.tasks import generic, headline, translate
from semrl.tasks.base import INPUT_ROLES, Task

TASKS: dict[str, Task] = {task.name: task for task in (translate.TASK, headline.TASK, generic.TASK)}


def register_task(task: Task) -> Task:
    """Make a task type known to `task.type`, the data checks, the prompts and evaluation. Its
    input is a `source` or a `prompt` (the prompt templates' fields), then the `reference`."""
    if len(task.roles) != 2 or task.roles[0] not in INPUT_ROLES or task.roles[1] != "reference":
        raise ValueError(f"task {task.name!r}: roles must be (source or prompt, reference), not {task.roles}")
    return add_to(TASKS, task.name, task, "task")


def task_names() -> tuple[str, ...]:
    """Every task type this process knows: semrl's, then the registered ones."""
    return tuple(TASKS)


__all__ = ["TASKS", "Task", "register_task", "task_names"]
