"""Whether an arm learned: reward trend from log_history, and weight movement between safetensors files."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from semrl.sandbox.learning import learning_status, reward_trend, weight_movement


def _log(rewards: list[float]) -> list[dict]:
    """A GRPO-like log_history: one entry per logged step, then the Trainer's summary entry."""
    entries = [
        {"step": 2 * (i + 1), "reward": r, "reward/oracle": r / 2, "kl": 0.01, "loss": 0.1}
        for i, r in enumerate(rewards)
    ]
    return entries + [{"step": 2 * len(rewards), "train_runtime": 12.0, "train_loss": 0.1}]


def test_rising_reward_learned():
    rewards = [0.1 + 0.01 * i + 0.005 * ((-1) ** i) for i in range(40)]
    trend = reward_trend(_log(rewards))
    assert trend["learned"] is True
    assert trend["n_first"] == trend["n_last"] == 8
    assert trend["first"] == pytest.approx(sum(rewards[:8]) / 8)
    assert trend["last"] == pytest.approx(sum(rewards[-8:]) / 8)
    assert trend["value"] == pytest.approx(trend["last"] - trend["first"])
    assert 0 < trend["ci95"][0] <= trend["value"] <= trend["ci95"][1]
    assert learning_status(trend)[0] == "learned"


def test_flat_reward_did_not_learn():
    rewards = [0.5 + 0.1 * ((-1) ** i) * ((i * 7) % 5) / 5 for i in range(30)]
    trend = reward_trend(_log(rewards))
    assert trend["learned"] is False
    assert trend["ci95"][0] <= 0 <= trend["ci95"][1]
    status, reason = learning_status(trend)
    assert status == "did not learn" and "does not exclude 0" in reason


def test_falling_reward_did_not_learn():
    trend = reward_trend(_log([1.0 - 0.02 * i for i in range(20)]))
    assert trend["learned"] is False and "below 0" in trend["reason"]


def test_too_short_is_unknown():
    trend = reward_trend(_log([0.1, 0.5, 0.9]))
    assert trend["learned"] is None and trend["ci95"] is None
    assert "only 3" in trend["reason"]
    assert learning_status(trend)[0] == "unknown"


def test_trend_orders_by_step_and_skips_missing_values():
    log = _log([0.0, 0.0, 1.0, 1.0])[::-1]  # out of order
    log.insert(1, {"step": 3, "reward": None})
    log.insert(2, {"step": 5, "reward": float("nan")})
    trend = reward_trend(log)
    assert (trend["first"], trend["last"], trend["n_first"]) == (0.0, 1.0, 2)


def test_trend_of_another_key_and_seed_reproducible():
    log = _log([0.1 * i for i in range(10)])
    trend = reward_trend(log, key="reward/oracle", seed=3)
    assert trend["key"] == "reward/oracle"
    assert trend["value"] == pytest.approx(0.4)  # windows of 2: 0.425 - 0.025
    assert trend == reward_trend(log, key="reward/oracle", seed=3)


def _save(folder, tensors: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))


def test_weight_movement_identical_is_zero(tmp_path):
    weights = {"a": torch.randn(3, 4), "b": torch.randn(5)}
    _save(tmp_path / "init", weights)
    _save(tmp_path / "final", {k: v.clone() for k, v in weights.items()})
    moved = weight_movement(tmp_path / "init", tmp_path / "final")
    assert moved == {"l2": 0.0, "relative": 0.0, "max_abs": 0.0, "tensors": 2}


def test_weight_movement_known_perturbation(tmp_path):
    init = {"a": torch.ones(2, 2), "b": torch.zeros(3), "only_init": torch.ones(1)}
    final = {
        "a": torch.ones(2, 2) + torch.tensor([[3.0, 0.0], [0.0, 0.0]]),
        "b": torch.tensor([0.0, -4.0, 0.0]),
        "only_final": torch.ones(1),
    }
    _save(tmp_path / "init", init)
    _save(tmp_path / "stage" / "final", final)
    moved = weight_movement(tmp_path / "init", tmp_path / "stage" / "final")
    assert moved["tensors"] == 2
    assert moved["l2"] == pytest.approx(5.0)  # sqrt(3^2 + 4^2)
    assert moved["relative"] == pytest.approx(5.0 / 2.0)  # ||init|| over shared tensors = sqrt(4)
    assert moved["max_abs"] == pytest.approx(4.0)


def test_weight_movement_sharded_and_bf16(tmp_path):
    import json

    init = tmp_path / "init"
    init.mkdir()
    save_file({"a": torch.zeros(2, dtype=torch.bfloat16)}, str(init / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(2, dtype=torch.bfloat16)}, str(init / "model-00002-of-00002.safetensors"))
    (init / "model.safetensors.index.json").write_text(
        json.dumps(
            {
                "metadata": {},
                "weight_map": {
                    "a": "model-00001-of-00002.safetensors",
                    "b": "model-00002-of-00002.safetensors",
                },
            }
        )
    )
    _save(
        tmp_path / "final",
        {
            "a": torch.tensor([1.0, 0.0], dtype=torch.bfloat16),
            "b": torch.tensor([0.0, 1.0], dtype=torch.bfloat16),
        },
    )
    moved = weight_movement(init, tmp_path / "final")
    assert moved["tensors"] == 2 and moved["l2"] == pytest.approx(math.sqrt(2))
    assert moved["relative"] is None  # init norm is zero


def test_weight_movement_nothing_shared_is_none(tmp_path):
    _save(tmp_path / "init", {"a": torch.ones(1)})
    _save(tmp_path / "final", {"lora_A": torch.ones(1)})
    assert weight_movement(tmp_path / "init", tmp_path / "final")["l2"] is None
    with pytest.raises(FileNotFoundError):
        weight_movement(tmp_path / "missing", tmp_path / "final")
