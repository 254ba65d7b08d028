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


def plan_arm(exp, arm) -> list[StagePlan]:
    name, recipe = arm.name, arm.recipe
    n = exp.stage_settings(arm, "sft").examples
    if recipe in ("two_stage", "train_reinforce_recover", "sft_continue") and n is None:
        raise UserError(f"arms.{name}: {recipe} needs sft.examples (the cold-start size N)")
    if recipe == "two_stage":
        return [StagePlan(name, "sft", "sft", "base", "cold_start"), StagePlan(name, "grpo", "grpo", "sft", "rest")]
    if recipe == "sft_continue":
        return [StagePlan(name, "sft", "sft", "base", "cold_start"), StagePlan(name, "continue", "sft", "sft", "rest")]
    if recipe == "strong_sft":
        return [StagePlan(name, "sft", "sft", "base", "all")]
    if recipe == "train_reinforce_recover":
        return [
            StagePlan(name, "sft", "sft", "base", "cold_start"),
            StagePlan(name, "grpo", "grpo", "sft", "rest", with_reference=False),
            StagePlan(name, "recover", "sft", "grpo", "cold_start"),
        ]
    if recipe == "sft":
        return [StagePlan(name, "sft", "sft", "base", "cold_start" if n else "all")]
    return [StagePlan(name, "grpo", "grpo", "base", "all")]


def plan_experiment(exp) -> list[StagePlan]:
    if not exp.arms:
        raise UserError("arms: the experiment has no arms; add e.g. {name: semantic_rl, recipe: two_stage}")
    plans = [plan for arm in exp.arms for plan in plan_arm(exp, arm)]
    for plan in plans:
        if plan.trainer == "grpo" and not plan.with_reference:
            arm = next(a for a in exp.arms if a.name == plan.arm)
            needs = build_reward(exp.reward_for(arm)).needs
            if "reference" in needs:
                raise UserError(f"arms.{arm.name}: train_reinforce_recover's GRPO is reference-free; its rewards "
                                "must not need the reference (use semantic with against: source)")
    return plans
