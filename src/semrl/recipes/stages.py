"""The words a recipe is written in: the training rows, the models, and the two trainers.

A recipe only says which stage trains on which rows from which model; `semrl run` traces it once
into a plan (semrl.recipes.plan), then trains each distinct stage of the plan once
(semrl.pipeline.stage_cache)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Part = Literal["cold_start", "rest", "all"]
Trainer = Literal["sft", "grpo"]


@dataclass(frozen=True)
class Rows:
    """A part of the experiment's training rows: the first N (cold start), the rest, or all."""

    part: Part


class TrainingRows:
    """The experiment's training rows, in file order (after the seeded train/test split)."""

    all = Rows("all")

    def head(self, n: int | None) -> Rows:
        """The first n rows; all of them when the config gives no n (sft.examples unset)."""
        return Rows("all" if n is None else "cold_start")

    def rest(self, n: int | None) -> Rows:
        """The rows after the first n."""
        return Rows("all" if n is None else "rest")


@dataclass(frozen=True)
class Model:
    """A model a stage starts from: the base model, or the final model of an earlier stage."""

    stage: str = "base"


@dataclass(frozen=True)
class StageCall:
    """One stage a recipe asked for, in the order it asked."""

    stage: str  # the recipe's name for it: sft | grpo | recover | continue
    trainer: Trainer
    init: str  # "base" or the name of an earlier stage of the same arm
    rows: Part
    with_reference: bool = True


@dataclass
class Stages:
    """What a recipe calls: each call records a stage and returns the model it will produce."""

    base: Model = Model()
    calls: list[StageCall] = field(default_factory=list)

    def sft(self, rows: Rows, init: Model, name: str = "sft") -> Model:
        return self._add(StageCall(name, "sft", init.stage, rows.part))

    def grpo(self, rows: Rows, init: Model, name: str = "grpo", with_reference: bool = True) -> Model:
        """GRPO with the arm's reward; `with_reference=False`: prompts carry no reference (the
        reward must then score against the source)."""
        return self._add(StageCall(name, "grpo", init.stage, rows.part, with_reference))

    def _add(self, call: StageCall) -> Model:
        if any(done.stage == call.stage for done in self.calls):
            raise ValueError(f"a recipe names each stage once; {call.stage!r} twice")
        self.calls.append(call)
        return Model(call.stage)
