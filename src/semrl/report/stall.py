"""The report's stall diagnosis: per GRPO stage (or arm), from its metrics.json, how much each
reward term varied within a group, how often a group had none (TRL's frac_reward_zero_std), how
large the advantages were, and how often a contrast reordered a group against plain cosine.

A reward that does not learn shows here as small within-group stds and mean |advantage| near 0
(nothing to learn from), or, under a contrast, as s' spreading a group less than plain cosine did.
The run report shows it per GRPO stage (report/tables.py); the sandbox calls `stall_table` with
its arms' metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semrl.rewards.stall import PREFIX

Table = tuple[str, list[str], list[list[str]]]
TITLE = (
    "Stall diagnosis (GRPO; mean over the stage's logged steps, first → last): within-group std of "
    "each reward term and of the total, share of groups with zero reward std, mean absolute "
    "advantage, share of a semantic term's scores at or below tau (paid 0), and for a contrast term "
    "the share of groups it ranks differently from plain cosine (at least one pair in strictly "
    "opposite order; / mean share of such pairs) and the within-group std of plain cosine → of s'"
)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(entry: Any) -> str:
    """mean (first → last) of a summarised key, '–' when it was never logged."""
    if not isinstance(entry, dict) or not _number(entry.get("mean")):
        return "–"
    ends = [entry.get("first"), entry.get("last")]
    tail = f" ({ends[0]:.3f} → {ends[1]:.3f})" if all(_number(v) for v in ends) else ""
    return f"{entry['mean']:.3f}{tail}"


def _mean(entry: Any) -> str:
    return f"{entry['mean']:.3f}" if isinstance(entry, dict) and _number(entry.get("mean")) else "–"


def _names(stages: Mapping[str, dict[str, Any]], kind: str) -> list[str]:
    """Term names logged under stall/<kind>/ by any stage, in first-seen order."""
    prefix = f"{PREFIX}{kind}/"
    return list(dict.fromkeys(k[len(prefix) :] for m in stages.values() for k in m if k.startswith(prefix)))


def _terms(stages: Mapping[str, dict[str, Any]]) -> list[str]:
    """The terms with a stall/std/<term>, in the reward's order (its reward/<name> keys), the rest
    (the gate) after."""
    order = list(
        dict.fromkeys(k[len("reward/") :] for m in stages.values() for k in m if k.startswith("reward/"))
    )
    return sorted(_names(stages, "std"), key=lambda t: order.index(t) if t in order else len(order))


def stall_rows(stages: Mapping[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The header and one row per stage (name -> its metrics.json) that logged any stall/* key."""
    stages = {name: m for name, m in stages.items() if any(k.startswith(PREFIX) for k in m)}
    terms, floored = _terms(stages), _names(stages, "floored")
    contrast = _names(stages, "rank_disagreement")
    header = [
        "stage",
        *(f"std {t}" for t in terms),
        "std total",
        "zero-std groups",
        "mean abs advantage",
        *(f"≤ tau {t}" for t in floored),
        *(f"reordered by {t} (groups / pairs)" for t in contrast),
        *(f"std cosine → s' ({t})" for t in contrast),
    ]
    rows = []
    for name, m in stages.items():
        rows.append(
            [
                name,
                *(_cell(m.get(f"{PREFIX}std/{t}")) for t in terms),
                _cell(m.get(f"{PREFIX}std_total")),
                _cell(m.get("frac_reward_zero_std")),
                _cell(m.get(f"{PREFIX}advantage_abs")),
                *(_cell(m.get(f"{PREFIX}floored/{t}")) for t in floored),
                *(
                    f"{_cell(m.get(f'{PREFIX}rank_disagreement/{t}'))} / "
                    f"{_mean(m.get(f'{PREFIX}discordant_pairs/{t}'))}"
                    for t in contrast
                ),
                *(
                    f"{_mean(m.get(f'{PREFIX}std_cosine/{t}'))} → {_mean(m.get(f'{PREFIX}std_contrast/{t}'))}"
                    for t in contrast
                ),
            ]
        )
    return header, rows


def stall_table(stages: Mapping[str, dict[str, Any]], first: str = "stage") -> Table | None:
    """The table for stages or arms (name -> metrics.json of its GRPO stage); `first` names the
    first column ("arm" in the sandbox). None when no stage logged a stall/* key."""
    header, rows = stall_rows(stages)
    if not rows:
        return None
    return TITLE, [first, *header[1:]], rows


def run_stall_table(results: dict[str, Any]) -> Table | None:
    """The run report's: one row per GRPO stage of results["training"]."""
    return stall_table({key: stage.get("metrics", {}) for key, stage in results.get("training", {}).items()})
