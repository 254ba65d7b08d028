"""A task type from outside semrl, as a user registers one: say the source another way, in the same
language. Tests name this file under `plugins:`."""

from semrl.api import Task, register_task

register_task(
    Task(
        name="paraphrase",
        template="Say this another way, in {target_name}:\n{source}",
        roles=("source", "reference"),
        metrics=("chrf", "lang"),
    )
)
