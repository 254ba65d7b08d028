"""The oracle-free monitors (rewards/monitors.py): their definitions on vectors checked by hand,
their behaviour on real outputs (copies vs one constant sentence), and how they reach TRL's
`log_metric` from a composed reward and from separate reward functions."""

from __future__ import annotations

import pytest
import torch
from hub_rows import GENERIC, PARAPHRASES, REFERENCES

from semrl.rewards import RewardConfig, build_reward
from semrl.rewards.monitors import monitor_values

MONITORS = {"monitor/distinct", "monitor/hub", "monitor/retrieval"}


def unit(*xs: float) -> list[float]:
    norm = sum(x * x for x in xs) ** 0.5
    return [x / norm for x in xs]


def test_monitor_values_by_hand():
    # three references on the axes; four items (two share reference a), one output repeated
    a, b, c = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
    y1, y2 = unit(3, 1, 0), unit(1, 2, 2)  # y1 near a; y2 nearest b and c (tie), then a
    completions = ["one", "one", "two", "three"]
    completion_vecs = torch.tensor([y1, y1, y2, y2])
    ref_texts = ["a", "a", "b", "c"]
    reference_vecs = torch.tensor([a, a, b, c])
    got = monitor_values(completion_vecs, reference_vecs, ref_texts, completions, k=1)
    assert set(got) == MONITORS
    assert got["monitor/distinct"] == 1.0  # exact: items 0 and 1 share an output but also their input
    # y1 (items 0, 1): own a is its nearest; y2 for b (item 2): b ties c, ties count; for c (item 3): too
    assert got["monitor/retrieval"] == 1.0
    # hub with k=1: the best cosine to another item's reference
    y1_best_other = max(y1[1], y1[2])  # b, c
    y2_b, y2_c = max(y2[0], y2[2]), max(y2[0], y2[1])  # item 2 excludes b, item 3 excludes c
    assert got["monitor/hub"] == pytest.approx((2 * y1_best_other + y2_b + y2_c) / 4, abs=1e-6)
    # k=2 (capped at the two other references)
    wide = monitor_values(completion_vecs, reference_vecs, ref_texts, completions, k=5)
    expected = (2 * (y1[1] + y1[2]) / 2 + (y2[0] + y2[2]) / 2 + (y2[0] + y2[1]) / 2) / 4
    assert wide["monitor/hub"] == pytest.approx(expected, abs=1e-6)

    # item 0 answered with y2: its nearest reference is b/c, not a; an empty completion is a miss
    swapped = monitor_values(
        torch.tensor([y2, y1, y2, y2]), reference_vecs, ref_texts, ["two", "one", "two", ""], k=1
    )
    assert swapped["monitor/retrieval"] == 2 / 4 and swapped["monitor/distinct"] == 3 / 4
    # the empty one is left out of hub: items 0, 1, 2 only
    assert swapped["monitor/hub"] == pytest.approx((max(y2[1], y2[2]) + y1_best_other + y2_b) / 3, abs=1e-6)

    # an output shared by two different inputs lowers distinct; a repeated output within one input does not
    shared = monitor_values(completion_vecs, reference_vecs, ref_texts, ["one", "one", "one", "three"], k=1)
    assert shared["monitor/distinct"] == 2 / 3  # inputs a: {one}, b: {one}, c: {three}
    by_prompt = monitor_values(
        completion_vecs, reference_vecs, ref_texts, ["x", "x", "x", "x"], k=1, groups=["p", "p", "q", "q"]
    )
    assert by_prompt["monitor/distinct"] == 1 / 2
    # one reference in the call: only distinct says anything
    alone = monitor_values(completion_vecs[:2], reference_vecs[:2], ["a", "a"], ["one", "two"], k=1)
    assert alone == {"monitor/distinct": 1.0}
    assert monitor_values(torch.zeros(0, 3), torch.zeros(0, 3), [], [], k=1) == {}


def logged_calls(reward, completions: list[str], references: list[str]) -> list[tuple[str, float]]:
    calls: list[tuple[str, float]] = []
    reward(
        [""] * len(completions),
        completions,
        reference=references,
        log_metric=lambda k, v: calls.append((k, v)),
    )
    return calls


@pytest.mark.parametrize("contrast", [None, {"bank": 512, "k": 10, "mode": "csls"}])
def test_copies_are_retrieved_and_one_constant_is_not(contrast):
    """Group of 2 per prompt, 8 prompts: outputs equal to their references are all retrieved; one
    constant sentence for every prompt is retrieved only where it is nearest to that prompt's
    reference (1 prompt of 8), and the copies are more distinct than the constant."""
    term = {"type": "semantic", **({"contrast": contrast} if contrast else {})}
    reward = build_reward(RewardConfig.model_validate({"rewards": [term]}))
    reward.prepare([{"reference": r} for r in REFERENCES], 0)
    references = [r for r in REFERENCES[:8] for _ in range(2)]
    copies = dict(logged_calls(reward, references, references))
    assert set(copies) >= MONITORS
    assert (
        copies["monitor/retrieval"] == 1.0 and copies["monitor/distinct"] == 1.0
    )  # a group agreeing is fine
    constant = dict(logged_calls(reward, [GENERIC[0]] * 16, references))
    assert constant["monitor/distinct"] == 1 / 8  # one output shared by all 8 inputs
    assert constant["monitor/retrieval"] == 2 / 16  # the constant's one nearest reference, both its items

    # hub: by hand from the encoder's vectors (top-10 over the 7 other references: all 7)
    semantic = reward.semantic_components()[0]
    ref_vecs = semantic.encoder.embed(REFERENCES[:8])
    g = semantic.encoder.embed([GENERIC[0]])[0]
    sims = (ref_vecs @ g).tolist()
    expected = sum((sum(sims) - sims[i]) / 7 for i in range(8)) / 8
    assert constant["monitor/hub"] == pytest.approx(expected, abs=1e-5)


def test_monitors_are_the_same_for_plain_and_contrast():
    """They come from the embeddings, not from the score: the correction does not change them."""
    completions = [p for p in PARAPHRASES[:6] for _ in range(2)] + [GENERIC[0]] * 4
    references = [r for r in REFERENCES[:6] for _ in range(2)] + [REFERENCES[6]] * 2 + [REFERENCES[7]] * 2
    values = []
    for term in ({"type": "semantic"}, {"type": "semantic", "contrast": {"mode": "margin", "k": 10}}):
        reward = build_reward(RewardConfig.model_validate({"rewards": [term]}))
        reward.prepare([{"reference": r} for r in REFERENCES], 0)
        values.append(
            {k: v for k, v in logged_calls(reward, completions, references) if k.startswith("monitor/")}
        )
    assert values[0].keys() == values[1].keys() == MONITORS
    assert values[1] == pytest.approx(values[0], abs=1e-6)


def test_the_first_semantic_term_logs_the_monitors_once_per_call_in_both_paths():
    config = RewardConfig.model_validate(
        {
            "rewards": [
                {"type": "semantic", "weight": 1.5},
                {"type": "semantic", "name": "to_source", "against": "source"},
                {"type": "language", "lang": "en"},
            ]
        }
    )
    completions = PARAPHRASES[:4]
    kwargs = {"reference": REFERENCES[:4], "source": REFERENCES[4:8]}

    composed = build_reward(config)
    calls: list[tuple[str, float]] = []
    composed([""] * 4, completions, **kwargs, log_metric=lambda k, v: calls.append((k, v)))
    names = [name for name, _ in calls]
    assert sorted(n for n in names if n.startswith("monitor/")) == sorted(MONITORS)  # once each
    assert {n for n in names if n.startswith("reward/")} == {
        "reward/semantic",
        "reward/to_source",
        "reward/language",
    }
    assert dict(calls)["monitor/retrieval"] == 1.0  # the paraphrases find their own references

    functions, weights = build_reward(config).separate_functions()  # normalize_then_sum: TRL calls each
    separate: list[tuple[str, float]] = []
    for function in functions:
        function([""] * 4, completions, **kwargs, log_metric=lambda k, v: separate.append((k, v)))
    assert sorted(n for n, _ in separate if n.startswith("monitor/")) == sorted(MONITORS)
    assert {k: v for k, v in separate if k.startswith("monitor/")} == {
        k: v for k, v in calls if k.startswith("monitor/")
    }
    assert weights == [1.5, 1.0, 1.0]

    plain = build_reward(RewardConfig.model_validate({"rewards": [{"type": "chrf", "lang": "en"}]}))
    assert [k for k, _ in logged_calls(plain, completions, REFERENCES[:4])] == ["reward/chrf"]
