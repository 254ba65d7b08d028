"""Hubness correction for the semantic reward: CSLS, margin and retrieval scoring against a bank of texts.

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

retrieval (after Luo et al. 2018, who add a retrieval term to the similarity reward, CIDEr +
lambda * retrieval) keeps the cosine and adds how surely y picks out its own r among the bank:

    p  = exp(cos(y, r) / T) / sum over x in {r} + bank of exp(cos(y, x) / T)
    s' = (cos(y, r) + w * p) / (1 + w)

with the same exclusions (bank entries equal to r or to y). A hub is about as close to every bank
text as to its own r, so its p is about 1 / (bank + 1); a true paraphrase's is near 1. Dividing by
1 + w is a constant rescaling of Luo's sum: s' stays at most 1, so tau and the shaping
(s' - tau) / (1 - tau) keep their meaning and R_sim stays in [0, 1].

The bank is drawn once from the stage's rows with its seed and embedded once, in one call, when
the stage starts (`SemanticReward.prepare`): a function of (rows, seed) alone, so a resumed stage
scores exactly as an uninterrupted one. Per call the correction costs at most two matrix products
against the bank (completions and the call's references), on vectors the reward has already.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from semrl.config_files import StrictModel

if TYPE_CHECKING:
    import torch


NEIGHBOURS = 10  # k of csls and margin when the config gives none
# T: the encoders semrl uses (the packaged MiniLM, and those train/encoder.py trains) were trained with
# sentence-transformers' MultipleNegativesRankingLoss at its scale 20, a softmax over in-batch
# negatives at temperature 1/20: the temperature at which their cosines were made to tell a text's
# own partner from the others. p is that same softmax, over the bank instead of the batch.
RETRIEVAL_TEMPERATURE = 0.05
# w: Luo et al. (CVPR 2018) sum the similarity reward and the retrieval reward with weight 1 in
# their released code (ruotianluo/DiscCaptioning: `run_att_d.sh 1`, "1 is the discriminability
# weight"; the released att_d1 model reproduces the paper). Here both terms live on the unit scale
# (cos <= 1, p in [0, 1]), so weight 1 gives each half of s': neither similarity nor discrimination
# dominates.
RETRIEVAL_WEIGHT = 1.0


class ContrastSpec(StrictModel):
    """Hubness correction (rewards/contrast.py): a sentence close to every reference ("hub")
    scores well under plain cosine. margin: s' = cos - knn_y; csls: s' = cos - (knn_y + knn_r) / 2;
    retrieval: s' = (cos + w * p) / (1 + w), p the softmax share (temperature T) of the output's own
    target among the bank. k belongs to csls and margin, temperature and weight to retrieval: a
    setting of the other mode is an error (it would be silently ignored)."""

    bank: int = Field(512, ge=1, description="texts drawn (seeded) from the stage's rows of each role")
    k: int | None = Field(
        None,
        ge=1,
        description=f"csls, margin: neighbours averaged (default {NEIGHBOURS}); capped at the eligible "
        "bank entries",
    )
    mode: Literal["csls", "margin", "retrieval"] = Field(
        "csls",
        description="csls: subtract both sides' neighbour means (halved); margin: the output's alone; "
        "retrieval: add how surely the output picks out its own target among the bank (Luo et al. 2018)",
    )
    temperature: float | None = Field(
        None,
        ge=0.001,
        description=f"retrieval: softmax temperature T (default {RETRIEVAL_TEMPERATURE}: the 1/scale of "
        "the MultipleNegativesRankingLoss (scale 20) these encoders were trained with); at 0.001 a cosine "
        "gap of 0.01 is already a factor e^10",
    )
    weight: float | None = Field(
        None,
        ge=0.0,
        description=f"retrieval: w, the retrieval term's weight beside the cosine (default "
        f"{RETRIEVAL_WEIGHT:g}: Luo et al.'s released setting; both terms are on the unit scale)",
    )

    @model_validator(mode="after")
    def _mode_settings(self) -> Self:
        own = ("temperature", "weight") if self.mode == "retrieval" else ("k",)
        wrong = [
            name
            for name in ("k", "temperature", "weight")
            if name not in own and getattr(self, name) is not None
        ]
        if wrong:
            modes = "csls or margin" if wrong[0] == "k" else "retrieval"
            raise ValueError(
                f"{' and '.join(wrong)} belong{'s' if len(wrong) == 1 else ''} to mode {modes}, "
                f"not to mode {self.mode}"
            )
        if self.mode == "retrieval":
            self.temperature = RETRIEVAL_TEMPERATURE if self.temperature is None else self.temperature
            self.weight = RETRIEVAL_WEIGHT if self.weight is None else self.weight
        elif self.k is None:
            self.k = NEIGHBOURS
        return self

    @model_serializer(mode="wrap")
    def _own_settings(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Only the mode's own settings: a spec dumps without the other mode's unset ones, so every
        dump validates again."""
        return {key: value for key, value in handler(self).items() if value is not None}

    @property
    def neighbours(self) -> int:
        """k for csls and margin (the validator fills the default in)."""
        return self.k if self.k is not None else NEIGHBOURS


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


def exclude(sims: torch.Tensor, bank: Bank, *texts: Sequence[str] | None) -> torch.Tensor:
    """Set sims[i, j] to -inf where bank text j is texts[i] (up to whitespace), for each given
    sequence of texts, in place; return how many entries each row lost (an entry counts once)."""
    import torch

    excluded = torch.zeros(sims.shape[0], dtype=torch.long)
    for column in texts:
        if column is None:
            continue
        cols = torch.tensor([bank.index.get(text_key(t), -1) for t in column], dtype=torch.long)
        rows = (
            ((cols >= 0) & (sims[torch.arange(len(cols)), cols.clamp(min=0)] != float("-inf")))
            .nonzero()
            .squeeze(1)
        )
        sims[rows, cols[rows]] = float("-inf")
        excluded[rows] += 1
    return excluded


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
    excluded = exclude(sims, bank, own, itself)
    width = min(k, size)
    top = sims.topk(width, dim=1).values  # sorted, largest first; excluded entries can only come last
    take = (size - excluded).clamp(max=width)
    kept = torch.arange(width).unsqueeze(0) < take.unsqueeze(1)
    sums = torch.where(kept, top, torch.zeros_like(top)).sum(dim=1)
    return torch.where(take > 0, sums / take.clamp(min=1), torch.zeros_like(sums))


def retrieval_probability(
    cosine: torch.Tensor,
    outputs: torch.Tensor,
    output_texts: Sequence[str],
    target_texts: Sequence[str],
    bank: Bank,
    temperature: float,
) -> torch.Tensor:
    """p per item: the softmax share, at `temperature`, of cos(y_i, r_i) among it and the cosines of
    y_i to the bank entries whose text is neither r_i nor y_i. One product against the bank; the
    log-sum-exp keeps it finite at small temperatures (cosines / 0.05 reach 20)."""
    import torch

    if outputs.shape[0] == 0:
        return torch.zeros(0)
    sims = (outputs @ bank.vectors.T).clamp(-1.0, 1.0)
    exclude(sims, bank, target_texts, output_texts)
    logits = torch.cat([cosine.unsqueeze(1), sims], dim=1) / temperature
    return (cosine / temperature - torch.logsumexp(logits, dim=1)).exp()


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

    if spec.mode == "retrieval":
        weight = RETRIEVAL_WEIGHT if spec.weight is None else spec.weight
        temperature = RETRIEVAL_TEMPERATURE if spec.temperature is None else spec.temperature
        p = retrieval_probability(cosine, outputs, output_texts, target_texts, bank, temperature)
        # the two coefficients in Python floats: finite for any finite weight, where weight * p may not be
        return cosine * (1.0 / (1.0 + weight)) + p * (weight / (1.0 + weight))
    knn_y = neighbour_means(outputs, target_texts, bank, spec.neighbours, output_texts)
    if spec.mode == "margin":
        return cosine - knn_y
    first: dict[str, int] = {}  # knn_r once per distinct reference of the call
    for i, text in enumerate(target_texts):
        first.setdefault(text, i)
    distinct = list(first)
    knn_r = neighbour_means(targets[[first[t] for t in distinct]], distinct, bank, spec.neighbours)
    per_text = dict(zip(distinct, knn_r.tolist(), strict=True))
    return cosine - (knn_y + torch.tensor([per_text[t] for t in target_texts])) / 2
