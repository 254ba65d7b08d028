"""A completion cut mid-character by the token limit earns what its complete prefix earns, from
every term: TRL decodes the completion itself, so the reward is where the broken tail must go."""

from __future__ import annotations

import pytest

from semrl.rewards import RewardConfig, build_reward

ZH = "今天下午城里下了一场大雨。"
BO = "དེ་རིང་ཉིན་གུང་གནམ་གཤིས་ཡག་པོ་འདུག"


def cut_inside(text: str, chars: int) -> tuple[str, str]:
    """(the decode of `text`'s UTF-8 cut one byte into character `chars`, the complete prefix)."""
    n_bytes = len(text[:chars].encode("utf-8")) + 1
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="replace"), text[:chars]


def reward_for(lang: str):
    return build_reward(
        RewardConfig.model_validate(
            {
                "rewards": [
                    {"type": "semantic", "weight": 1.5, "tau": 0.0},
                    {"type": "language", "lang": lang, "mode": "continuous"},
                    {"type": "chrf", "lang": lang},
                ]
            }
        )
    )


@pytest.mark.parametrize(("lang", "reference", "chars"), [("zh", ZH, 7), ("bo", BO, 20)])
def test_a_broken_tail_scores_as_the_complete_prefix(lang, reference, chars):
    reward = reward_for(lang)
    broken, prefix = cut_inside(reference, chars)
    assert broken == prefix + "\ufffd"
    scored = reward.score_batch([""] * 2, [broken, prefix], reference=[reference] * 2)
    for name, values in scored.components.items():
        assert values[0] == values[1], name
    assert scored.rewards[0] == scored.rewards[1]
    # the test can fail: given the broken text itself, chrF counts U+FFFD as a character of the
    # hypothesis and scores lower. The other two cannot see it: the language share counts letters
    # (U+FFFD is a symbol), and MiniLM's BERT tokenizer deletes U+FFFD before it embeds.
    for component, _ in reward.components:
        raw = component.score([""], [broken], {"reference": [reference]})[0]
        stripped = scored.components[component.name][1]
        if component.type == "chrf":
            assert raw < stripped
        else:
            assert raw == pytest.approx(stripped, abs=1e-6), component.name


def test_separate_functions_and_message_completions_strip_it_too():
    """TRL's normalize_then_sum calls each term itself, and a conversational dataset sends messages."""
    reward = reward_for("zh")
    broken, prefix = cut_inside(ZH, 5)
    functions, _ = reward.separate_functions()
    for function in functions:
        messages = [[{"role": "assistant", "content": broken}], [{"role": "assistant", "content": prefix}]]
        values = function(prompts=[""] * 2, completions=messages, reference=[ZH] * 2)
        assert values[0] == values[1], function.name
