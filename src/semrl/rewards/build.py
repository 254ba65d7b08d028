"""From a RewardConfig (or its YAML) to a ComposedReward."""

from __future__ import annotations

from pathlib import Path

from semrl.config_files import load_config
from semrl.rewards.base import RewardComponent
from semrl.rewards.compose import ComposedReward
from semrl.rewards.config import RewardConfig
from semrl.rewards.language import LanguageReward
from semrl.rewards.overlap import OverlapReward
from semrl.rewards.penalties import LengthPenalty, RepetitionPenalty
from semrl.rewards.reward_model import RewardModelReward
from semrl.rewards.semantic import SemanticReward


def build_component(spec, columns: dict[str, str]) -> RewardComponent:
    """One component from its spec; heavy models load lazily, on the first call."""
    if spec.type == "semantic":
        return SemanticReward(spec, columns)
    if spec.type == "language":
        return LanguageReward(spec, columns)
    if spec.type in ("bleu", "chrf", "rougeL"):
        return OverlapReward(spec, columns)
    if spec.type == "length":
        return LengthPenalty(spec, columns)
    if spec.type == "repetition":
        return RepetitionPenalty(spec, columns)
    if spec.type == "reward_model":
        return RewardModelReward(spec, columns)
    raise ValueError(f"unknown reward type {spec.type!r}")


def build_reward(config: RewardConfig) -> ComposedReward:
    built = [build_component(spec, config.columns) for spec in config.specs()]
    components = list(zip(built, (spec.weight for spec in config.rewards)))
    gate = built[len(config.rewards)] if config.gate is not None else None
    reward = ComposedReward(components, gate)
    semantic = reward.semantic_components()
    if semantic:  # one term logs the monitors: every semantic term sees the same outputs
        semantic[0].monitor = True
    return reward


def load_reward(path: str | Path) -> tuple[RewardConfig, ComposedReward]:
    config = load_config(RewardConfig, path)
    return config, build_reward(config)
