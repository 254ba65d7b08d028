"""Language reward: 1 if the output's letters are in the target script at or above a threshold,
else 0 (the paper's binary R_lang); `mode: continuous` returns the share itself."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from semrl.rewards.base import RewardComponent
from semrl.rewards.spec import ComponentBase
from semrl.text.scripts import resolve_scripts, target_share


class LanguageSpec(ComponentBase):
    type: Literal["language"] = Field(description="share of the output's letters in the target script")
    lang: str | None = Field(None, description="target language code (bo, zh, en, ...); picks its script")
    script: str | list[str] | None = Field(
        None, description="target script(s) by name, e.g. Tibetan, when no lang is given"
    )
    threshold: float = Field(
        0.95, ge=0.0, le=1.0, description="binary: 1 when the share reaches this, else 0"
    )
    mode: Literal["binary", "continuous"] = Field("binary", description="continuous: the share itself")

    @model_validator(mode="after")
    def _target_known(self) -> Self:
        if self.lang is None and self.script is None:
            raise ValueError("give lang (e.g. bo) or script (e.g. Tibetan)")
        resolve_scripts(self.lang, self.script)
        return self


class LanguageReward(RewardComponent):
    type = "language"

    def __init__(self, spec: LanguageSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.scripts = resolve_scripts(spec.lang, spec.script)

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        shares = [target_share(text, self.scripts) for text in completions]
        if self.spec.mode == "continuous":
            return shares
        return [1.0 if share >= self.spec.threshold else 0.0 for share in shares]
