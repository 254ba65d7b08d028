"""The reward types semrl knows, in one table: each entry names its YAML spec (whose `type:` literal
gives the names the YAML uses), the component built from it and whether it may be the gate.

A new reward is one file holding its spec (a `ComponentBase` with `type: Literal["mine"]`) and
its component (a `RewardComponent`; `loads` says which model it loads, `penalty` that it must carry
a negative weight), plus one line in REWARD_TYPES below. The reward config's union, the builder,
preflight's model checks and the memory estimate all read this table (docs/extending.md).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from pydantic import Field

from semrl.rewards.base import RewardComponent
from semrl.rewards.language import LanguageReward, LanguageSpec
from semrl.rewards.overlap import OverlapReward, OverlapSpec
from semrl.rewards.penalties import LengthPenalty, LengthSpec, RepetitionPenalty, RepetitionSpec
from semrl.rewards.reward_model import RewardModelReward, RewardModelSpec
from semrl.rewards.semantic import SemanticReward, SemanticSpec
from semrl.rewards.spec import ComponentBase


@dataclass(frozen=True)
class RewardType:
    spec: type[ComponentBase]
    component: type[RewardComponent]  # built as component(spec, columns)
    gate: int | None = None  # its place among the gate choices (the schema lists them so); None: never a gate

    @property
    def names(self) -> tuple[str, ...]:
        """The `type:` values this spec accepts (overlap takes three)."""
        return get_args(self.spec.model_fields["type"].annotation)


REWARD_TYPES: tuple[RewardType, ...] = (  # the order is the schema's (error messages list the types so)
    RewardType(SemanticSpec, SemanticReward, gate=1),
    RewardType(LanguageSpec, LanguageReward, gate=0),
    RewardType(OverlapSpec, OverlapReward, gate=2),
    RewardType(LengthSpec, LengthPenalty),
    RewardType(RepetitionSpec, RepetitionPenalty),
    RewardType(RewardModelSpec, RewardModelReward, gate=3),
)
BY_NAME: dict[str, RewardType] = {name: entry for entry in REWARD_TYPES for name in entry.names}


def reward_type(name: str) -> RewardType:
    if name not in BY_NAME:
        raise ValueError(f"unknown reward type {name!r}")
    return BY_NAME[name]


def spec_union(gates: bool = False) -> Any:
    """The pydantic union of the registered specs (discriminated by `type`), or of those that may gate."""
    gated = sorted((e.gate, index) for index, e in enumerate(REWARD_TYPES) if e.gate is not None)
    entries = [REWARD_TYPES[index] for _, index in gated] if gates else REWARD_TYPES
    union = functools.reduce(operator.or_, (entry.spec for entry in entries))  # Union[...] of a dynamic tuple
    return Annotated[union, Field(discriminator="type")]
