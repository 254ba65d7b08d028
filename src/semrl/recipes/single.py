"""One stage from the base model: `sft` on the first N examples (all of them without N), `grpo`
on every example."""

from semrl.recipes.registry import register
from semrl.recipes.stages import Model, Stages, TrainingRows


@register("sft", examples="optional")
def sft(stages: Stages, rows: TrainingRows, n: int | None) -> Model:
    return stages.sft(rows.head(n), init=stages.base)


@register("grpo", examples="unused")
def grpo(stages: Stages, rows: TrainingRows, n: int | None) -> Model:
    return stages.grpo(rows.all, init=stages.base)
