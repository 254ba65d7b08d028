"""headline: an article -> its headline (the reference), in the same language."""

from semrl.tasks.base import Task

TASK = Task(
    name="headline",
    template="Write a {target_name} headline for this article.\n{source}",
    roles=("source", "reference"),
    metrics=("rougeL", "sim", "lang"),
    hub_task="summarization",
)
