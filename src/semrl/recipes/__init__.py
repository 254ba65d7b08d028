"""Recipes: how an arm trains, one short file each (two_stage.py is the paper's method).

A recipe is a function of (stages, rows, n) that calls `stages.sft` / `stages.grpo` top to bottom
and returns the model the arm ends with. A new recipe is one file here with `@register(...)` and
one import below (see docs/extending.md). The imports' order is the order the schema, its
documentation and its messages list the recipes in."""

# isort: off
from semrl.recipes import two_stage  # noqa: F401 - the paper's method
from semrl.recipes import strong_sft  # noqa: F401
from semrl.recipes import train_reinforce_recover  # noqa: F401
from semrl.recipes import sft_continue  # noqa: F401
from semrl.recipes import single  # noqa: F401 - sft, grpo

# isort: on
from semrl.recipes.registry import RECIPES, Recipe, register

__all__ = ["RECIPES", "Recipe", "register"]
