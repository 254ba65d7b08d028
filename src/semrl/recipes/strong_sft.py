"""The paper's baseline: SFT on every training example, from the base model."""

from semrl.recipes.registry import register
from semrl.recipes.stages import Model, Stages, TrainingRows


@register("strong_sft", examples="unused")
def strong_sft(stages: Stages, rows: TrainingRows, n: int | None) -> Model:
    return stages.sft(rows.all, init=stages.base)
