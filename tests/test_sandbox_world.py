"""The sandbox world: deterministic, parseable, and judged exactly by the oracle."""

from __future__ import annotations

import json
import random

import pytest

from semrl.sandbox.grammar import h_variants, l_variants, random_meaning, realise_h, realise_l
from semrl.sandbox.lexicon import SLOTS, build_lexicon
from semrl.sandbox.oracle import judge
from semrl.sandbox.world import World, WorldSpec, write_world
from semrl.text import target_share, resolve_scripts


def test_l_words_share_no_syllable_and_use_tibetan_script():
    lexicon = build_lexicon(3)
    syllables = [s for slot in SLOTS for concept in lexicon.l[slot] for word in concept for s in word.split("\u0f0b")]
    assert len(syllables) == len(set(syllables))
    assert all(target_share(s, resolve_scripts("bo")) == 1.0 for s in syllables)


def test_every_paraphrase_is_judged_adequate_and_grammatical():
    lexicon = build_lexicon(0)
    rng = random.Random(1)
    for _ in range(200):
        meaning = random_meaning(rng, lexicon.sizes())
        h, l = realise_h(meaning, lexicon, rng), realise_l(meaning, lexicon, rng)
        assert h in h_variants(meaning, lexicon) and l in l_variants(meaning, lexicon)
        for text, language in ((h, "h"), (l, "l")):
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
    assert {r["meaning"][0] for r in rows} <= set(range(spec.parallel.bias["agent"]))  # narrow parallel data
    test_agents = {json.loads(line)["meaning"][0] for line in a["mt_test"].read_text(encoding="utf-8").splitlines()}
    assert len(test_agents) > spec.parallel.bias["agent"]  # the test set is not narrow
    from semrl.evaluate.suite import load_suite

    suite, items = load_suite(a["suite"])
    assert {bench.name for bench in suite.benchmarks} == {"qa", "copy", "facts", "text", "drift"}
    assert all(items[name] for name in ("qa", "copy", "facts", "text"))


def test_configs_demo_yaml_equals_the_built_in_defaults():
    from pathlib import Path

    from semrl.configs import load_config
    from semrl.sandbox.config import DemoConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    assert load_config(DemoConfig, path) == DemoConfig()


def test_claim_c2_reads_the_pair_in_either_order():
    from semrl.sandbox.claims import matched_rows

    matched = {"strong_sft vs semantic_rl": [{"target": 0.1, "difference": 12.0}]}
    assert matched_rows(matched, "semantic_rl", "strong_sft")[0]["difference"] == -12.0
    assert matched_rows(matched, "strong_sft", "semantic_rl")[0]["difference"] == 12.0


def test_claim_c6_needs_a_reward_model_that_learned():
    from semrl.sandbox.claims import judge_claims

    results = {"arms": {}, "matched_quality": {}}
    chance = judge_claims(results, {}, {}, {"rm_h": {"accuracy_on_l": 0.45}, "rm_l": {"accuracy_on_l": 0.45}})
    c6 = next(c for c in chance if c["id"] == "C6")
    assert not c6["reproduced"] and "not testable" in c6["evidence"]["note"]
    learned = judge_claims(results, {}, {}, {"rm_h": {"accuracy_on_l": 0.8}, "rm_l": {"accuracy_on_l": 0.83}})
    assert next(c for c in learned if c["id"] == "C6")["reproduced"]
    worse = judge_claims(results, {}, {}, {"rm_h": {"accuracy_on_l": 0.6}, "rm_l": {"accuracy_on_l": 0.9}})
    assert not next(c for c in worse if c["id"] == "C6")["reproduced"]
