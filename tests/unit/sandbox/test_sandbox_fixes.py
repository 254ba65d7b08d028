"""The sandbox's matched-quality with tied checkpoints, the side
experiments' result caches keyed on their inputs, and the knowledge-base preference pairs."""

from __future__ import annotations

import json
import random

import pytest


def _point(target: float, tax: float) -> dict:
    return {"target": {"value": target}, "tax": {"tax": tax, "ci95": [tax - 0.1, tax + 0.1]}}


def test_matched_quality_with_tied_checkpoints():
    from semrl.evaluate.tradeoff import matched_quality

    def results(tie_rl: list[float], tie_sft: list[float]) -> dict:
        # two checkpoints of each arm reach exactly the same target value
        rl = [_point(0.2, 0.1), *(_point(0.5, t) for t in tie_rl), _point(0.8, 0.4)]
        sft = [_point(0.1, 0.5), *(_point(0.6, t) for t in tie_sft), _point(0.9, 0.9)]
        return {"arms": {"semantic_rl": {"curve": rl}, "strong_sft": {"curve": sft}}}

    rows = matched_quality(results([0.3, 0.2], [0.6, 0.7]), fractions=(0.0, 0.5, 1.0))[
        "semantic_rl vs strong_sft"
    ]
    assert [round(r["target"], 6) for r in rows] == [0.2, 0.5, 0.8]
    # the cheaper of the tied checkpoints, whichever comes first
    assert [r["semantic_rl"]["tax"] for r in rows] == [0.1, 0.2, 0.4]
    assert [r["strong_sft"]["tax"] for r in rows] == [0.6, 0.6, 0.9]
    assert rows[0]["difference"] == pytest.approx(0.1 - 0.6)
    swapped = matched_quality(results([0.2, 0.3], [0.7, 0.6]), fractions=(0.0, 0.5, 1.0))
    assert [r["difference"] for r in swapped["semantic_rl vs strong_sft"]] == [r["difference"] for r in rows]


# -- side-experiment caches -----------------------------------------------------------------------


def test_cached_result_is_reused_only_for_the_same_inputs(tmp_path):
    from semrl.sandbox.side_experiments import INPUTS, cached, stamp

    out = tmp_path / "rm"
    inputs = {"rm": {"epochs": 2}, "mt_error": 0.1}
    assert cached(out, "result.json", inputs) is None  # nothing yet
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"accuracy": 0.7}), encoding="utf-8")
    (out / "rm-h").mkdir()
    assert cached(out, "result.json", inputs) is None and not out.exists()  # unstamped (unfinished): removed
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"accuracy": 0.7}), encoding="utf-8")
    stamp(out, inputs)
    assert json.loads((out / INPUTS).read_text(encoding="utf-8"))["inputs"] == inputs
    assert cached(out, "result.json", dict(inputs)) == {"accuracy": 0.7}
    assert cached(out, "result.json", {**inputs, "mt_error": 0.3}) is None
    assert not out.exists()  # the stale result and everything next to it is gone


def _fake_tree(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_side_experiment_cache_keys_cover_every_input(tmp_path):
    """transfer_k, rm, rm_mt_error, the seed and the content of every input file or model folder all
    change the key (so a changed setting never reuses a result computed without it)."""
    from semrl.sandbox.config import DemoConfig, spec_hash
    from semrl.sandbox.side_experiments import headline_setup, rm_inputs

    world = _fake_tree(
        tmp_path / "world",
        {
            n: n
            for n in (
                "headline_train.jsonl",
                "headline_test.jsonl",
                "prefs_h.jsonl",
                "prefs_l.jsonl",
                "world.json",
            )
        },
    )
    base = _fake_tree(tmp_path / "base", {"model.safetensors": "w0", "config.json": "{}"})
    encoder = _fake_tree(tmp_path / "encoder", {"model.safetensors": "e0"})
    mt = _fake_tree(
        tmp_path / "mt",
        {
            "semantic_rl/grpo/final/model.safetensors": "rl",
            "strong_sft/sft/final/model.safetensors": "sft",
            "manifest.json": json.dumps(
                {"stages": {key: {"folder": key} for key in ("semantic_rl/grpo", "strong_sft/sft")}}
            ),
        },
    )
    config = DemoConfig()

    def keys(cfg):
        return spec_hash(headline_setup(cfg, world, encoder, mt)[2]), spec_hash(rm_inputs(cfg, world, base))

    head, rm = keys(config)
    assert keys(DemoConfig()) == (head, rm)  # deterministic
    assert keys(config.model_copy(update={"transfer_k": 8}))[0] != head
    assert keys(config.model_copy(update={"sft": {**config.sft, "epochs": 1}}))[0] != head
    assert keys(config.model_copy(update={"rm": {**config.rm, "epochs": 5}}))[1] != rm
    assert keys(config.model_copy(update={"rm_mt_error": 0.3}))[1] != rm
    assert keys(config.model_copy(update={"seed": 1})) != (head, rm) and all(
        a != b for a, b in zip(keys(config.model_copy(update={"seed": 1})), (head, rm), strict=True)
    )
    (mt / "semantic_rl/grpo/final/model.safetensors").write_text("rl, retrained", encoding="utf-8")
    assert keys(config)[0] != head
    (base / "model.safetensors").write_text("w1", encoding="utf-8")
    changed_base = keys(config)[1]
    assert changed_base != rm
    (world / "prefs_l.jsonl").write_text("other pairs", encoding="utf-8")
    assert keys(config)[1] not in (rm, changed_base)


# -- knowledge-base preference pairs --------------------------------------------------------------


def _world(**sizes):
    from semrl.sandbox.world import World, WorldSpec

    return World(WorldSpec(**({"sizes": sizes} if sizes else {})))


@pytest.mark.parametrize("language", ["h", "l"])
def test_preference_pairs_are_kb_questions_with_true_and_false_answers(language):
    from semrl.sandbox.oracle import parse_h, parse_l
    from semrl.text.scripts import resolve_scripts, target_share

    world = _world()
    rows = world.preference(80, random.Random(3), language)
    assert rows == world.preference(80, random.Random(3), language)  # deterministic for a seed
    assert rows != world.preference(80, random.Random(4), language)
    parse = parse_h if language == "h" else parse_l
    script = resolve_scripts("en" if language == "h" else "bo")
    kinds = set()
    for row in rows:
        assert row["language"] == language and row["chosen"] != row["rejected"]
        for field in ("prompt", "chosen", "rejected"):  # one language throughout
            assert target_share(row[field], script) == 1.0, (field, row[field])
        asked, chosen, rejected = (parse(row[f], world.lexicon) for f in ("prompt", "chosen", "rejected"))
        (agent,) = asked["agent"]  # the question names one agent and nothing else
        assert not any(asked[slot] for slot in ("action", "object", "place", "time"))
        assert chosen["agent"] == rejected["agent"] == {agent}
        slot = "place" if chosen["place"] else "object"
        kinds.add(slot)
        truth = world.home[agent] if slot == "place" else world.favourite[agent]
        assert chosen[slot] == {truth} and len(rejected[slot]) == 1 and rejected[slot] != {truth}
    assert kinds == {"place", "object"}  # both kinds of question


def test_l_preference_text_is_built_from_the_lexicon():
    """L pairs contain only lexicon words and the grammar's own function words (no copied text)."""
    from semrl.sandbox import rm_claim
    from semrl.sandbox.grammar import ERGATIVE, LOCATIVE
    from semrl.text.tibetan import syllables

    world = _world()
    function_words = {
        ERGATIVE,
        LOCATIVE,
        rm_claim.L_WHERE,
        rm_claim.L_WHAT,
        rm_claim.L_LIVE,
        rm_claim.L_LIKE,
        rm_claim.L_QUESTION,
        rm_claim.L_STATEMENT,
    }
    lexicon_syllables = {
        s for slot in world.lexicon.l_words.values() for words in slot for w in words for s in syllables(w)
    }
    assert not function_words & lexicon_syllables
    for row in world.preference(40, random.Random(0), "l"):
        for field in ("prompt", "chosen", "rejected"):
            assert set(syllables(row[field])) <= lexicon_syllables | function_words


def test_preference_pairs_with_a_single_place_ask_only_about_objects():
    world = _world(agent=3, action=2, object=3, place=1, time=1)
    rows = world.preference(20, random.Random(0), "h")
    assert all(row["prompt"].startswith("What does the") for row in rows)
    with pytest.raises(ValueError):
        _world(agent=2, action=2, object=1, place=1, time=1).preference(2, random.Random(0), "h")


def test_machine_translator_writes_canonical_l_kb_sentences(tmp_path):
    from semrl.sandbox.rm_claim import kb_answer, kb_question
    from semrl.sandbox.side_experiments import machine_translator
    from semrl.sandbox.world import WorldSpec

    world = _world()
    (tmp_path / "world.json").write_text(json.dumps({"spec": WorldSpec().model_dump()}), encoding="utf-8")
    rows = world.preference(30, random.Random(1), "h")
    exact = machine_translator(tmp_path / "world.json", 0.0, 0)
    texts = [row[f] for row in rows for f in ("prompt", "chosen", "rejected")]
    out = exact(texts)
    for row, (prompt, chosen, rejected) in zip(
        rows, zip(out[0::3], out[1::3], out[2::3], strict=True), strict=True
    ):
        agent = world.lexicon.h_index[row["prompt"].split()[3]][1]
        kind = "home" if "live" in row["prompt"] else "like"
        truth = world.home[agent] if kind == "home" else world.favourite[agent]
        assert prompt == kb_question(kind, agent, world.lexicon, "l") + "\n"
        assert chosen == kb_answer(kind, agent, truth, world.lexicon, "l")  # canonical: translationese
        assert rejected != chosen
    noisy = machine_translator(tmp_path / "world.json", 1.0, 0)(texts)
    assert noisy[0::3] == out[0::3]  # questions are translated faithfully; every statement has one error
    assert all(a != b for a, b in zip(noisy[1::3], out[1::3], strict=True))


# -- reward-model transfer, end to end on a tiny model ----------------------------------------------


def test_reward_model_transfer_splits_before_translating_and_caches_on_its_inputs(tmp_path, tiny_lm):
    from semrl.files import read_jsonl
    from semrl.sandbox.config import DemoConfig
    from semrl.sandbox.rm_claim import c6_claim
    from semrl.sandbox.side_experiments import INPUTS, cached, reward_model_transfer, rm_inputs
    from semrl.sandbox.world import World, WorldSpec

    spec = WorldSpec()
    world, rng, dest = World(spec), random.Random(0), tmp_path / "world"
    dest.mkdir()
    (dest / "world.json").write_text(json.dumps({"spec": spec.model_dump()}), encoding="utf-8")
    for language in ("h", "l"):
        rows = world.preference(20, rng, language)
        (dest / f"prefs_{language}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    config = DemoConfig(rm={"epochs": 1, "max_steps": 1, "batch_size": 8, "max_length": 64}, rm_mt_error=0.0)
    out = tmp_path / "rm"
    rm = reward_model_transfer(config, dest, tiny_lm, out)

    # three RMs with training sets of one size, judged on 6 held-out H and 6 native L pairs
    assert rm["rm_h"]["train_pairs"] == rm["rm_l"]["train_pairs"] == rm["rm_l_native"]["train_pairs"] == 14
    assert rm["test_pairs_h"] == rm["test_pairs_l"] == 6
    assert rm["ceiling"] == rm["rm_l_native"]["accuracy_on_l"]
    vectors = rm["per_pair"]
    assert {k: len(v) for k, v in vectors.items()} == {
        "rm_h_on_h": 6,
        "rm_h_on_l": 6,
        "rm_l_on_l": 6,
        "ceiling_on_l": 6,
    }
    assert sum(vectors["rm_h_on_l"]) / 6 == pytest.approx(rm["rm_h"]["accuracy_on_l"])
    assert c6_claim(rm)["status"] in ("reproduced", "not reproduced", "not testable")
    # no contamination: the machine-translated training pairs come from the H training split only
    pairs = {name: read_jsonl(out / "pairs" / f"{name}.jsonl") for name in ("h_train", "h_eval", "l_machine")}
    eval_lines = {p["source_line"] for p in pairs["h_eval"]}
    assert eval_lines and not eval_lines & {p["source_line"] for p in pairs["l_machine"]}
    assert [p["source_line"] for p in pairs["l_machine"]] == [p["source_line"] for p in pairs["h_train"]]

    marker = out / "rm-h" / "marker"
    marker.write_text("from the first run", encoding="utf-8")
    assert reward_model_transfer(config, dest, tiny_lm, out) == rm and marker.exists()  # same inputs: reused
    assert json.loads((out / INPUTS).read_text(encoding="utf-8"))["inputs"] == rm_inputs(
        config, dest, tiny_lm
    )
    # a changed MT error rate does not find the first result: the folder is cleared for a fresh run
    # (the rerun itself is the first call above; cached() is the gate reward_model_transfer uses)
    changed = config.model_copy(update={"rm_mt_error": 0.5})
    assert cached(out, "rm_transfer.json", rm_inputs(changed, dest, tiny_lm)) is None
    assert not out.exists()
