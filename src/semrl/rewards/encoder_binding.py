"""`encoder: run:encoder`: a reward (or the similarity metric) that uses the sentence encoder the
run trains first (the paper's CINO -> sentence-encoder step). The name is bound to the trained
folder once that stage is done; before, preflight and the memory estimate know what it means."""

from __future__ import annotations

from pathlib import Path

from semrl.experiment_config import ExperimentConfig
from semrl.rewards.config import RewardConfig
from semrl.rewards.spec import ComponentBase

RUN_ENCODER = "run:encoder"


def uses_run_encoder(exp: ExperimentConfig) -> bool:
    """Does any reward name `encoder: run:encoder` (the encoder this run trains first)?"""
    return any(
        getattr(spec, "encoder", None) == RUN_ENCODER
        for _, config in exp.reward_configs()
        for spec in config.specs()
    )


def bind_run_encoder(reward_config: RewardConfig, encoder_path: Path) -> RewardConfig:
    """The reward config with `run:encoder` replaced by the folder of the encoder this run trained."""

    def bind(spec: ComponentBase | None) -> ComponentBase | None:
        if spec is not None and getattr(spec, "encoder", None) == RUN_ENCODER:
            return spec.model_copy(update={"encoder": str(encoder_path)})
        return spec

    return reward_config.model_copy(
        update={"rewards": [bind(s) for s in reward_config.rewards], "gate": bind(reward_config.gate)}
    )


def run_encoder_folder(run_root: Path) -> Path:
    """Where a run keeps the encoder it trained."""
    return Path(run_root) / "encoder" / "final"


def bind_eval_encoder(name: str | None, run_root: Path) -> str | None:
    """eval.encoder with `run:encoder` resolved to the run's trained encoder."""
    return str(run_encoder_folder(run_root)) if name == RUN_ENCODER else name
