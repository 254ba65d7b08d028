"""The sibling paper's recipe: SFT on the first N examples, reference-free GRPO on the sources of
the rest (the reward scores against the source), then a short recovery SFT on the N examples that
restores the format GRPO may have drifted from."""

from semrl.recipes.registry import register
from semrl.recipes.stages import Model, Stages, TrainingRows


@register("train_reinforce_recover", examples="needed")
def train_reinforce_recover(stages: Stages, rows: TrainingRows, n: int | None) -> Model:
    train = stages.sft(rows.head(n), init=stages.base)
    reinforce = stages.grpo(rows.rest(n), init=train, with_reference=False)
    return stages.sft(rows.head(n), init=reinforce, name="recover")
