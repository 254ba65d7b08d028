"""The GRPO reward variants the sandbox compares, each a mechanism against reward gaming.

Every variant trains on 1.5 x semantic + 1.0 x language (the paper's composition) with the demo's
tau rule, at the same learning-rate multiples, and differs in one mechanism only:

- `paper`: the paper's plain cosine, no KL penalty (TRL's and semrl's default beta 0).
- `paper_kl`: the same reward, with GRPO's published KL penalty to the stage's starting model
  (beta 0.04, DeepSeekMath); Gao et al. (2022) found a KL penalty acts like early stopping against
  reward over-optimisation.
- `retrieval`: cosine plus the discriminative term (Luo et al. 2018): the output must also pick out
  its own reference among a bank of training references, which a hub cannot.
- `csls`: the hubness-corrected cosine (CSLS over a bank of training references).

The settings of each are fixed here and in configs/demo.yaml before any run reads a claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

VariantName = Literal["paper", "paper_kl", "retrieval", "csls"]
PAPER_KL_BETA = 0.04  # GRPO as published (DeepSeekMath, Shao et al. 2024)


@dataclass(frozen=True)
class Variant:
    name: str
    prefix: str  # arm names: prefix, prefix_x0.3, ...
    description: str
    contrast: dict[str, Any] | None = None  # the semantic term's contrast option
    grpo: dict[str, Any] = field(default_factory=dict)  # GRPO settings beside the learning rate


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("paper", "semantic_rl", "the paper's reward (plain cosine)"),
        Variant(
            "paper_kl",
            "semantic_kl_rl",
            f"the paper's reward with KL to the cold start (beta {PAPER_KL_BETA})",
            grpo={"beta": PAPER_KL_BETA},
        ),
        Variant(
            "retrieval",
            "retrieval_rl",
            "cosine plus the discriminative (retrieval) term",
            contrast={"mode": "retrieval", "bank": 512},
        ),
        Variant("csls", "corrected_rl", "the hubness-corrected cosine (CSLS)"),
    )
}


def variant_contrast(name: str, csls: dict[str, Any]) -> dict[str, Any] | None:
    """The contrast option of a variant's semantic term (`csls` takes the demo's `contrast:`)."""
    return dict(csls) if name == "csls" else VARIANTS[name].contrast


def rl_prefixes(names: Sequence[str]) -> dict[str, str]:
    """variant -> arm prefix, in the config's order."""
    return {name: VARIANTS[name].prefix for name in names}
