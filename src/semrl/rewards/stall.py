"""Why a GRPO reward stalls: within-group spread of each term, and whether a contrast reorders a group.

GRPO learns from differences inside a group (the completions of one prompt): a term that pays
every completion of a prompt alike gives zero advantage however high it is (GRRM, arXiv 2602.14028).
These pure functions measure that from values the trainer and the semantic term already hold
(no encoder call):

- `group_std`: per group, the sample standard deviation (Bessel, as TRL's `nanstd` for
  `reward_std` and the advantage's scale), averaged over the groups;
- `floored_share`: the share of a semantic term's scores at or below its floor tau (paid 0);
- `rank_disagreement`: per group, whether the hubness-corrected score s' orders the completions
  differently from plain cosine. A pair (i, j) is discordant when the two scores order it in
  strictly opposite directions, (cos_i - cos_j) * (s'_i - s'_j) < 0, with differences within
  `TIE` counted as ties (a tie in either score is never discordant). A group disagrees when it
  has at least one discordant pair.

The trainer logs them per generation batch as `stall/...` (train/stall.py for the terms' spread
and the advantages, rewards/semantic.py for the contrast's reordering).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PREFIX = "stall/"
TIE = 1e-6  # score differences this small are float noise (the same text scored in two batch slots)


def group_std(values: Sequence[float], group_size: int) -> float | None:
    """`keyed_std` over consecutive groups of `group_size` values (TRL's layout of a batch: each
    prompt's completions side by side)."""
    if group_size < 1 or len(values) % group_size:
        raise ValueError(f"{len(values)} values do not split into groups of {group_size}")
    return keyed_std(values, [range(s, s + group_size) for s in range(0, len(values), group_size)])


def keyed_std(values: Sequence[float], groups: Sequence[Sequence[int]]) -> float | None:
    """Mean over the groups (index lists) of their sample std, non-finite values left out; groups
    with fewer than two finite values are skipped (None when every group is)."""
    stds = []
    for group in groups:
        finite = [values[i] for i in group if math.isfinite(values[i])]
        if len(finite) < 2:
            continue
        mean = sum(finite) / len(finite)
        stds.append(math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)))
    return sum(stds) / len(stds) if stds else None


def groups_of(keys: Sequence[str]) -> list[list[int]]:
    """Indices per distinct key, in first-seen order (a group: the completions of one prompt)."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _order(a: float, b: float) -> int:
    return 0 if abs(a - b) <= TIE else (1 if a > b else -1)


def discordant_pairs(first: Sequence[float], second: Sequence[float]) -> tuple[int, int]:
    """(pairs that the two scores order in strictly opposite directions, all pairs)."""
    n = len(first)
    discordant = sum(
        _order(first[i], first[j]) * _order(second[i], second[j]) < 0
        for i in range(n)
        for j in range(i + 1, n)
    )
    return discordant, n * (n - 1) // 2


def rank_disagreement(
    plain: Sequence[float], corrected: Sequence[float], groups: Sequence[Sequence[int]]
) -> dict[str, float]:
    """Over the groups with at least two items: `rank_disagreement`, the share with at least one
    discordant pair between plain and corrected; `discordant_pairs`, the mean share of each group's
    pairs that are discordant. Empty when no group has two items."""
    disagree, shares = 0, []
    for group in groups:
        if len(group) < 2:
            continue
        bad, pairs = discordant_pairs([plain[i] for i in group], [corrected[i] for i in group])
        disagree += bad > 0
        shares.append(bad / pairs)
    if not shares:
        return {}
    return {"rank_disagreement": disagree / len(shares), "discordant_pairs": sum(shares) / len(shares)}


def mean_cosine(outputs: torch.Tensor, targets: Sequence[torch.Tensor]) -> list[float]:
    """Plain cosine of each unit output row with its matched unit target row, averaged over the
    targets (the semantic reward's s before any contrast)."""
    import torch

    cosines = torch.stack([(outputs * matched).sum(dim=1).clamp(-1.0, 1.0) for matched in targets])
    return cosines.mean(dim=0).tolist()


def batch_stall(
    terms: Mapping[str, Sequence[float]],
    total: Sequence[float],
    advantages: Sequence[float],
    group_size: int,
) -> dict[str, float]:
    """The `stall/*` metrics of one generation batch in TRL's layout (consecutive groups of
    `group_size`): `std/<term>` per term, `std_total` for the weighted sum TRL's advantages come
    from, and `advantage_abs`, the mean |advantage| over the batch's completions."""
    values: dict[str, float] = {}
    for key, scores in [*((f"std/{name}", v) for name, v in terms.items()), ("std_total", total)]:
        std = group_std(scores, group_size)
        if std is not None:
            values[PREFIX + key] = std
    finite = [abs(a) for a in advantages if math.isfinite(a)]
    if finite:
        values[PREFIX + "advantage_abs"] = sum(finite) / len(finite)
    return values


def floored_share(scores: Sequence[float], tau: float) -> float | None:
    """Share of the scores at or below the floor tau: the completions the shaping pays 0, which no
    advantage can tell apart (a high tau, or s' pushed below it, stalls the term)."""
    return sum(s <= tau for s in scores) / len(scores) if scores else None


def contrast_stall(
    name: str, plain: Sequence[float], corrected: Sequence[float], keys: Sequence[str]
) -> dict[str, float]:
    """A contrast term's `stall/*` metrics for one call: items i are the non-empty completions,
    keys[i] their prompt. rank_disagreement and discordant_pairs (see module doc), and the mean
    within-group std of the plain cosine and of s' (before tau's shaping), which shows whether
    the correction flattens the differences a group had under plain cosine."""
    groups = groups_of(keys)
    values = {
        f"{PREFIX}{key}/{name}": value for key, value in rank_disagreement(plain, corrected, groups).items()
    }
    for key, scores in (("std_cosine", plain), ("std_contrast", corrected)):
        std = keyed_std(scores, groups)
        if std is not None:
            values[f"{PREFIX}{key}/{name}"] = std
    return values
