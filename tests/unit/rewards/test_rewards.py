"""The reward library: each component's definition, composition, the TRL contract."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import sample_lines
from semrl.errors import UserError
from semrl.rewards import RewardConfig, build_reward
from semrl.rewards.penalties import length_penalty, repeated_ngram_ratio, repetition_penalty
from semrl.rewards.semantic import floor_shape

EN = sample_lines("en.txt")
PARA = sample_lines("en.paraphrase.txt")
BO = sample_lines("bo.txt")


def reward_from(spec: dict):
    return build_reward(RewardConfig.model_validate(spec))


@pytest.mark.parametrize(
    ("s", "tau", "expected"),
    [(0.2, 0.3, 0.0), (0.3, 0.3, 0.0), (0.65, 0.3, 0.5), (1.0, 0.3, 1.0), (-0.5, 0.0, 0.0), (0.4, 0.0, 0.4)],
)
def test_shaping_matches_the_paper(s, tau, expected):
    assert floor_shape(s, tau) == pytest.approx(expected)


def test_semantic_reward_is_shaped_cosine_of_the_encoder():
    from sentence_transformers import SentenceTransformer

    from semrl.encoders import default_encoder_path

    tau = 0.3
    reward = reward_from({"rewards": [{"type": "semantic", "against": "reference", "tau": tau}]})
    values = reward(prompts=[""] * 4, completions=PARA[:4], reference=EN[:4])
    model = SentenceTransformer(default_encoder_path(), device="cpu")
    a = model.encode(PARA[:4], convert_to_tensor=True, normalize_embeddings=True)
    b = model.encode(EN[:4], convert_to_tensor=True, normalize_embeddings=True)
    expected = [floor_shape(float(c), tau) for c in (a * b).sum(dim=1)]
    assert values == pytest.approx(expected, abs=1e-5)


def test_semantic_against_source_and_both():
    both = reward_from({"rewards": [{"type": "semantic", "against": "both"}]})
    ref_only = reward_from({"rewards": [{"type": "semantic", "against": "reference"}]})
    src_only = reward_from({"rewards": [{"type": "semantic", "against": "source"}]})
    kwargs = {"reference": EN[:3], "source": PARA[:3]}
    r, s, b = (f([""] * 3, EN[:3], **kwargs) for f in (ref_only, src_only, both))
    assert b == pytest.approx([(x + y) / 2 for x, y in zip(r, s, strict=True)], abs=1e-5)


def test_distinct_text_encoder_encodes_each_distinct_text_once_per_call():
    from semrl.encoders import DistinctTextEncoder, load_encoder

    texts = DistinctTextEncoder(load_encoder("default"))
    completions = [EN[0]] * 4 + [PARA[0]] * 4
    first = texts.cosine(completions, [EN[0]] * 8)
    assert texts.encoded == 2  # a text on both sides and repeats are encoded once
    assert texts.cosine(completions, [EN[0]] * 8) == first
    assert texts.encoded == 4  # nothing remembered across calls (see below)


def test_a_call_does_not_depend_on_earlier_calls():
    """A resumed GRPO stage sees only the calls after its checkpoint; its rewards must be those of
    an uninterrupted stage, so a call's result may depend on its own texts only."""
    from semrl.encoders import DistinctTextEncoder, load_encoder

    model = load_encoder("default")
    fresh, warm = DistinctTextEncoder(model), DistinctTextEncoder(model)
    pool = EN + PARA + ["a", "a b", "。", "short one"]
    warm.cosine(pool, list(reversed(pool)))  # these texts now met in one padded batch
    for left, right in zip(EN, PARA, strict=True):  # alone, each vector differs from the batched one by ~1e-7
        assert warm.cosine([left], [right]) == fresh.cosine([left], [right])


def test_language_reward_binary_and_continuous():
    binary = reward_from({"rewards": [{"type": "language", "lang": "bo"}]})
    continuous = reward_from({"rewards": [{"type": "language", "lang": "bo", "mode": "continuous"}]})
    mixed = "ང་ཚོ་སང་ཉིན་拉萨་ལ་འགྲོ།"  # Tibetan with Chinese mixed in
    values = binary([""] * 3, [BO[0], mixed, "The sun has risen."])
    assert values == [1.0, 0.0, 0.0]
    share = continuous([""], [mixed])[0]
    assert 0.5 < share < 1.0


def test_language_reward_by_script_name():
    reward = reward_from({"rewards": [{"type": "language", "script": "Han"}]})
    assert reward([""] * 2, ["天气很好。", "天气 good"]) == [1.0, 0.0]


@pytest.mark.parametrize("kind", ["bleu", "chrf", "rougeL"])
def test_overlap_rewards_are_in_unit_range(kind):
    reward = reward_from({"rewards": [{"type": kind, "lang": "bo"}]})
    values = reward([""] * 3, [BO[0], BO[1], ""], reference=[BO[0], BO[0], BO[0]])
    assert values[0] == pytest.approx(1.0)
    assert 0.0 <= values[1] < 1.0
    assert values[2] == 0.0


def test_length_penalty_definition():
    assert length_penalty(25, 10) == 0.0
    assert length_penalty(37.5, 10) == pytest.approx(0.5)
    assert length_penalty(50, 10) == pytest.approx(1.0)
    assert length_penalty(500, 10) == 1.0
    reward = reward_from({"rewards": [{"type": "length", "weight": -1.0, "lang": "en"}]})
    short = "a b c d"
    values = reward([""] * 5, [short, short, short, " ".join([short] * 5), ""])
    assert values[:3] == [0.0, 0.0, 0.0]
    assert values[3] == pytest.approx(-1.0)  # 5x the batch median: full penalty, negative weight
    assert values[4] == 0.0


def test_length_relative_to_reference():
    reward = reward_from(
        {"rewards": [{"type": "length", "weight": -1.0, "relative_to": "reference", "lang": "bo"}]}
    )
    long = "་".join(["ཀ"] * 20)
    assert reward([""] * 2, ["ཀ་ཁ", long], reference=["ཀ་ཁ་ག་ང", "ཀ་ཁ"]) == [0.0, -1.0]


def test_repetition_penalty_definition():
    assert repeated_ngram_ratio("a b c d e f".split()) == 0.0
    tokens = "a b c d a b c d a b c d".split()
    ratio = repeated_ngram_ratio(tokens)
    assert ratio == pytest.approx(1 - 4 / 9)
    assert repetition_penalty(tokens) == pytest.approx((ratio - 0.15) / 0.85)
    assert repetition_penalty("a b c".split()) == 0.0


def test_weighted_sum_is_the_papers_reward():
    reward = reward_from(
        {
            "rewards": [
                {"type": "semantic", "weight": 1.5, "tau": 0.2},
                {"type": "language", "weight": 1.0, "lang": "en"},
            ]
        }
    )
    scored = reward.score_batch([""] * 3, [PARA[0], BO[0], ""], reference=[EN[0]] * 3)
    sem, lang = scored.components["semantic"], scored.components["language"]
    assert scored.rewards == pytest.approx([1.5 * s + 1.0 * g for s, g in zip(sem, lang, strict=True)])
    assert lang == [1.0, 0.0, 0.0]
    assert scored.rewards[2] == 0.0  # empty completion: each component's minimum


def test_gate_multiplies_the_clipped_sum():
    reward = reward_from(
        {
            "rewards": [{"type": "chrf", "lang": "en"}, {"type": "length", "weight": -5.0, "lang": "en"}],
            "gate": {"type": "language", "lang": "en"},
        }
    )
    completions = [EN[0], "ཉི་མ་ཤར་སོང་།", " ".join([EN[0]] * 8), EN[0], EN[0]]
    scored = reward.score_batch([""] * 5, completions, reference=[EN[0]] * 5)
    gate = scored.components["gate/language"]
    raw = [c - 5.0 * p for c, p in zip(scored.components["chrf"], scored.components["length"], strict=True)]
    assert gate == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert scored.rewards == pytest.approx([g * max(r, 0.0) for g, r in zip(gate, raw, strict=True)])
    assert scored.rewards[1] == 0.0 and scored.rewards[2] == 0.0  # gated out; clipped at 0


def test_trl_contract_messages_columns_and_logging():
    reward = reward_from(
        {
            "rewards": [{"type": "semantic", "weight": 1.5}, {"type": "language", "lang": "en"}],
            "columns": {"reference": "target_text"},
        }
    )
    logged: dict[str, float] = {}
    completions = [[{"role": "assistant", "content": PARA[0]}], [{"role": "assistant", "content": ""}]]
    values = reward(
        prompts=[[{"role": "user", "content": "translate"}]] * 2,
        completions=completions,
        target_text=[EN[0]] * 2,
        trainer_state=None,
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
    # one reference in the call: the monitors can only count distinct outputs (test_monitors.py)
    assert set(logged) == {"reward/semantic", "reward/language", "monitor/distinct", "stall/floored/semantic"}
    assert not isinstance(reward, torch.nn.Module)
    assert reward.__name__ == "semrl_reward"
    with pytest.raises(KeyError, match="target_text"):
        reward(prompts=[""], completions=["x"], reference=["x"])


def test_reward_model_component(tiny_classifier):
    reward = reward_from({"rewards": [{"type": "reward_model", "model": str(tiny_classifier)}]})
    values = reward(prompts=["Q: ", "Q: ", "Q: "], completions=[EN[0], EN[1], ""])
    assert all(0.0 < v < 1.0 for v in values[:2]) and values[2] == 0.0
    raw = reward_from(
        {"rewards": [{"type": "reward_model", "model": str(tiny_classifier), "transform": "raw"}]}
    )
    raw_values = raw(prompts=["Q: "] * 2, completions=[EN[0], EN[1]])
    assert values[:2] == pytest.approx([1 / (1 + math.exp(-x)) for x in raw_values], abs=1e-5)
    z = reward_from(
        {"rewards": [{"type": "reward_model", "model": str(tiny_classifier), "transform": "batch_z"}]}
    )
    z_values = z(prompts=["Q: "] * 3, completions=EN[:3])
    assert sum(z_values) == pytest.approx(0.0, abs=1e-5)


def test_config_errors():
    with pytest.raises(Exception, match="negative weight"):
        RewardConfig.model_validate({"rewards": [{"type": "length", "weight": 0.2}]})
    with pytest.raises(Exception, match="extra|unknown|Extra"):
        RewardConfig.model_validate({"rewards": [{"type": "language", "lang": "bo", "treshold": 0.9}]})
    with pytest.raises(Exception, match="no script known"):
        RewardConfig.model_validate({"rewards": [{"type": "language", "lang": "xx"}]})
    with pytest.raises(Exception, match="named"):
        RewardConfig.model_validate(
            {"rewards": [{"type": "semantic"}, {"type": "semantic", "against": "source"}]}
        )
    with pytest.raises(UserError, match="does not exist"):
        reward_from({"rewards": [{"type": "semantic", "encoder": "./no/such/encoder"}]})


def test_lone_surrogates_do_not_crash_the_semantic_reward():
    # found by hypothesis: a Python string may hold a lone surrogate, which the fast tokenizer rejects
    reward = reward_from({"rewards": [{"type": "semantic"}]})
    values = reward([""] * 2, ["0", "a\ud800b"], reference=["\ud800", "ab"])
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)


def test_audit_ranks_a_true_paraphrase_against_the_corruptions():
    """The copy is the reference itself, so a semantic reward ranks it first by construction; the
    paraphrase ranking is the informative one and drives the summary and the hackable flags."""
    from semrl.rewards.audit import audit

    reward = reward_from({"rewards": [{"type": "semantic", "encoder": "default"}]})
    columns = {"reference": "reference", "source": "source"}
    rows = [{"reference": e, "source": b, "paraphrase": p} for e, b, p in zip(EN, BO, PARA, strict=True)]
    result = audit(rows, reward, columns, "en")
    total = result["scores"]["total"]
    assert all(rate == 1.0 for rate in total["copy_above"].values())  # uninformative by construction
    above = total["paraphrase_above"]
    assert set(above) == {"shuffle", "truncate", "source", "mix", "pad", "source_filler", "filler", "empty"}
    assert above["empty"] == 1.0 and above["source"] == 1.0  # MiniLM is an English encoder
    assert min(above.values()) < 1.0  # a bag-of-words-like encoder: some corruption beats the paraphrase
    assert result["summary"]["against"] == "paraphrase" and result["summary"]["above"] == above
    flagged = {item["candidate"] for item in result["hackable"]}
    assert flagged == {kind for kind, rate in above.items() if rate < 0.9} and flagged
    assert all(item["against"] == "paraphrase" and item["copy_above"] == 1.0 for item in result["hackable"])

    plain = audit(
        [{k: v for k, v in row.items() if k != "paraphrase"} for row in rows], reward, columns, "en"
    )
    assert "paraphrase_above" not in plain["scores"]["total"]
    assert plain["summary"]["against"] == "copy" and plain["hackable"] == []
