"""What every reward component shares: the TRL calling convention and the no-NaN rule.

TRL calls a reward as `f(prompts=..., completions=..., **columns, trainer_state=..., log_metric=...)`,
with completions as strings or as message lists, and dataset columns as keyword lists. A
component turns that into plain strings, scores them, replaces any non-finite value by its
minimum, and reports its batch mean through `log_metric` when TRL passes one. Components are
plain classes, never `torch.nn.Module` (TRL would treat a Module as a classifier reward model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from semrl.notices import warn
from semrl.text.decoding import strip_broken_tail


def as_text(item: Any) -> str:
    """A completion or prompt as text: strings as they are, message lists as their contents."""
    if item is None:
        return ""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return as_text(item.get("content", ""))
    if isinstance(item, (list, tuple)):
        messages = [m for m in item if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"]
        chosen = assistant or messages or list(item)
        return "".join(as_text(m) for m in chosen)
    return str(item)


def strip_reasoning(text: str) -> str:
    """The answer part of a completion: Qwen3-style models open their turn with a (often empty)
    `<think>...</think>` block, and `<think>`/`</think>` are added tokens that are not special, so
    decoding keeps them; scored or evaluated as the answer they cost chrF/BLEU and the language
    share. Text after the last `</think>`; a `<think>` never closed (out of tokens) left no answer."""
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1].strip()
    if text.lstrip().startswith("<think>"):
        return ""
    return text


def completion_text(item: Any) -> str:
    """A completion as the text rewards score: its content without a reasoning block, and without
    the broken character a token limit can leave at its end (TRL decodes completions itself, so
    this is where every term, the composed reward's and TRL's separate functions alike, gets it)."""
    return strip_reasoning(strip_broken_tail(as_text(item)))


def finite_or(values: Sequence[float], fallback: float) -> list[float]:
    """Replace NaN/inf by `fallback` (the component's minimum): a reward never returns NaN."""
    return [float(v) if v is not None and math.isfinite(v) else fallback for v in values]


@dataclass(frozen=True)
class LoadedModel:
    """A model a reward term loads beside the policy: preflight checks it, the memory estimate sizes it."""

    kind: Literal["encoder", "classifier"]  # a sentence encoder, or a sequence-classification reward model
    name: str  # folder, hub id, or (encoder) 'default' / 'run:encoder'
    label: str  # how the memory estimate names it: "encoder", "RM"
    device: str | None = None
    trust_remote_code: bool = False


class RewardComponent:
    """One named term of a reward. Subclasses implement `score` over plain strings."""

    type: str = "component"
    needs: tuple[str, ...] = ()  # roles needed: "reference", "source"
    minimum: float = 0.0
    maximum: float = 1.0
    penalty: bool = False  # a penalty in [0, 1]: the reward config insists on a negative weight

    @classmethod
    def loads(cls, spec: Any) -> LoadedModel | None:
        """The model a component of this spec would load (none for most)."""
        return None

    def __init__(self, name: str, columns: dict[str, str] | None = None):
        self.name = name
        self.__name__ = name  # TRL names reward functions by __name__
        self.columns = columns or {"reference": "reference", "source": "source"}

    def score(self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        """Scores for plain-text completions; prompts arrive as given (strings or message lists)."""
        raise NotImplementedError

    def prepare(self, rows: list[dict[str, Any]], seed: int) -> None:
        """Build what the component draws from the stage's rows (the semantic contrast bank); most
        components need nothing."""

    def extra_metrics(self) -> dict[str, float]:
        """Scalars of the last call to log beside `reward/<name>` (the semantic monitors)."""
        return {}

    def gather_roles(self, batch_size: int, kwargs: dict[str, Any]) -> dict[str, list[str]]:
        roles: dict[str, list[str]] = {}
        for role in self.needs:
            column = self.columns.get(role, role)
            if column not in kwargs:
                raise KeyError(
                    f"reward {self.name!r} needs the {role} column {column!r}, but the batch has only "
                    f"{sorted(k for k in kwargs if k not in ('trainer_state', 'log_metric', 'log_extra'))}"
                )
            roles[role] = [as_text(v) for v in kwargs[column]]
            if len(roles[role]) != batch_size:
                raise ValueError(
                    f"column {column!r} has {len(roles[role])} values for {batch_size} completions"
                )
        return roles

    def safe_score(
        self, prompts: list[Any], completions: list[str], refs: dict[str, list[str]]
    ) -> list[float]:
        """Scores with NaN/inf replaced by the minimum, so one bad value cannot poison a policy
        update; `nonfinite` keeps the count so training logs it as NaN and the guard stops the stage."""
        raw = self.score(prompts, completions, refs)
        values = finite_or(raw, self.minimum)
        self.nonfinite = sum(1 for v in raw if v is None or not math.isfinite(v))
        if self.nonfinite:
            warn(
                f"reward {self.name}: non-finite scores replaced by the component's minimum ({self.minimum})"
            )
        return values

    def logged_mean(self, values: list[float]) -> float:
        """The batch mean for `reward/<name>`, or NaN when this batch had non-finite scores."""
        return float("nan") if getattr(self, "nonfinite", 0) else sum(values) / len(values)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        texts = [completion_text(c) for c in completions]
        values = self.safe_score(list(prompts), texts, self.gather_roles(len(texts), kwargs))
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        if log_metric is not None and values:
            log_metric(f"reward/{self.name}", self.logged_mean(values))
            for key, value in self.extra_metrics().items():
                log_metric(key, value)
        return values

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
