"""generic: the row's own prompt, as written -> the reference answer."""

from semrl.tasks.base import Task

TASK = Task(
    name="generic",
    template="{prompt}",
    roles=("prompt", "reference"),
    metrics=("chrf", "sim", "lang"),
)
