"""Recipes: how an arm trains, one short file each (two_stage.py is the paper's method).

A recipe is a function of (stages, rows, n) that calls `stages.sft` / `stages.grpo` top to bottom
and returns the model the arm ends with. A new recipe is one file here with `@register(...)` and
one import below (see docs/extending.md)."""

from semrl.recipes import (  # noqa: F401 - each import registers its recipes, in the schema's order
    sft_continue,
    single,
    strong_sft,
    train_reinforce_recover,
    two_stage,
)
from semrl.recipes.registry import RECIPES, Recipe, register

__all__ = ["RECIPES", "Recipe", "register"]
