"""The reward YAML: a list of weighted components, an optional multiplicative gate, and which
dataset columns hold the reference and the source.

```yaml
rewards:
  - {type: semantic, weight: 1.5, encoder: default, against: reference, tau: 0.3}
  # hubness-corrected: tau from the cold start's outputs, cosine minus its neighbour means
  # - {type: semantic, tau: cold_start, contrast: {bank: 512, k: 10, mode: csls}}
  - {type: language, weight: 1.0, lang: bo, threshold: 0.95}
gate: null            # or {type: language, lang: bo}: R = gate * max(sum, 0)
columns: {reference: reference, source: source}
```
Penalties (`length`, `repetition`) return a value in [0, 1] and must carry a negative weight.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from semrl.config_files import StrictModel
from semrl.text.scripts import resolve_scripts


class _Component(StrictModel):
    weight: float = 1.0
    name: str | None = Field(None, description="label in logs and outputs; defaults to the type")


class ContrastSpec(StrictModel):
    """Hubness correction (rewards/contrast.py): a sentence close to every reference ("hub")
    scores well under plain cosine; subtracting its mean similarity to its k nearest bank entries
    takes that away. margin: s' = cos - knn_y; csls: s' = cos - (knn_y + knn_r) / 2."""

    bank: int = Field(512, ge=1, description="texts drawn (seeded) from the stage's rows of each role")
    k: int = Field(10, ge=1, description="neighbours averaged; capped at the eligible bank entries")
    mode: Literal["csls", "margin"] = "csls"


class ColdStartTau(StrictModel):
    """tau from the stage's starting model: the q-quantile of its outputs' scores (s', before
    shaping) on a seeded sample of the GRPO prompts; the paper's "minimal adequacy of the cold start"."""

    # `from` is a Python keyword: the field is from_, read and dumped as `from`, as the YAML writes it
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    from_: Literal["cold_start"] = Field(alias="from")
    quantile: float = Field(0.5, gt=0.0, lt=1.0)
    sample: int = Field(64, ge=1, description="prompts sampled for the cold-start generation")


def _tau_kind(value: Any) -> str:
    """Which form of tau a value is, so a wrong one gets that form's message alone (not three)."""
    if isinstance(value, dict) or isinstance(value, ColdStartTau):
        return "rule"
    return "name" if isinstance(value, str) else "number"


Tau = Annotated[
    Union[Annotated[Annotated[float, Field(ge=-1.0, lt=1.0)], Tag("number")],
          Annotated[Literal["cold_start"], Tag("name")],
          Annotated[ColdStartTau, Tag("rule")]],
    Discriminator(_tau_kind),
]


class SemanticSpec(_Component):
    type: Literal["semantic"]
    encoder: str = Field("default", description="local folder, hub id, or 'default' (packaged MiniLM)")
    against: Literal["reference", "source", "both"] = "reference"
    tau: Tau = Field(
        0.0, description="adequacy floor: 0 if s <= tau else (s-tau)/(1-tau); cold_start: set when a GRPO stage starts")
    contrast: ContrastSpec | None = Field(None, description="hubness correction: {bank: 512, k: 10, mode: csls}")
    batch_size: int = Field(64, ge=1)
    device: str | None = Field(None, description="cuda, cuda:1, cpu; default: cuda when available (the policy's "
                               "GPU under one process). Another GPU or cpu keeps the encoder off the policy's memory")
    trust_remote_code: bool = False

    @property
    def cold_start(self) -> ColdStartTau | None:
        """The cold-start rule (the bare `cold_start` with its defaults), or None for a number."""
        if self.tau == "cold_start":
            return ColdStartTau(**{"from": "cold_start"})
        return self.tau if isinstance(self.tau, ColdStartTau) else None

    @property
    def tau_rule(self) -> tuple[str, float] | None:
        """("cold_start", q) when tau comes from the cold start, None when it is a number."""
        rule = self.cold_start
        return None if rule is None else ("cold_start", rule.quantile)


class LanguageSpec(_Component):
    type: Literal["language"]
    lang: str | None = None
    script: str | list[str] | None = None
    threshold: float = Field(0.95, ge=0.0, le=1.0)
    mode: Literal["binary", "continuous"] = "binary"

    @model_validator(mode="after")
    def _target_known(self):
        if self.lang is None and self.script is None:
            raise ValueError("give lang (e.g. bo) or script (e.g. Tibetan)")
        resolve_scripts(self.lang, self.script)
        return self


class OverlapSpec(_Component):
    type: Literal["bleu", "chrf", "rougeL"]
    lang: str | None = Field(None, description="language of the references; picks the tokenization")


class LengthSpec(_Component):
    type: Literal["length"]
    weight: float = -0.2
    start: float = Field(2.5, gt=0, description="no penalty up to start x the median length")
    end: float = Field(5.0, gt=0, description="full penalty (1.0) at end x the median length")
    relative_to: Literal["batch", "reference"] = "batch"
    lang: str | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError("end must be greater than start")
        return self


class RepetitionSpec(_Component):
    type: Literal["repetition"]
    weight: float = -0.05
    n: int = Field(4, ge=1)
    threshold: float = Field(0.15, ge=0.0, lt=1.0)
    lang: str | None = None


class RewardModelSpec(_Component):
    type: Literal["reward_model"]
    model: str
    transform: Literal["sigmoid", "raw", "batch_z", "reference_z"] = Field(
        "sigmoid", description="batch_z: standardise within each batch; reference_z: by the scores of `reference`")
    reference: str | None = Field(None, description="reference_z: file of prompt + completion (or chosen/rejected) rows")
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(1024, ge=8)
    device: str | None = Field(None, description="cuda, cuda:1, cpu; default: cuda when available. The RM's weights "
                               "and activations share that GPU with the policy (and vLLM) unless moved")
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _reference_needed(self):
        if (self.transform == "reference_z") != (self.reference is not None):
            raise ValueError("transform reference_z needs `reference:` (a file of texts), and only it uses one")
        return self


ComponentSpec = Annotated[
    Union[SemanticSpec, LanguageSpec, OverlapSpec, LengthSpec, RepetitionSpec, RewardModelSpec],
    Field(discriminator="type"),
]
GateSpec = Annotated[
    Union[LanguageSpec, SemanticSpec, OverlapSpec, RewardModelSpec],
    Field(discriminator="type"),
]
PENALTIES = ("length", "repetition")
ROLES = ("reference", "source")


class RewardConfig(StrictModel):
    rewards: list[ComponentSpec] = Field(min_length=1)
    gate: GateSpec | None = None
    columns: dict[str, str] = Field(default_factory=lambda: {"reference": "reference", "source": "source"})

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
    def _penalties_subtract(self):
        for index, spec in enumerate(self.rewards):
            if spec.type in PENALTIES and spec.weight > 0:
                raise ValueError(
                    f"rewards.{index} ({spec.type}) is a penalty in [0, 1]; give it a negative weight, e.g. -0.2"
                )
        names = [spec.name or spec.type for spec in self.rewards]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"two components are named {duplicates[0]!r}; set `name:` on one of them")
        return self
