"""translate: a source sentence in one language -> its translation (the reference) in another."""

from semrl.tasks.base import Task

TASK = Task(
    name="translate",
    template="Translate the following {source_name} text into {target_name}.\n{source}",
    roles=("source", "reference"),
    metrics=("bleu", "chrf", "sim", "lang"),
    hub_task="translation",
)
