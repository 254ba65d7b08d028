"""The sandbox settings (`configs/demo.yaml`): the world, the base model, the encoder, the arms,
and the `--quick` reductions used in CI."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field

from semrl.api import StrictModel
from semrl.sandbox.pretrain import BaseModelSpec
from semrl.sandbox.variants import VariantName
from semrl.sandbox.world import WorldSpec


class QuickSpec(StrictModel):
    base_steps: int = 150
    parallel_train: int = 120
    test: int = 16
    dev: int = 16
    cold_start: int = 40
    grpo_steps: int = 8
    encoder_pairs: int = 300
    pretrain_scale: float = Field(0.2, gt=0, le=1)


# The stage settings of the demo (configs/demo.yaml writes the same; a test keeps them equal). A demo
# config's `sft:` / `grpo:` replaces the dict, so the experiment reads these under it: DemoConfig.stage.
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    # SFT: the paper's 2 epochs (cold start and strong SFT alike), at the tiny model's learning rate
    "sft": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 16},
    # GRPO: the paper's group size 8. Learning rate: with Adam each step moves a weight by about the
    # learning rate, so lr x steps is the room a stage has to move; x1 gives GRPO's 120 steps the
    # room the cold start had (1e-3 x 13 steps ~ 1e-4 x 120). The other multiples span 1.5 decades.
    "grpo": {
        "max_steps": 120,
        "learning_rate": 1e-4,
        "num_generations": 8,
        "prompts_per_step": 4,
        "max_completion_length": 32,
    },
}


# the paper's reward and the recommended one (docs/concepts/rewards.md): what fits the demo's time budget
DEMO_VARIANTS: tuple[VariantName, ...] = ("paper", "paper_kl")


class DemoConfig(StrictModel):
    seed: int = 0
    world: WorldSpec = Field(default_factory=WorldSpec)
    base: BaseModelSpec = Field(default_factory=BaseModelSpec)
    encoder: dict[str, Any] = Field(
        default_factory=lambda: {"epochs": 4, "learning_rate": 1e-3, "batch_size": 64}
    )
    cold_start: int = 100
    sft: dict[str, Any] = Field(default_factory=lambda: dict(STAGE_DEFAULTS["sft"]))
    grpo: dict[str, Any] = Field(default_factory=lambda: dict(STAGE_DEFAULTS["grpo"]))
    learning_rates: list[float] = Field(
        default_factory=lambda: [0.3, 1.0, 3.0, 10.0],
        min_length=1,
        description="multiples of the SFT and GRPO learning rates, fixed in advance "
        "(C2 compares the methods over 1.5 decades)",
    )
    variants: list[VariantName] = Field(
        default_factory=lambda: list(DEMO_VARIANTS),
        min_length=1,
        description="the GRPO reward variants trained at every learning rate (sandbox/variants.py): "
        "paper, paper_kl (beta 0.04), retrieval (cosine + discriminative term), csls; the demo runs the "
        "paper's and the recommended one (paper_kl) within its time budget, "
        "configs/studies/mechanisms.yaml all four",
    )
    # tau of every variant: the paper's floor, the cold start's median similarity ("the minimal adequacy
    # level of the cold start"; tau 0 let any generic output earn reward)
    tau: Any = Field(
        "cold_start",
        description="tau of every semantic reward in the demo: a number, cold_start, "
        "or {from: cold_start, quantile: q}",
    )
    contrast: dict[str, Any] = Field(
        default_factory=lambda: {"bank": 512, "k": 10, "mode": "csls"},
        description="the csls variant's hubness correction (CSLS over a bank of training references)",
    )
    ceiling_epochs: float = Field(
        12, gt=0, description="the ceiling arm: SFT to convergence on unbiased data"
    )
    curve_every: int | None = 20
    transfer_k: int = 40
    rm: dict[str, Any] = Field(
        default_factory=lambda: {"epochs": 20, "learning_rate": 1e-3, "batch_size": 16}
    )
    rm_mt_error: float = Field(
        0.1, ge=0.0, le=1.0, description="share of machine-translated L pairs with a wrong concept"
    )
    quick: QuickSpec = Field(default_factory=QuickSpec)

    def stage(self, name: str) -> dict[str, Any]:
        """The `sft` or `grpo` settings the experiment uses: the defaults under this config's own."""
        return {**STAGE_DEFAULTS[name], **getattr(self, name)}

    def quickened(self) -> DemoConfig:
        """The same pipeline with small sizes and few steps (for CI and a first look)."""
        q = self.quick
        p = self.world.pretrain
        world = self.world.model_copy(
            update={
                "parallel": self.world.parallel.model_copy(
                    update={"train": q.parallel_train, "test": q.test, "dev": q.dev}
                ),
                "headline_train": q.parallel_train,
                "headline_test": q.test,
                "encoder_pairs": q.encoder_pairs,
                "preference_pairs": 60,
                "general_test": self.world.general_test.model_copy(
                    update={"qa": q.test, "copying": q.test, "text": q.test}
                ),
                "pretrain": p.model_copy(
                    update={
                        k: max(1, int(getattr(p, k) * q.pretrain_scale))
                        for k in (
                            "h_sentences",
                            "l_sentences",
                            "qa",
                            "fact_repeats",
                            "copying",
                            "aligned",
                            "code_switched",
                        )
                    }
                ),
            }
        )
        return self.model_copy(
            update={
                "world": world,
                "base": self.base.model_copy(update={"steps": q.base_steps}),
                "cold_start": q.cold_start,
                "grpo": {**self.grpo, "max_steps": q.grpo_steps},
                "sft": {**self.sft, "epochs": 1},
                "learning_rates": [1.0],
                "curve_every": None,
                "ceiling_epochs": 1,
                "transfer_k": min(self.transfer_k, 16),
                "rm": {**self.rm, "epochs": 1},
                "encoder": {**self.encoder, "epochs": 1},
            }
        )


def spec_hash(*parts: Any) -> str:
    """Cache key of what a cached artefact depends on."""
    blob = json.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in parts], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
