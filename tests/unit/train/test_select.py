"""grpo.select's pure parts: the held-out dev split, the choice and its tie rule, and which encoder
counts as the reward's own."""

from __future__ import annotations

import pytest

from semrl.encoders.loading import default_encoder_path
from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig, SelectSpec
from semrl.train.select import _same_encoder, check_reward_metric, choose, split_dev

ROWS = [{"source": f"s{i}", "reference": f"r{i}"} for i in range(10)]


def experiment(seed: int = 0, **grpo) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "x",
            "seed": seed,
            "model": {"tiny": {}},
            "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
            "data": {"train": "train.jsonl"},
            "rewards": {"rewards": [{"type": "semantic", "encoder": "default"}]},
            "grpo": grpo,
        }
    )


def test_dev_rows_are_held_out_by_the_seed_and_the_rest_keep_their_order():
    exp = experiment(seed=3)
    train, dev = split_dev(exp, SelectSpec(dev=3), ROWS)
    assert len(dev) == 3 and len(train) == 7
    assert sorted(train + dev, key=lambda r: int(r["source"][1:])) == ROWS
    assert train == [row for row in ROWS if row not in dev]  # the stage's order, minus the dev rows
    assert split_dev(exp, SelectSpec(dev=3), ROWS) == (train, dev)
    assert split_dev(experiment(seed=4), SelectSpec(dev=3), ROWS)[1] != dev
    with pytest.raises(UserError, match="10 rows held out of the stage's 10 leave none to train on"):
        split_dev(exp, SelectSpec(dev=10), ROWS)


def test_the_highest_score_wins_and_a_tie_keeps_the_earliest_step():
    scored = [{"step": 5, "score": 30.0}, {"step": 10, "score": 42.5}, {"step": 15, "score": 42.5}]
    chosen, reason = choose(scored, "chrf")
    assert chosen["step"] == 10 and "tied at steps 10, 15" in reason and "42.5" in reason
    chosen, reason = choose([{"step": 5, "score": 1.0}, {"step": 10, "score": None}], "lang")
    assert chosen["step"] == 5 and "of 1 candidates" in reason and "tied" not in reason


def test_the_rewards_own_encoder_is_refused_under_any_of_its_names(tmp_path):
    assert _same_encoder("default", default_encoder_path())
    assert _same_encoder("run:encoder", "run:encoder") and not _same_encoder("run:encoder", "default")
    exp = experiment()
    with pytest.raises(UserError, match="games that reward best"):
        check_reward_metric(exp, SelectSpec(dev=2, metric="sim"), exp.rewards, "grpo.select")
    check_reward_metric(exp, SelectSpec(dev=2, metric="sim", allow_reward_metric=True), exp.rewards, "w")
    check_reward_metric(exp, SelectSpec(dev=2, metric="chrf"), exp.rewards, "w")
    other = tmp_path / "other-encoder"
    other.mkdir()
    check_reward_metric(exp, SelectSpec(dev=2, metric="sim", encoder=str(other)), exp.rewards, "w")


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ({"dev": 0}, "give a file of dev rows or a number"),
        ({"dev": True}, "give a file of dev rows or a number"),
        ({"dev": 2, "encoder": "default"}, "encoder is read by metric sim only"),
        ({"dev": 2, "metric": "ter"}, "'bleu', 'chrf', 'rougeL', 'sim' or 'lang'"),
    ],
)
def test_bad_select_settings_are_schema_errors(select, message):
    with pytest.raises(ValueError, match=message):
        experiment(select=select)
