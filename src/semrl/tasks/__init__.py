"""Task types, one module each (translate.py, headline.py, generic.py): the prompt template, the
row fields (roles) it needs and its default metrics. A new task is one module defining `TASK`
plus its line below; the schema's `task.type`, the data checks, the prompts and the evaluation
all read TASKS (docs/extending.md)."""

from semrl.tasks import generic, headline, translate
from semrl.tasks.base import Task

TASKS: dict[str, Task] = {task.name: task for task in (translate.TASK, headline.TASK, generic.TASK)}

__all__ = ["TASKS", "Task"]
