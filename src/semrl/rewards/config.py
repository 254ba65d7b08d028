"""The reward YAML: a list of weighted components, an optional multiplicative gate, and which
dataset columns hold the reference and the source.

```yaml
rewards:
  - {type: semantic, weight: 1.5, encoder: default, against: reference, tau: 0.3}
  # hubness-corrected: tau from the cold start's outputs, cosine minus its neighbour means
  # - {type: semantic, tau: cold_start, contrast: {bank: 512, k: 10, mode: csls}}
  # discriminative: the cosine plus how surely the output picks out its own reference among the bank
  # - {type: semantic, tau: 0.0, contrast: {mode: retrieval, bank: 512, temperature: 0.05, weight: 1}}
  - {type: language, weight: 1.0, lang: bo, threshold: 0.95}
gate: null            # or {type: language, lang: bo}: R = gate * max(sum, 0)
columns: {reference: reference, source: source}
```
Penalties (`length`, `repetition`) return a value in [0, 1] and must carry a negative weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, TypeAlias

from pydantic import Field, field_validator, model_validator

from semrl.config_files import StrictModel
from semrl.rewards.contrast import ContrastSpec
from semrl.rewards.language import LanguageSpec
from semrl.rewards.overlap import OverlapSpec
from semrl.rewards.penalties import LengthSpec, RepetitionSpec
from semrl.rewards.registry import reward_type, spec_union
from semrl.rewards.reward_model import RewardModelSpec
from semrl.rewards.semantic import ColdStartTau, SemanticSpec
from semrl.rewards.spec import ComponentBase

# the specs by name, for code that builds one directly (studies/rm/best_of_n.py)
__all__ = [
    "ColdStartTau",
    "ComponentSpec",
    "ContrastSpec",
    "GateSpec",
    "LanguageSpec",
    "LengthSpec",
    "OverlapSpec",
    "RepetitionSpec",
    "RewardConfig",
    "RewardModelSpec",
    "SemanticSpec",
]

if TYPE_CHECKING:  # the unions are built from the registry at run time; mypy sees what they share
    ComponentSpec: TypeAlias = ComponentBase
    GateSpec: TypeAlias = ComponentBase
else:
    ComponentSpec = spec_union()  # every registered reward type (rewards/registry.py)
    GateSpec = spec_union(gates=True)
ROLES = ("reference", "source")


class RewardConfig(StrictModel):
    """A reward YAML: weighted components, an optional gate, and the columns they read."""

    rewards: list[ComponentSpec] = Field(
        min_length=1, description="the weighted components; the reward is sum(weight x value)"
    )
    gate: GateSpec | None = Field(None, description="a component that multiplies the sum: gate x max(sum, 0)")
    columns: dict[str, str] = Field(
        default_factory=lambda: {"reference": "reference", "source": "source"},
        description="role -> dataset column: reference, source",
    )

    @field_validator("columns")
    @classmethod
    def _known_roles(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = [role for role in columns if role not in ROLES]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        return {**{role: role for role in ROLES}, **columns}

    def specs(self) -> list[Any]:
        """The weighted components, then the gate (when there is one): every spec the reward builds."""
        return [*self.rewards, *([self.gate] if self.gate is not None else [])]

    @model_validator(mode="after")
    def _penalties_subtract(self) -> Self:
        for index, spec in enumerate(self.rewards):
            if reward_type(spec.type).component.penalty and spec.weight > 0:
                raise ValueError(
                    f"rewards.{index} ({spec.type}) is a penalty in [0, 1]; give it a negative weight, e.g. "
                    "-0.2"
                )
        names = [spec.name or spec.type for spec in self.rewards]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"two components are named {duplicates[0]!r}; set `name:` on one of them")
        return self
