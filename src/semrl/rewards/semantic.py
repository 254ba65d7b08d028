"""The paper's semantic reward: cosine between sentence embeddings, shaped by an adequacy floor.

R_sim = 0 if s <= tau else (s - tau) / (1 - tau), with s = cos(f(y), f(y*)) under a frozen
encoder, y* the reference, the source (reference-free, cross-lingual), or both (mean of the two).
With `contrast:` s is the hubness-corrected s' (rewards/contrast.py: csls, margin, or retrieval's
(cos + w * p) / (1 + w)), per target, then averaged; tau and the shaping apply to it. The encoder
loads once per process on first use; each distinct text in a call is encoded once
(encoders/distinct.py), and the contrast bank once per stage.

`tau: cold_start` is resolved by the GRPO stage (the q-quantile of the cold-start model's
`adequacy`, then `set_tau`); scoring before that is an error, never a silent tau. The first
semantic term of a reward also computes the oracle-free monitors (rewards/monitors.py) from the
call's vectors; the caller logs them through TRL's `log_metric`. Every semantic term also logs the
share of its scores at or below tau and, with `contrast:`, how s' reorders each prompt's
completions against plain cosine (`stall/*`, rewards/stall.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag

from semrl.config_files import StrictModel
from semrl.encoders import DistinctTextEncoder, load_encoder, resolve_encoder
from semrl.errors import UserError
from semrl.names import PathText
from semrl.rewards.base import LoadedModel, RewardComponent, as_text
from semrl.rewards.contrast import Bank, ContrastSpec, build_bank, corrected, draw_bank
from semrl.rewards.monitors import monitor_values
from semrl.rewards.spec import ComponentBase
from semrl.rewards.stall import PREFIX, contrast_stall, floored_share, mean_cosine

if TYPE_CHECKING:
    import torch


class ColdStartTau(StrictModel):
    """tau from the stage's starting model: the q-quantile of its outputs' scores (s', before
    shaping) on a seeded sample of the GRPO prompts; the paper's "minimal adequacy of the cold start"."""

    # `from` is a Python keyword: the field is from_, read and dumped as `from`, as the YAML writes it
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    from_: Literal["cold_start"] = Field(
        alias="from", description="where tau comes from: the stage's starting model"
    )
    quantile: float = Field(0.5, gt=0.0, lt=1.0, description="tau is this quantile of the sample's scores")
    sample: int = Field(64, ge=1, description="prompts sampled for the cold-start generation")


def _tau_kind(value: Any) -> str:
    """Which form of tau a value is, so a wrong one gets that form's message alone (not three)."""
    if isinstance(value, dict) or isinstance(value, ColdStartTau):
        return "rule"
    return "name" if isinstance(value, str) else "number"


Tau = Annotated[
    Annotated[Annotated[float, Field(ge=-1.0, lt=1.0)], Tag("number")]
    | Annotated[Literal["cold_start"], Tag("name")]
    | Annotated[ColdStartTau, Tag("rule")],
    Discriminator(_tau_kind),
]


class SemanticSpec(ComponentBase):
    type: Literal["semantic"] = Field(description="cosine similarity of sentence embeddings, floored at tau")
    encoder: PathText = Field("default", description="local folder, hub id, or 'default' (packaged MiniLM)")
    against: Literal["reference", "source", "both"] = Field(
        "reference", description="compare the output with the reference, the source, or the mean of both"
    )
    tau: Tau = Field(
        0.0,
        description="adequacy floor: 0 if s <= tau else (s-tau)/(1-tau); "
        "cold_start: set when a GRPO stage starts",
    )
    contrast: ContrastSpec | None = Field(
        None,
        description="hubness correction: {bank: 512, k: 10, mode: csls}, or "
        "{mode: retrieval, bank: 512, temperature: 0.05, weight: 1}",
    )
    batch_size: int = Field(64, ge=1, description="texts per encoder call")
    device: str | None = Field(
        None,
        description="cuda, cuda:1, cpu; default: cuda when available (the policy's "
        "GPU under one process). Another GPU or cpu keeps the encoder off the policy's memory",
    )
    trust_remote_code: bool = Field(False, description="run the encoder repository's own Python code")

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


MONITOR_K = 10  # neighbours for monitor/hub when the reward has no contrast k (none, or retrieval)


def floor_shape(similarity: float, tau: float) -> float:
    """The paper's shaping: zero below the floor, linear from the floor to 1."""
    return 0.0 if similarity <= tau else (similarity - tau) / (1.0 - tau)


class SemanticReward(RewardComponent):
    type = "semantic"

    @classmethod
    def loads(cls, spec: SemanticSpec) -> LoadedModel:
        return LoadedModel("encoder", spec.encoder, "encoder", spec.device, spec.trust_remote_code)

    def __init__(self, spec: SemanticSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.needs = ("reference", "source") if spec.against == "both" else (spec.against,)
        resolve_encoder(spec.encoder)  # a missing local path fails now, not at step 1
        self._encoder: DistinctTextEncoder | None = None
        # a number, or None until the GRPO stage resolves the cold-start rule (`spec.cold_start`)
        self.tau: float | None = None if isinstance(spec.tau, (str, ColdStartTau)) else float(spec.tau)
        self.banks: dict[str, Bank] | None = None  # role -> bank, built by prepare() under contrast
        self.monitor = False  # set by build_reward on a reward's first semantic term
        self.monitors: dict[str, float] = {}  # the last call's monitor/* values
        self.stall: dict[str, float] = {}  # the last call's stall/* values
        self._groups: list[str] | None = None  # the last call's prompts, as text

    @property
    def encoder(self) -> DistinctTextEncoder:
        """This term's encoder (loaded once per process, on first use), at its batch size."""
        if self._encoder is None:
            model = load_encoder(self.spec.encoder, self.spec.device, self.spec.trust_remote_code)
            self._encoder = DistinctTextEncoder(model, self.spec.batch_size)
        return self._encoder

    def prepare(self, rows: list[dict[str, Any]], seed: int) -> None:
        """Draw and embed the contrast bank of each target role from the stage's rows (no-op without
        contrast). Called once when a stage starts; a resumed stage draws the same bank."""
        if self.spec.contrast is None:
            return
        banks: dict[str, Bank] = {}
        for role in self.needs:
            column = self.columns.get(role, role)
            texts = [as_text(row[column]) for row in rows if row.get(column) is not None]
            drawn = draw_bank(texts, self.spec.contrast.bank, seed)
            if not drawn:
                raise UserError(
                    f"reward {self.name!r}: contrast draws its bank from the {role} column {column!r}, "
                    f"but none of the {len(rows)} rows given has a non-empty {column!r}"
                )
            banks[role] = build_bank(drawn, self.encoder.embed)
        self.banks = banks

    def set_tau(self, value: float) -> None:
        """Fix tau (the GRPO stage does, from the cold start's scores, for `tau: cold_start`)."""
        if not (math.isfinite(value) and value < 1.0):
            raise ValueError(
                f"reward {self.name!r}: tau must be a finite number below 1 (the shaping divides "
                f"by 1 - tau), got {value}"
            )
        self.tau = float(value)

    def _vectors(
        self, completions: list[str], refs: dict[str, list[str]]
    ) -> tuple[list[int], torch.Tensor, dict[str, torch.Tensor]]:
        """Unit vectors of the call: the non-empty completions' (in `keep` order) and every item's
        target per role, from one cache pass (each distinct text encoded once)."""
        if self.spec.contrast is not None and self.banks is None:
            raise UserError(
                f"reward {self.name!r}: contrast needs its bank, drawn from the stage's rows: call "
                "prepare(rows, seed) first (GRPO stages, `semrl reward` and the audit do)"
            )
        keep = [i for i, text in enumerate(completions) if text.strip()]
        groups = self.encoder.embed_groups(
            [completions[i] for i in keep], *(refs[role] for role in self.needs)
        )
        return keep, groups[0], dict(zip(self.needs, groups[1:], strict=True))

    def _similarities(
        self, completions: list[str], refs: dict[str, list[str]]
    ) -> tuple[list[float], list[int], torch.Tensor, dict[str, torch.Tensor]]:
        import torch

        keep, outputs, targets = self._vectors(completions, refs)  # refuses contrast without banks
        banks = self.banks or {}
        totals = [0.0] * len(completions)
        if keep:
            rows = torch.tensor(keep, dtype=torch.long)
            for role in self.needs:
                matched = targets[role][rows]
                values = (outputs * matched).sum(dim=1).clamp(-1.0, 1.0)
                if self.spec.contrast is not None:
                    texts = [refs[role][i] for i in keep]
                    values = corrected(
                        values,
                        outputs,
                        [completions[i] for i in keep],
                        matched,
                        texts,
                        banks[role],
                        self.spec.contrast,
                    )
                for i, value in zip(keep, values.tolist(), strict=True):
                    totals[i] += value / len(self.needs)
        return totals, keep, outputs, targets

    def adequacy(self, completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        """s per completion before shaping: s' under contrast, the plain cosine otherwise (averaged
        over the targets; 0.0 for an empty completion, the level of a text with no meaning)."""
        return self._similarities(completions, refs)[0]

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        if self.tau is None:
            raise UserError(
                f"reward {self.name!r}: tau: cold_start is set when a GRPO stage starts (the "
                "quantile of the cold-start model's scores); call set_tau() first, or give a number"
            )
        totals, keep, outputs, targets = self._similarities(completions, refs)
        # the input each completion answers: its prompt (GRPO's group), so `distinct` sees only
        # outputs shared across inputs, not a group converging on its answer
        role = self.needs[0]
        self._groups = (
            [f"{as_text(p)}\x00{r}" for p, r in zip(prompts, refs[role], strict=True)]
            if prompts and len(prompts) == len(completions)
            else None
        )
        self.monitors = self._monitors(completions, refs, keep, outputs, targets) if self.monitor else {}
        self.stall = self._stall(totals, keep, outputs, targets)
        return [
            floor_shape(s, self.tau) if text.strip() else 0.0
            for s, text in zip(totals, completions, strict=True)
        ]

    def _monitors(
        self,
        completions: list[str],
        refs: dict[str, list[str]],
        keep: list[int],
        outputs: torch.Tensor,
        targets: dict[str, torch.Tensor],
    ) -> dict[str, float]:
        import torch

        role = self.needs[0]  # the reference when the reward has one
        vectors = torch.zeros(len(completions), targets[role].shape[1] if targets[role].numel() else 1)
        if keep:
            vectors[torch.tensor(keep, dtype=torch.long)] = outputs
        contrast = self.spec.contrast
        k = contrast.k if contrast is not None and contrast.k is not None else MONITOR_K
        return monitor_values(vectors, targets[role], refs[role], completions, k, self._groups)

    def _stall(
        self, totals: list[float], keep: list[int], outputs: torch.Tensor, targets: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        """The share of non-empty completions at or below tau and, under contrast, whether s'
        reorders each prompt's completions against plain cosine (rewards/stall.py); without
        contrast the two are the same score, so there is no reordering to log."""
        import torch

        scores = [totals[i] for i in keep]
        floored = floored_share(scores, self.tau) if self.tau is not None else None
        values = {f"{PREFIX}floored/{self.name}": floored} if floored is not None else {}
        if self.spec.contrast is None or self._groups is None or not keep:
            return values
        rows = torch.tensor(keep, dtype=torch.long)
        plain = mean_cosine(outputs, [targets[role][rows] for role in self.needs])
        return {**values, **contrast_stall(self.name, plain, scores, [self._groups[i] for i in keep])}

    def extra_metrics(self) -> dict[str, float]:
        return {**(self.monitors if self.monitor else {}), **self.stall}
