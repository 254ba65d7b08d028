"""What a training stage needs from the experiment besides its own spec (SFTSpec, GRPOSpec, ...):
a small typed object, so a study or the sandbox trains a stage without faking an experiment."""

from __future__ import annotations

from dataclasses import dataclass

from semrl.experiment_config import ExperimentConfig, LoraSpec


@dataclass(frozen=True)
class StageSettings:
    """What every training stage shares beside its own spec: seed, precision, reporting, LoRA."""

    seed: int
    report_to: str = "none"
    dtype: str = "auto"
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    lora: LoraSpec | None = None
    save_every: int | None = None  # checkpoint every N steps and keep them all (trade-off curves)
    temperature: float = 0.8  # GRPO sampling when its spec leaves them unset (the experiment's decoding)
    top_p: float = 0.9
    top_k: int | None = None  # None: TRL's default (no top-k filter)

    @classmethod
    def from_experiment(cls, exp: ExperimentConfig) -> StageSettings:
        return cls(
            seed=exp.seed,
            report_to=exp.report_to,
            dtype=exp.model.dtype,
            trust_remote_code=exp.model.trust_remote_code,
            attn_implementation=exp.model.attn_implementation,
            lora=exp.model.lora,
            save_every=exp.eval.curve_every,
            temperature=exp.decoding.temperature,
            top_p=exp.decoding.top_p,
            top_k=exp.decoding.top_k,
        )
