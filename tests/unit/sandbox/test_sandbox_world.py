"""The sandbox world: deterministic, parseable, and judged exactly by the oracle."""

from __future__ import annotations

import json
import random

import pytest

from semrl.sandbox.grammar import Meaning, h_variants, l_variants, random_meaning, realise_h, realise_l
from semrl.sandbox.lexicon import SLOTS, build_lexicon
from semrl.sandbox.oracle import judge
from semrl.sandbox.world import World, WorldSpec, write_world
from semrl.text import resolve_scripts, target_share


def test_l_words_share_no_syllable_and_use_tibetan_script():
    lexicon = build_lexicon(3)
    syllables = [
        s for slot in SLOTS for words in lexicon.l_words[slot] for word in words for s in word.split("\u0f0b")
    ]
    assert len(syllables) == len(set(syllables))
    assert all(target_share(s, resolve_scripts("bo")) == 1.0 for s in syllables)


def test_every_paraphrase_is_judged_adequate_and_grammatical():
    lexicon = build_lexicon(0)
    rng = random.Random(1)
    for _ in range(200):
        meaning = random_meaning(rng, lexicon.sizes())
        h_text, l_text = realise_h(meaning, lexicon, rng), realise_l(meaning, lexicon, rng)
        assert h_text in h_variants(meaning, lexicon) and l_text in l_variants(meaning, lexicon)
        for text, language in ((h_text, "h"), (l_text, "l")):
            verdict = judge(text, meaning, lexicon, language)
            assert verdict.adequacy == 1.0 and verdict.grammatical and verdict.purity == 1.0


def test_oracle_scores_corruptions():
    lexicon = build_lexicon(0)
    rng = random.Random(2)
    meaning = random_meaning(rng, lexicon.sizes())
    world = World(WorldSpec())
    wrong = world.corrupt(meaning, rng)
    assert judge(realise_h(wrong, lexicon), meaning, lexicon, "h").adequacy == pytest.approx(0.8)
    words = realise_h(meaning, lexicon).rstrip(".").split()
    shuffled = " ".join(reversed(words))
    verdict = judge(shuffled, meaning, lexicon, "h")
    assert verdict.adequacy == 1.0 and not verdict.grammatical  # right words, wrong order
    mixed = " ".join(words[:4]) + " " + realise_l(meaning, lexicon)
    verdict = judge(mixed, meaning, lexicon, "h")
    assert verdict.purity < 0.9  # code-mixed output
    assert judge("", meaning, lexicon, "h").adequacy == 0.0


def test_world_files_are_deterministic_and_readable(tmp_path):
    a = write_world(WorldSpec(seed=5), tmp_path / "a")
    b = write_world(WorldSpec(seed=5), tmp_path / "b")
    for name in ("mt_train", "mt_test", "general/qa", "prefs_l"):
        assert a[name].read_text(encoding="utf-8") == b[name].read_text(encoding="utf-8")
    rows = [json.loads(line) for line in a["mt_train"].read_text(encoding="utf-8").splitlines()]
    spec = WorldSpec()
    assert len(rows) == spec.parallel.train
    lexicon = build_lexicon(5)
    for row in rows[:20]:  # the task generates L, the low-resource language, from H
        meaning = Meaning(*row["meaning"])
        assert judge(row["source"], meaning, lexicon, "h").adequacy == 1.0
        assert judge(row["reference"], meaning, lexicon, "l").adequacy == 1.0
    assert {r["meaning"][0] for r in rows} <= set(range(spec.parallel.bias["agent"]))  # narrow parallel data
    test_agents = {
        json.loads(line)["meaning"][0] for line in a["mt_test"].read_text(encoding="utf-8").splitlines()
    }
    assert len(test_agents) > spec.parallel.bias["agent"]  # the test set is not narrow
    from semrl.evaluate.suite import load_suite

    suite, items = load_suite(a["suite"])
    assert {bench.name for bench in suite.benchmarks} == {"qa", "copy", "facts", "text", "drift"}
    assert all(items[name] for name in ("qa", "copy", "facts", "text"))


def test_configs_demo_yaml_equals_the_built_in_defaults():
    from pathlib import Path

    from semrl.config_files import load_config
    from semrl.sandbox.config import DemoConfig

    path = Path(__file__).resolve().parents[3] / "configs" / "demo.yaml"
    assert load_config(DemoConfig, path) == DemoConfig()


def test_the_mechanisms_study_is_the_demo_with_all_four_reward_variants():
    from pathlib import Path

    from semrl.config_files import load_config
    from semrl.sandbox.config import DemoConfig
    from semrl.sandbox.variants import VARIANTS

    path = Path(__file__).resolve().parents[3] / "configs" / "studies" / "mechanisms.yaml"
    study = load_config(DemoConfig, path)
    assert study.variants == list(VARIANTS)
    assert study.model_copy(update={"variants": DemoConfig().variants}) == DemoConfig()


def test_pretraining_has_a_bilingual_component_over_every_concept():
    """The base sees a little L, dictionary lines, aligned and code-switched text for all concepts,
    not only those of the narrow task data."""
    world = World(WorldSpec(seed=1))
    texts = world.bilingual_text(random.Random(0))
    lexicon = world.lexicon
    for slot in SLOTS:
        for h_words, l_words in zip(lexicon.h_words[slot], lexicon.l_words[slot], strict=True):
            assert f"{h_words[0]} = {l_words[0]}" in texts
    aligned = [t for t in texts if t.startswith("H: ")]
    assert len(aligned) == WorldSpec().pretrain.aligned
    agents = {
        judge(t.split("\nL: ")[1], random_meaning(random.Random(0), lexicon.sizes()), lexicon, "l").slots[
            "agent"
        ]
        for t in aligned
    }
    assert (
        len(agents) == lexicon.sizes()["agent"]
    )  # aligned text covers every agent, beyond the narrow data's 4
    mixed = [
        t
        for t in texts
        if 0.0 < target_share(t, resolve_scripts("bo")) < 1.0 and not t.startswith("H: ") and "=" not in t
    ]
    assert len(mixed) == WorldSpec().pretrain.code_switched


def test_encoder_pairs_are_cross_lingual_paraphrastic_and_code_mixed():
    world = World(WorldSpec(seed=2, encoder_pairs=200))
    pairs = world.encoder_pairs(random.Random(0))
    bo = resolve_scripts("bo")

    def kind(text):
        share = target_share(text, bo)
        return "l" if share == 1.0 else "h" if share == 0.0 else "mixed"

    kinds = [(kind(p["anchor"]), kind(p["positive"])) for p in pairs]
    assert kinds.count(("h", "l")) == 100 and kinds.count(("h", "h")) == 40 and kinds.count(("l", "l")) == 40
    assert kinds.count(("mixed", "l")) == 20


def test_code_mixed_sentence_keeps_every_concept_but_not_the_language():
    from semrl.sandbox.grammar import realise_mixed

    lexicon = build_lexicon(0)
    rng = random.Random(3)
    meaning = random_meaning(rng, lexicon.sizes())
    mixed = realise_mixed(meaning, lexicon, rng, ("agent", "place"))
    as_l = judge(mixed, meaning, lexicon, "l")
    assert as_l.adequacy == pytest.approx(0.6) and as_l.purity < 1.0  # two slots are H words
    found_h = judge(mixed, meaning, lexicon, "h")
    assert found_h.slots["agent"] == meaning.agent and found_h.slots["place"] == meaning.place
