"""What every reward component's YAML spec shares: its weight and its name in logs. Each reward
type's own spec lives beside its component (rewards/semantic.py, language.py, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from semrl.config_files import StrictModel
from semrl.names import PathName


class ComponentBase(StrictModel):
    weight: float = Field(1.0, description="multiplies the component's value in the weighted sum")
    name: PathName | None = Field(None, description="label in logs and outputs; defaults to the type")
    if TYPE_CHECKING:  # each reward type's spec declares it as the Literal of its names (not a field here)
        type: str
