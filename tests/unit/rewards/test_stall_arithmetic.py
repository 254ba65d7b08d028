"""The stall diagnosis's arithmetic (rewards/stall.py) on hand-made numbers, checked against TRL's
own std where TRL has one, and the semantic term's contrast metrics on real MiniLM."""

from __future__ import annotations

import math

import pytest
import torch
from hub_rows import GENERIC, PARAPHRASES, REFERENCES
from trl.trainer.utils import nanstd

from semrl.rewards import RewardConfig, build_reward
from semrl.rewards.stall import (
    batch_stall,
    contrast_stall,
    discordant_pairs,
    floored_share,
    group_std,
    groups_of,
    keyed_std,
    mean_cosine,
    rank_disagreement,
)


def test_group_std_is_the_mean_of_each_groups_sample_std_as_trl_computes_it():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 0.0, 1.0, 0.0, 1.0]
    assert group_std(values, 4) == pytest.approx((math.sqrt(5 / 3) + 0.0 + math.sqrt(1 / 3)) / 3)
    trl = nanstd(torch.tensor(values).view(-1, 4), dim=1).mean().item()  # what TRL's advantage divides by
    assert group_std(values, 4) == pytest.approx(trl)


def test_group_std_leaves_out_missing_values_and_groups_without_two():
    nan = float("nan")
    values = [nan, 1.0, 3.0, nan, 7.0, nan, nan, nan]
    assert group_std(values, 4) == pytest.approx(math.sqrt(2.0))  # the second group has one value
    trl = torch.nanmean(nanstd(torch.tensor(values).view(-1, 4), dim=1)).item()
    assert group_std(values, 4) == pytest.approx(trl)
    assert group_std([nan, 2.0], 2) is None
    with pytest.raises(ValueError, match="groups of 4"):
        group_std([1.0, 2.0, 3.0], 4)


def test_keyed_std_takes_groups_of_any_size_and_groups_of_orders_by_first_sight():
    keys = ["b", "a", "b", "a", "c"]
    assert groups_of(keys) == [[0, 2], [1, 3], [4]]
    values = [0.0, 1.0, 2.0, 1.0, 9.0]
    assert keyed_std(values, groups_of(keys)) == pytest.approx((math.sqrt(2.0) + 0.0) / 2)


def test_a_pair_is_discordant_only_when_the_two_scores_order_it_in_opposite_directions():
    # (0, 1): plain says 0 > 1, corrected says 0 < 1: discordant; (0, 2) and (1, 2): same order
    assert discordant_pairs([0.9, 0.5, 0.1], [0.2, 0.3, 0.1]) == (1, 3)
    assert discordant_pairs([0.9, 0.5, 0.1], [0.3, 0.2, 0.1]) == (0, 3)  # flattened, same order
    assert discordant_pairs([0.1, 0.5, 0.9], [0.9, 0.5, 0.1]) == (3, 3)  # reversed


def test_ties_are_never_discordant_and_float_noise_is_a_tie():
    # plain ties (0, 1): not counted, whatever the corrected score says; (0, 2) is reversed
    assert discordant_pairs([0.5, 0.5, 0.1], [0.1, 0.3, 0.2]) == (1, 3)
    assert discordant_pairs([0.5, 0.4], [0.3, 0.3]) == (0, 1)  # a tie in the corrected score
    assert discordant_pairs([0.5, 0.5 + 1e-8], [0.3, 0.2]) == (0, 1)  # below TIE: the same score
    assert discordant_pairs([0.5, 0.5 + 1e-4], [0.3, 0.2]) == (1, 1)
    assert discordant_pairs([0.7], [0.1]) == (0, 0)


def test_rank_disagreement_over_groups():
    plain = [0.9, 0.5, 0.1, 0.8, 0.2, 0.4]
    corrected = [0.2, 0.3, 0.1, 0.5, 0.1, 0.0]
    groups = [[0, 1, 2], [3, 4], [5]]  # one discordant pair of three; concordant; a lone item, left out
    assert rank_disagreement(plain, corrected, groups) == pytest.approx(
        {"rank_disagreement": 0.5, "discordant_pairs": (1 / 3 + 0.0) / 2}
    )
    assert rank_disagreement(plain, corrected, [[0], [5]]) == {}


def test_batch_stall_per_term_total_and_advantages():
    terms = {"semantic": [0.1, 0.3, 0.5, 0.5], "gate/language": [1.0, 1.0, 1.0, 1.0]}
    total = [0.1, 0.3, 0.5, 0.5]
    advantages = [-1.0, 1.0, 0.0, 0.0]
    values = batch_stall(terms, total, advantages, 2)
    assert values == pytest.approx(
        {
            "stall/std/semantic": (math.sqrt(0.02) + 0.0) / 2,
            "stall/std/gate/language": 0.0,
            "stall/std_total": (math.sqrt(0.02) + 0.0) / 2,
            "stall/advantage_abs": 0.5,
        }
    )
    assert batch_stall({}, [1.0, 1.0], [0.0, 0.0], 2) == {"stall/std_total": 0.0, "stall/advantage_abs": 0.0}


def test_contrast_stall_names_its_term_and_compares_the_spreads():
    plain = [0.9, 0.8, 0.7, 0.6]
    corrected = [0.30, 0.31, 0.31, 0.29]  # flattened; the first two swapped, the last two not
    values = contrast_stall("sem", plain, corrected, ["p", "p", "q", "q"])
    assert values["stall/rank_disagreement/sem"] == 0.5
    assert values["stall/discordant_pairs/sem"] == 0.5
    assert values["stall/std_cosine/sem"] == pytest.approx(math.sqrt(0.005))
    assert values["stall/std_contrast/sem"] == pytest.approx((math.sqrt(0.00005) + math.sqrt(0.0002)) / 2)
    assert values["stall/std_contrast/sem"] < values["stall/std_cosine/sem"] / 5


def test_floored_share_counts_the_scores_the_shaping_pays_zero():
    assert floored_share([-0.2, 0.1, 0.3, 0.5], 0.3) == 0.75  # at tau counts: floor_shape(tau, tau) = 0
    assert floored_share([0.4], 0.3) == 0.0
    assert floored_share([], 0.3) is None


def test_mean_cosine_averages_the_matched_rows_over_the_targets():
    outputs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    first = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    second = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert mean_cosine(outputs, [first]) == [1.0, 0.0]
    assert mean_cosine(outputs, [first, second]) == [0.5, 0.5]


def semantic_term(contrast: bool):
    spec = {"type": "semantic", "tau": 0.0, **({"contrast": {"bank": 16, "k": 3}} if contrast else {})}
    reward = build_reward(RewardConfig.model_validate({"rewards": [spec]}))
    reward.prepare([{"reference": r} for r in REFERENCES], 0)
    return reward.semantic_components()[0]


def test_the_semantic_term_logs_the_contrasts_reordering_against_its_own_plain_cosine():
    """Two prompts, each with its paraphrase, two generic sentences and an empty completion: the
    stall values equal contrast_stall over the plain term's cosines and the corrected s' of the
    non-empty completions; without contrast the term logs only its share at or below tau."""
    refs = [REFERENCES[0]] * 4 + [REFERENCES[1]] * 4
    completions = [PARAPHRASES[0], GENERIC[0], GENERIC[1], "", PARAPHRASES[1], GENERIC[1], GENERIC[0], " "]
    prompts = ["p0"] * 4 + ["p1"] * 4
    corrected, plain = semantic_term(True), semantic_term(False)
    corrected.score(prompts, completions, {"reference": refs})
    plain.score(prompts, completions, {"reference": refs})
    assert {k for k in plain.extra_metrics() if k.startswith("stall/")} == {"stall/floored/semantic"}
    keep = [i for i, text in enumerate(completions) if text.strip()]
    cosines = plain.adequacy(completions, {"reference": refs})
    s_prime = corrected.adequacy(completions, {"reference": refs})
    expected = contrast_stall(
        "semantic",
        [cosines[i] for i in keep],
        [s_prime[i] for i in keep],
        [prompts[i] for i in keep],
    )
    logged = {k: v for k, v in corrected.extra_metrics().items() if k.startswith("stall/")}
    assert set(logged) == {
        f"stall/{kind}/semantic"
        for kind in ("floored", "rank_disagreement", "discordant_pairs", "std_cosine", "std_contrast")
    }
    assert logged["stall/floored/semantic"] == floored_share([s_prime[i] for i in keep], 0.0)
    assert plain.extra_metrics()["stall/floored/semantic"] == floored_share([cosines[i] for i in keep], 0.0)
    assert logged == pytest.approx({**expected, "stall/floored/semantic": logged["stall/floored/semantic"]})
    assert 0.0 <= logged["stall/rank_disagreement/semantic"] <= 1.0
    assert corrected.extra_metrics()["monitor/distinct"] == plain.extra_metrics()["monitor/distinct"]
