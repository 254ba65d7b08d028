"""The recipes by name, as the config's `arms[].recipe` names them. A recipe file registers its
function with `@register(name, examples=...)`; semrl.recipes imports every recipe file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from semrl.recipes.stages import Model, StageCall, Stages, TrainingRows

RecipeFunction = Callable[[Stages, TrainingRows, "int | None"], Model]
# sft.examples (the cold-start N): needed, optional (the head is then every row), or unused
Examples = Literal["needed", "optional", "unused"]


@dataclass(frozen=True)
class Recipe:
    name: str
    function: RecipeFunction
    examples: Examples

    def trace(self, n: int | None) -> list[StageCall]:
        """The stages the recipe trains for cold-start size n, in order."""
        stages = Stages()
        self.function(stages, TrainingRows(), n)
        return stages.calls

    @property
    def needs_rewards(self) -> bool:
        """Trains with GRPO, so the arm needs a reward."""
        return any(call.trainer == "grpo" for call in self.trace(1))

    @property
    def rest_stage(self) -> str | None:
        """The stage that trains on the rows after the cold start N (which must leave some), if any."""
        return next((call.stage for call in self.trace(1) if call.rows == "rest"), None)


RECIPES: dict[str, Recipe] = {}


def register(name: str, examples: Examples) -> Callable[[RecipeFunction], RecipeFunction]:
    def add(function: RecipeFunction) -> RecipeFunction:
        if name in RECIPES:
            raise ValueError(f"recipe {name!r} is registered twice")
        RECIPES[name] = Recipe(name, function, examples)
        return function

    return add
