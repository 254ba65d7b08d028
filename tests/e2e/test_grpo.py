"""The composed reward inside TRL's real GRPOTrainer, on a tiny model the project builds."""

from __future__ import annotations

import math

from conftest import sample_lines


def test_grpo_trains_with_semantic_and_language_reward(tiny_lm, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from semrl.rewards import RewardConfig, build_reward

    reward = build_reward(
        RewardConfig.model_validate(
            {
                "rewards": [
                    {
                        "type": "semantic",
                        "weight": 1.5,
                        "encoder": "default",
                        "against": "reference",
                        "tau": 0.0,
                    },
                    {"type": "language", "weight": 1.0, "lang": "bo"},
                ],
                "columns": {"reference": "target"},
            }
        )
    )
    bo, zh = sample_lines("bo.txt"), sample_lines("zh.txt")
    dataset = Dataset.from_dict({"prompt": [f"{z} =>" for z in zh], "target": bo})
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=12,
        max_steps=3,
        logging_steps=1,
        learning_rate=1e-3,
        bf16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(model=str(tiny_lm), reward_funcs=[reward], args=args, train_dataset=dataset)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(steps) == 3
    for entry in steps:
        assert {"reward/semantic", "reward/language"} <= set(entry)
        assert all(math.isfinite(entry[k]) for k in ("reward", "reward/semantic", "reward/language"))
        assert 0.0 <= entry["reward/language"] <= 1.0
    changed = any(not (p.detach() == before[n]).all() for n, p in trainer.model.named_parameters())
    assert changed, "GRPO must update the policy"
