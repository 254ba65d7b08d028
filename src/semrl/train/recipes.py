"""Recipes: the stage sequence of each arm.

two_stage                cold-start SFT on the first N examples, then GRPO from that checkpoint on
                         the rest (the paper's method; N = sft.examples)
strong_sft               SFT on all the data (the paper's baseline)
train_reinforce_recover  SFT on N, reference-free GRPO on the rest's sources with a source-side
                         reward, then a short recovery SFT on the N examples (the sibling paper)
sft_continue             cold-start SFT on N, then SFT on the rest from that checkpoint (the control
                         that sees the rows GRPO sees, by imitation: method vs. data)
sft / grpo               one stage from the base model
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from semrl.errors import UserError
from semrl.rewards import build_reward


@dataclass(frozen=True)
class StagePlan:
    arm: str
    stage: str  # sft | grpo | recover
    trainer: str  # sft | grpo
    init: str  # "base" or the name of an earlier stage of the same arm
    rows: str  # cold_start (first N) | rest (after N) | all
    with_reference: bool = True

    @property
    def key(self) -> str:
        return f"{self.arm}/{self.stage}"


@dataclass(frozen=True)
class Stage:
    """One step of a recipe: StagePlan without the arm."""

    stage: str
    trainer: str
    init: str
    rows: str
    with_reference: bool = True


@dataclass(frozen=True)
class Recipe:
    """Everything semrl knows about a recipe, in one place: the schema's list of recipe names, the
    validator (does it need `rewards:`?), preflight (does it read sft.examples?) and the planner."""

    stages: tuple[Stage, ...]
    # sft.examples (the cold-start N): needed, optional (cold-start rows become all rows without it),
    # or unused (every stage trains on all rows)
    examples: Literal["needed", "optional", "unused"]

    @property
    def needs_rewards(self) -> bool:
        """Trains with GRPO, so the arm needs a reward."""
        return any(stage.trainer == "grpo" for stage in self.stages)

    @property
    def rest_stage(self) -> str | None:
        """The stage that trains on the rows after the cold start N (which must leave some), if any."""
        return next((stage.stage for stage in self.stages if stage.rows == "rest"), None)


COLD_SFT = Stage("sft", "sft", "base", "cold_start")
RECIPES: dict[str, Recipe] = {  # the order is the schema's (error messages list them so)
    "two_stage": Recipe((COLD_SFT, Stage("grpo", "grpo", "sft", "rest")), "needed"),
    "strong_sft": Recipe((Stage("sft", "sft", "base", "all"),), "unused"),
    "train_reinforce_recover": Recipe(
        (
            COLD_SFT,
            Stage("grpo", "grpo", "sft", "rest", with_reference=False),
            Stage("recover", "sft", "grpo", "cold_start"),
        ),
        "needed",
    ),
    "sft_continue": Recipe((COLD_SFT, Stage("continue", "sft", "sft", "rest")), "needed"),
    "sft": Recipe((COLD_SFT,), "optional"),
    "grpo": Recipe((Stage("grpo", "grpo", "base", "all"),), "unused"),
}


def plan_arm(exp, arm) -> list[StagePlan]:
    name, recipe = arm.name, RECIPES[arm.recipe]
    n = exp.stage_settings(arm, "sft").examples
    if recipe.examples == "needed" and n is None:
        raise UserError(f"arms.{name}: {arm.recipe} needs sft.examples (the cold-start size N)")
    return [
        StagePlan(
            name,
            stage.stage,
            stage.trainer,
            stage.init,
            "all" if stage.rows == "cold_start" and n is None else stage.rows,
            stage.with_reference,
        )
        for stage in recipe.stages
    ]


def plan_experiment(exp) -> list[StagePlan]:
    if not exp.arms:
        raise UserError("arms: the experiment has no arms; add e.g. {name: semantic_rl, recipe: two_stage}")
    plans = [plan for arm in exp.arms for plan in plan_arm(exp, arm)]
    for plan in plans:
        if plan.trainer == "grpo" and not plan.with_reference:
            arm = exp.arm(plan.arm)
            needs = build_reward(exp.reward_for(arm)).needs
            if "reference" in needs:
                raise UserError(
                    f"arms.{arm.name}: train_reinforce_recover's GRPO is reference-free; its rewards "
                    "must not need the reference (use semantic with against: source)"
                )
    return plans
