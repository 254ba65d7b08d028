"""The audit's constant-output attack: which one sentence would a collapsing policy settle on?

A policy that collapses to one output drifts to a sentence that scores well against every
reference: a hub. Without an oracle the best guess at it is the reference most similar on average
to all the other references, under the reward's own encoder (its first semantic term, plain
cosine, so the plain and the corrected reward face the same sentence). A reward with no semantic
term is compared by surface overlap instead (unigram F1 on the metric tokens), the closest
analogue for an overlap reward.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import torch

from semrl.rewards.compose import ComposedReward
from semrl.text.tokenize import guess_lang, metric_tokenizer

CONSTANT_POOL = 512  # references compared (a seeded sample beyond): the choice costs O(pool^2)


def _unigram_f1(a: Counter[str], b: Counter[str]) -> float:
    common = sum((a & b).values())
    total = sum(a.values()) + sum(b.values())
    return 2.0 * common / total if total else 0.0


def _overlap_means(texts: list[str], lang: str | None) -> list[float]:
    tokenize = metric_tokenizer(lang or guess_lang(texts[0]))
    bags = [Counter(tokenize(text)) for text in texts]
    return [
        sum(_unigram_f1(bag, other) for j, other in enumerate(bags) if j != i) / (len(bags) - 1)
        for i, bag in enumerate(bags)
    ]


def choose_constant(
    rows: list[dict[str, Any]], reward: ComposedReward, lang: str | None, seed: int = 0
) -> tuple[str, str] | tuple[None, str]:
    """(the constant text, how it was chosen), or (None, why not) when the rows have fewer than two
    distinct references (a constant is then the copy). Ties go to the first in sorted order."""
    distinct = sorted({row["reference"] for row in rows if row["reference"].strip()})
    if len(distinct) < 2:
        return None, "fewer than two distinct references: a constant would be the copy"
    pool = (
        distinct
        if len(distinct) <= CONSTANT_POOL
        else sorted(random.Random(seed).sample(distinct, CONSTANT_POOL))
    )
    semantic = reward.semantic_components()
    if semantic:
        vectors = semantic[0].encoder.embed(pool)
        sims = vectors @ vectors.T
        means = ((sims.sum(dim=1) - sims.diagonal()) / (len(pool) - 1)).tolist()
        how = f"highest mean cosine to the other references under {semantic[0].name!r}'s encoder"
    else:
        means = _overlap_means(pool, lang)
        how = "highest mean unigram F1 with the other references (the reward has no semantic term)"
    best = int(torch.tensor(means).argmax())  # argmax returns the first of equal maxima
    return pool[best], how
