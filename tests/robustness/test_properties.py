"""Property tests over arbitrary Unicode: segmentation, metrics and rewards never raise and
stay in their documented ranges."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semrl.metrics import (
    corpus_bleu,
    corpus_chrf,
    language_consistency,
    sentence_bleu,
    sentence_chrf,
    sentence_rouge_l,
)
from semrl.rewards import RewardConfig, build_reward
from semrl.text import char_class, metric_tokenizer, normalize_tibetan, script_profile, syllables
from semrl.text.tibetan import SYLLABLE_BREAKS

TIBETAN = st.characters(min_codepoint=0x0F00, max_codepoint=0x0FFF)
MIXED = st.one_of(TIBETAN, st.characters(), st.sampled_from(list("中文天气 \t\n་།abc")))
texts = st.text(MIXED, max_size=40)
LANGS = st.sampled_from(["bo", "zh", "en", "ja", "ru"])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(texts)
def test_syllables_never_contain_breaks_or_empties(text):
    for piece in syllables(text):
        assert piece and not any(c in SYLLABLE_BREAKS or c.isspace() for c in piece)


@FAST
@given(texts)
def test_normalisation_is_idempotent_and_classes_are_total(text):
    once = normalize_tibetan(text)
    assert normalize_tibetan(once) == once
    for char in text:
        assert isinstance(char_class(char), str)
    shares = script_profile(text).shares()
    assert all(0.0 <= v <= 1.0 for v in shares.values())
    assert not shares or math.isclose(sum(shares.values()), 1.0)


@FAST
@given(texts, texts, LANGS)
def test_sentence_metrics_stay_in_range(hyp, ref, lang):
    for value in (sentence_bleu(hyp, ref, lang), sentence_chrf(hyp, ref, lang)):
        assert 0.0 <= value <= 100.0
    assert 0.0 <= sentence_rouge_l(hyp, ref, lang) <= 1.0
    assert all(token for token in metric_tokenizer(lang)(hyp))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(texts, texts.filter(lambda t: t.strip())), min_size=1, max_size=5), LANGS)
def test_corpus_metrics_stay_in_range(pairs, lang):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    assert 0.0 <= corpus_bleu(hyps, refs, lang).score <= 100.0
    assert 0.0 <= corpus_chrf(hyps, refs, lang).score <= 100.0
    assert 0.0 <= language_consistency(hyps, lang).score <= 1.0


SURFACE_REWARD = build_reward(
    RewardConfig.model_validate(
        {
            "rewards": [
                {"type": "bleu", "weight": 1.0, "lang": "bo"},
                {"type": "chrf", "weight": 1.0, "lang": "bo"},
                {"type": "rougeL", "weight": 1.0, "lang": "bo"},
                {"type": "language", "weight": 1.0, "lang": "bo"},
                {"type": "language", "weight": 1.0, "lang": "bo", "mode": "continuous", "name": "lang_share"},
                {"type": "length", "weight": -0.2},
                {"type": "repetition", "weight": -0.05},
            ],
            "gate": {"type": "language", "lang": "bo", "threshold": 0.5},
        }
    )
)


@FAST
@given(st.lists(st.tuples(texts, texts.filter(lambda t: t.strip())), min_size=1, max_size=6))
def test_rewards_are_finite_and_bounded(pairs):
    completions, refs = [c for c, _ in pairs], [r for _, r in pairs]
    scored = SURFACE_REWARD.score_batch([""] * len(pairs), completions, reference=refs)
    assert all(math.isfinite(r) and 0.0 <= r <= 5.0 for r in scored.rewards)
    for name, values in scored.components.items():
        assert all(0.0 <= v <= 1.0 for v in values), name
    for completion, reward in zip(completions, scored.rewards, strict=True):
        if not completion.strip():
            assert reward == 0.0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(texts, texts.filter(lambda t: t.strip())), min_size=1, max_size=4))
def test_semantic_reward_is_finite_and_bounded(pairs):
    reward = build_reward(
        RewardConfig.model_validate({"rewards": [{"type": "semantic", "tau": 0.2, "against": "both"}]})
    )
    completions, refs = [c for c, _ in pairs], [r for _, r in pairs]
    values = reward([""] * len(pairs), completions, reference=refs, source=refs)
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
