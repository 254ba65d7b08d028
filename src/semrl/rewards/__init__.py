"""Reward library: TRL-compatible reward callables and their composition.

from semrl.rewards import load_reward
config, reward = load_reward("reward.yaml")
GRPOTrainer(..., reward_funcs=[reward])
"""

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
