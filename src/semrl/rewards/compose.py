"""Composition: a weighted sum of components, optionally behind a multiplicative gate.

Without a gate:  R = sum_i w_i * c_i            (paper: 1.5 * semantic + 1.0 * language)
With a gate g:   R = g * max(sum_i w_i * c_i, 0) (sibling paper: language gate x max(score, 0))

The composed reward is itself a TRL reward function. Each call logs every component's batch
mean (and the gate's) through `log_metric`, so a training log shows which term moved, and each
completion's component values through `log_extra` (columns of TRL's completions sample).

TRL's `multi_objective_aggregation: normalize_then_sum` normalises each reward function within its
group before the weighted sum; it needs the terms as separate functions (`separate_functions`).
Either way the first semantic term's monitors (`monitor/distinct`, `monitor/hub`,
`monitor/retrieval`) reach TRL's `log_metric` once per call, under those names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semrl.errors import UserError
from semrl.rewards.base import RewardComponent, completion_text, finite_or
from semrl.rewards.semantic import SemanticReward


@dataclass
class ScoredBatch:
    rewards: list[float]
    components: dict[str, list[float]]  # name -> values; the gate appears as "gate/<name>"


class ComposedReward:
    """sum_i w_i * component_i, optionally gated; the callable TRL's GRPOTrainer receives."""

    def __init__(
        self,
        components: Sequence[tuple[RewardComponent, float]],
        gate: RewardComponent | None = None,
        name: str = "semrl_reward",
    ):
        self.components = list(components)
        self.gate = gate
        self.__name__ = name

    @property
    def needs(self) -> tuple[str, ...]:
        roles = {role for component, _ in self.components for role in component.needs}
        if self.gate is not None:
            roles.update(self.gate.needs)
        return tuple(sorted(roles))

    def terms(self) -> list[RewardComponent]:
        """The components, then the gate."""
        return [component for component, _ in self.components] + (
            [self.gate] if self.gate is not None else []
        )

    def prepare(self, rows: list[dict[str, Any]], seed: int) -> None:
        """Give every term the stage's rows (records with the reward's columns) before scoring: the
        semantic contrast draws its bank from them with `seed`. A no-op for the other terms."""
        for term in self.terms():
            term.prepare(rows, seed)

    def semantic_components(self) -> list[SemanticReward]:
        return [term for term in self.terms() if isinstance(term, SemanticReward)]

    def require_numeric_tau(self, where: str) -> None:
        """Outside a GRPO stage nothing can resolve `tau: cold_start`: say so before any scoring."""
        for term in self.semantic_components():
            if term.tau is None:
                raise UserError(
                    f"{where}: reward {term.name!r}: tau: cold_start needs a GRPO stage (it is a quantile "
                    "of the cold-start model's scores); give a number here"
                )

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> ScoredBatch:
        texts = [completion_text(c) for c in completions]
        prompts = list(prompts)
        parts: dict[str, list[float]] = {}
        totals = [0.0] * len(texts)
        for component, weight in self.components:
            values = component.safe_score(prompts, texts, component.gather_roles(len(texts), kwargs))
            parts[component.name] = values
            totals = [t + weight * v for t, v in zip(totals, values, strict=True)]
        if self.gate is not None:
            gate = self.gate.safe_score(prompts, texts, self.gate.gather_roles(len(texts), kwargs))
            parts[f"gate/{self.gate.name}"] = gate
            totals = [g * max(t, 0.0) for g, t in zip(gate, totals, strict=True)]
        return ScoredBatch(finite_or(totals, 0.0), parts)

    def separate_functions(self) -> tuple[list[RewardComponent], list[float]]:
        """The terms as TRL reward functions and their weights (TRL's `reward_weights`): TRL then sums
        w_i * c_i itself, after normalising each c_i within its group under normalize_then_sum.
        A gate multiplies the sum, which no weighted sum of separate functions can express."""
        if self.gate is not None:
            raise UserError(
                f"rewards.gate ({self.gate.name}) multiplies the summed reward, so the terms cannot "
                "be normalised one by one: remove the gate or the normalize_then_sum aggregation"
            )
        return [component for component, _ in self.components], [weight for _, weight in self.components]

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        scored = self.score_batch(prompts, completions, **kwargs)
        log_extra: Callable[[str, list[float]], None] | None = kwargs.get("log_extra")
        if log_extra is not None:  # every process logs the same columns: TRL gathers them in order
            for name, values in scored.components.items():
                log_extra(name, values)
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        if log_metric is not None and scored.rewards:
            components = {c.name: c for c, _ in self.components}
            if self.gate is not None:
                components[f"gate/{self.gate.name}"] = self.gate
            for name, values in scored.components.items():
                log_metric(f"reward/{name}", components[name].logged_mean(values))
            for term in self.terms():
                for key, value in term.extra_metrics().items():
                    log_metric(key, value)
        return scored.rewards
