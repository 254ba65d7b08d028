"""A control for the paper's method: the same cold start, then SFT (not GRPO) on the rows GRPO
would see. Against two_stage it separates the training method from the extra data."""

from semrl.recipes.registry import register
from semrl.recipes.stages import Model, Stages, TrainingRows


@register("sft_continue", examples="needed")
def sft_continue(stages: Stages, rows: TrainingRows, n: int | None) -> Model:
    cold_start = stages.sft(rows.head(n), init=stages.base)
    return stages.sft(rows.rest(n), init=cold_start, name="continue")
