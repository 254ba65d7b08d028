"""Reward library: TRL-compatible reward callables and their composition.

from semrl.rewards import load_reward
config, reward = load_reward("reward.yaml")
GRPOTrainer(..., reward_funcs=[reward])

The names below load on first use (PEP 562): `semrl.rewards.config` is read by every command,
and importing the components here would make every config check wait for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semrl.rewards.base import RewardComponent, as_text
    from semrl.rewards.build import build_component, build_reward, load_reward
    from semrl.rewards.compose import ComposedReward, ScoredBatch
    from semrl.rewards.config import RewardConfig

__all__ = [
    "ComposedReward",
    "RewardComponent",
    "RewardConfig",
    "ScoredBatch",
    "as_text",
    "build_component",
    "build_reward",
    "load_reward",
]


def __getattr__(name: str) -> Any:
    if name in ("RewardComponent", "as_text"):
        from semrl.rewards import base

        return getattr(base, name)
    if name in ("build_component", "build_reward", "load_reward"):
        from semrl.rewards import build

        return getattr(build, name)
    if name in ("ComposedReward", "ScoredBatch"):
        from semrl.rewards import compose

        return getattr(compose, name)
    if name == "RewardConfig":
        from semrl.rewards import config

        return config.RewardConfig
    raise AttributeError(f"module 'semrl.rewards' has no attribute {name!r}")
