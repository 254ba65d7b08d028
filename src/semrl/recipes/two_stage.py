"""The paper's method: a cold-start SFT on the first N examples teaches the output format, then
GRPO from that checkpoint on the remaining examples, rewarded by meaning (the arm's reward)
instead of by imitating reference tokens. N is `sft.examples`."""

from semrl.recipes.registry import register
from semrl.recipes.stages import Model, Stages, TrainingRows


@register("two_stage", examples="needed")
def two_stage(stages: Stages, rows: TrainingRows, n: int | None) -> Model:
    cold_start = stages.sft(rows.head(n), init=stages.base)
    return stages.grpo(rows.rest(n), init=cold_start)
