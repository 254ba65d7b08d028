"""Hubness correction for the semantic reward: CSLS and margin scoring against a bank of texts.

In an embedding space some sentences ("hubs") lie close to many others, so under plain cosine a
generic sentence scores well against every reference, and GRPO finds it. The field's remedies
subtract a sentence's mean similarity to its k nearest neighbours in a bank of other texts:

    margin (Artetxe & Schwenk 2019):     s' = cos(y, r) - knn_y
    csls   (Conneau et al. 2018, / 2):   s' = cos(y, r) - (knn_y + knn_r) / 2

knn_x is the mean of the top-k cos(x, b) over the bank entries b whose text differs from the
item's own reference r (r and its duplicates are left out, so a true translation is not charged
for being close to its own reference) and, for knn_y, from y itself (a text is not its own
neighbour: an output that happens to be a bank text, e.g. another row's reference, is judged by
where it lies, not by whether the draw put it in the bank); k is capped at the eligible entries
(no eligible entry: knn 0, no correction). Under GRPO a shift that is the same for a whole group cancels
in the advantage, so knn_y (which depends on the output) is what changes what is learned; knn_r keeps
scores comparable across prompts, which matters for tau (applied to s').

The bank is drawn once from the stage's rows with its seed and embedded once, in one call, when
the stage starts (`SemanticReward.prepare`): a function of (rows, seed) alone, so a resumed stage
scores exactly as an uninterrupted one. Per call the correction costs two matrix products
against the bank (completions and the call's references), on vectors the reward has already.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from semrl.config_files import StrictModel

if TYPE_CHECKING:
    import torch


class ContrastSpec(StrictModel):
    """Hubness correction (rewards/contrast.py): a sentence close to every reference ("hub")
    scores well under plain cosine; subtracting its mean similarity to its k nearest bank entries
    takes that away. margin: s' = cos - knn_y; csls: s' = cos - (knn_y + knn_r) / 2."""

    bank: int = Field(512, ge=1, description="texts drawn (seeded) from the stage's rows of each role")
    k: int = Field(10, ge=1, description="neighbours averaged; capped at the eligible bank entries")
    mode: Literal["csls", "margin"] = Field(
        "csls", description="csls: subtract both sides' neighbour means (halved); margin: the output's alone"
    )


def text_key(text: str) -> str:
    """What counts as the same text for the bank: equal up to whitespace (a trailing space or a
    doubled one must not turn a reference's own copy into its nearest neighbour)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Bank:
    """Texts drawn from one role's column and their unit vectors, row i for texts[i]."""

    texts: list[str]
    vectors: torch.Tensor  # (n, dim) float32, unit rows
    index: dict[str, int]  # text_key -> row


def draw_bank(texts: Iterable[str], size: int, seed: int) -> list[str]:
    """`size` distinct non-blank texts drawn with random.Random(seed), from the sorted distinct
    texts (sorted, so the draw does not depend on the rows' order)."""
    distinct = sorted({text_key(t) for t in texts if t.strip()})
    return random.Random(seed).sample(distinct, min(size, len(distinct)))


def build_bank(texts: Sequence[str], embed: Callable[[list[str]], torch.Tensor]) -> Bank:
    """The bank's vectors from one `embed` call over the drawn texts (fixed list, fixed batches)."""
    texts = list(texts)
    vectors = embed(texts).float()
    return Bank(texts, vectors, {text_key(t): i for i, t in enumerate(texts)})


def neighbour_means(
    vectors: torch.Tensor, own: Sequence[str], bank: Bank, k: int, itself: Sequence[str] | None = None
) -> torch.Tensor:
    """knn of each row: the mean of its top-k cosines to the bank entries whose text is neither
    own[i] nor (when given) itself[i]."""
    import torch

    if vectors.shape[0] == 0:
        return torch.zeros(0)
    sims = (vectors @ bank.vectors.T).clamp(-1.0, 1.0)
    size = sims.shape[1]
    excluded = torch.zeros(sims.shape[0], dtype=torch.long)
    for texts in (own, itself):
        if texts is None:
            continue
        cols = torch.tensor([bank.index.get(text_key(t), -1) for t in texts], dtype=torch.long)
        rows = (
            ((cols >= 0) & (sims[torch.arange(len(cols)), cols.clamp(min=0)] != float("-inf")))
            .nonzero()
            .squeeze(1)
        )
        sims[rows, cols[rows]] = float("-inf")
        excluded[rows] += 1
    width = min(k, size)
    top = sims.topk(width, dim=1).values  # sorted, largest first; excluded entries can only come last
    take = (size - excluded).clamp(max=width)
    kept = torch.arange(width).unsqueeze(0) < take.unsqueeze(1)
    sums = torch.where(kept, top, torch.zeros_like(top)).sum(dim=1)
    return torch.where(take > 0, sums / take.clamp(min=1), torch.zeros_like(sums))


def corrected(
    cosine: torch.Tensor,
    outputs: torch.Tensor,
    output_texts: Sequence[str],
    targets: torch.Tensor,
    target_texts: Sequence[str],
    bank: Bank,
    spec: ContrastSpec,
) -> torch.Tensor:
    """s' per item from cos(y_i, r_i), the outputs' and (csls) the targets' vectors."""
    import torch

    knn_y = neighbour_means(outputs, target_texts, bank, spec.k, output_texts)
    if spec.mode == "margin":
        return cosine - knn_y
    first: dict[str, int] = {}  # knn_r once per distinct reference of the call
    for i, text in enumerate(target_texts):
        first.setdefault(text, i)
    distinct = list(first)
    knn_r = neighbour_means(targets[[first[t] for t in distinct]], distinct, bank, spec.k)
    per_text = dict(zip(distinct, knn_r.tolist(), strict=True))
    return cosine - (knn_y + torch.tensor([per_text[t] for t in target_texts])) / 2
