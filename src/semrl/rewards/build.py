"""From a RewardConfig (or its YAML) to a ComposedReward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.config_files import load_config
from semrl.rewards.base import RewardComponent
from semrl.rewards.compose import ComposedReward
from semrl.rewards.config import RewardConfig
from semrl.rewards.registry import reward_type


def build_component(spec: Any, columns: dict[str, str]) -> RewardComponent:
    """One component from its spec (rewards/registry.py); heavy models load lazily, on the first call."""
    return reward_type(spec.type).component(spec, columns)


def build_reward(config: RewardConfig) -> ComposedReward:
    """The reward a config describes, as one callable TRL's trainers take."""
    built = [build_component(spec, config.columns) for spec in config.specs()]
    components = list(zip(built, (spec.weight for spec in config.rewards), strict=False))
    gate = built[len(config.rewards)] if config.gate is not None else None
    reward = ComposedReward(components, gate)
    semantic = reward.semantic_components()
    if semantic:  # one term logs the monitors: every semantic term sees the same outputs
        semantic[0].monitor = True
    return reward


def load_reward(path: str | Path) -> tuple[RewardConfig, ComposedReward]:
    config = load_config(RewardConfig, path)
    return config, build_reward(config)
