"""The hubness-corrected semantic reward (`contrast:`): what it fixes, what it keeps, its formula,
its determinism, and its config. Real MiniLM (the packaged default encoder), sentences written
here (hub_rows.py)."""

from __future__ import annotations

import random

import pytest
import torch
from hub_rows import GENERIC, PARAPHRASES, REFERENCES, audited

from conftest import cli_in_process, stderr_lines, write_jsonl
from semrl.config_files import validate
from semrl.errors import UserError
from semrl.rewards import RewardConfig, build_reward
from semrl.rewards.audit import CONSTANT_HACKABLE_SHARE, CORRUPTIONS, SAFE_RATE
from semrl.rewards.semantic import floor_shape


def semantic(contrast: dict | None = None, **spec):
    """A reward of one `semantic` term (with `contrast` when given)."""
    term = {"type": "semantic", **spec, **({"contrast": contrast} if contrast else {})}
    return build_reward(RewardConfig.model_validate({"rewards": [term]}))


def prepared(contrast: dict | None = None, rows: list[dict] | None = None, seed: int = 0, **spec):
    reward = semantic(contrast, **spec)
    reward.prepare(rows if rows is not None else [{"reference": r} for r in REFERENCES], seed)
    return reward, reward.semantic_components()[0]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_a_generic_sentence_is_a_hub_under_plain_cosine_and_not_under_contrast():
    """Against many references of one domain a vague sentence of that domain keeps more than half
    a true paraphrase's plain cosine (the constant-output attack pays); under the correction its
    score is at or below 0 on average, while the paraphrases stay well above."""
    n = len(REFERENCES)
    _, plain = prepared()
    paraphrase = mean(plain.adequacy(PARAPHRASES, {"reference": REFERENCES}))
    generic = mean(
        plain.adequacy([g for g in GENERIC for _ in range(n)], {"reference": REFERENCES * len(GENERIC)})
    )
    print("plain", round(paraphrase, 3), round(generic, 3))
    assert paraphrase > 0.9
    assert generic > CONSTANT_HACKABLE_SHARE * paraphrase  # close to a true translation, for saying nothing
    for mode in ("csls", "margin"):
        _, corrected = prepared({"mode": mode})
        paraphrase = mean(corrected.adequacy(PARAPHRASES, {"reference": REFERENCES}))
        per_generic = [mean(corrected.adequacy([g] * n, {"reference": REFERENCES})) for g in GENERIC]
        print(mode, round(paraphrase, 3), [round(v, 3) for v in per_generic])
        assert paraphrase > 0.35
        assert mean(per_generic) <= 0.0 and all(v < 0.05 for v in per_generic)


@pytest.mark.parametrize("mode", ["csls", "margin"])
def test_true_paraphrases_still_beat_the_audit_corruptions(mode):
    """With the sibling paper's penalties (the guard semrl recommends), the corrected reward ranks
    the paraphrase above each corruption on (nearly) every row and in the mean. The word shuffle is
    the encoder's own weakness (close to a bag of words), unchanged by the correction: the audit
    flags it under both rewards."""
    plain = audited(None, penalties=True)["scores"]["total"]
    result = audited(mode, penalties=True)
    total = result["scores"]["total"]
    print(mode, {k: round(v, 3) for k, v in total["mean"].items()}, total["paraphrase_above"])
    for kind in CORRUPTIONS:
        if kind == "shuffle":
            assert plain["paraphrase_above"][kind] < SAFE_RATE and total["paraphrase_above"][kind] < SAFE_RATE
            continue
        assert total["mean"]["paraphrase"] > total["mean"][kind], kind
        # margin subtracts the whole neighbour term: a truncated text, far from every bank entry,
        # gains on 2 of the 16 rows; csls subtracts half and keeps every row
        assert total["paraphrase_above"][kind] >= (1.0 if mode == "csls" else 0.85), kind
    assert result["constant"]["hackable"] is False
    assert {item["candidate"] for item in result["hackable"]} == {"shuffle"} | (
        {"truncate"} if mode == "margin" else set()
    )


def test_the_corrections_blind_spot_is_padding_and_the_length_penalty_covers_it():
    """A degraded output far from every text (the reference repeated 5 times) has a small
    neighbour term, so the bare correction credits it more than plain cosine does; the length
    penalty takes that back. Pinned so a change of formula that removes it is noticed."""
    plain = audited(None)["scores"]["total"]["paraphrase_above"]
    bare = audited("csls")["scores"]["total"]["paraphrase_above"]
    guarded = audited("csls", penalties=True)["scores"]["total"]
    assert bare["pad"] < plain["pad"] and bare["pad"] < SAFE_RATE
    assert guarded["paraphrase_above"]["pad"] == 1.0


@pytest.mark.parametrize("mode", ["csls", "margin"])
def test_the_formula_by_hand(mode):
    """s' from the encoder's vectors: the own reference (and its whitespace duplicate) and, for
    knn_y, the output itself out of the bank; k capped at the eligible entries; knn_r (csls) for
    the reference."""
    rows = [{"reference": r} for r in REFERENCES[:5]] + [{"reference": REFERENCES[0] + " "}]  # a duplicate
    k = 3
    _, reward = prepared({"mode": mode, "k": k, "bank": 512}, rows)
    bank = reward.banks["reference"]
    assert sorted(bank.texts) == sorted(REFERENCES[:5])  # the duplicate is one entry

    # a paraphrase, a generic output, the copy, another row's reference (a bank text), two items
    # whose reference is not in the bank
    completions = [PARAPHRASES[0], GENERIC[0], REFERENCES[1], REFERENCES[2], REFERENCES[6], PARAPHRASES[6]]
    references = [REFERENCES[0], REFERENCES[1], REFERENCES[1], REFERENCES[0], REFERENCES[6], REFERENCES[6]]
    got = reward.adequacy(completions, {"reference": references})

    vectors = reward.encoder.embed(bank.texts)

    def knn(text: str, *excluded: str) -> float:
        v = reward.encoder.embed([text])[0]
        sims = sorted(
            (float(v @ b) for t, b in zip(bank.texts, vectors, strict=True) if t not in excluded),
            reverse=True,
        )
        return sum(sims[:k]) / min(k, len(sims))

    for completion, reference, value in zip(completions, references, got, strict=True):
        cos = float(reward.encoder.embed([completion])[0] @ reward.encoder.embed([reference])[0])
        knn_y = knn(completion, reference, completion)
        correction = knn_y if mode == "margin" else (knn_y + knn(reference, reference)) / 2
        assert value == pytest.approx(cos - correction, abs=1e-5)

    # k larger than the eligible entries: the mean of all of them
    _, wide = prepared({"mode": "margin", "k": 50}, rows)
    value = wide.adequacy([PARAPHRASES[0]], {"reference": [REFERENCES[0]]})[0]
    v = wide.encoder.embed([PARAPHRASES[0]])[0]
    others = [float(v @ b) for t, b in zip(bank.texts, vectors, strict=True) if t != REFERENCES[0]]
    cos = float(v @ wide.encoder.embed([REFERENCES[0]])[0])
    assert value == pytest.approx(cos - sum(others) / len(others), abs=1e-5)


@pytest.mark.parametrize("mode", ["csls", "margin", "retrieval"])
def test_a_value_does_not_depend_on_the_rest_of_the_call(mode):
    """Per item, s' is a function of (completion, reference, bank): reordering the call, adding
    unrelated completions or scoring an item alone changes nothing beyond float noise."""
    reward, _ = prepared({"mode": mode})
    completions = PARAPHRASES[:6] + GENERIC + REFERENCES[:4] + [""]
    references = REFERENCES[:6] + REFERENCES[6:8] + REFERENCES[:4] + [REFERENCES[9]]
    first = reward([""] * len(completions), completions, reference=references)
    order = list(range(len(completions)))
    random.Random(1).shuffle(order)
    shuffled = reward(
        [""] * len(order), [completions[i] for i in order], reference=[references[i] for i in order]
    )
    assert [shuffled[order.index(i)] for i in range(len(order))] == pytest.approx(first, abs=1e-6)
    crowded = reward(
        [""] * (len(completions) + 10),
        completions + PARAPHRASES[6:16],
        reference=references + REFERENCES[6:16],
    )
    assert crowded[: len(completions)] == pytest.approx(first, abs=1e-6)
    alone = [reward([""], [c], reference=[r])[0] for c, r in zip(completions, references, strict=True)]
    assert alone == pytest.approx(first, abs=1e-6)
    assert first[-1] == 0.0  # an empty completion: the minimum


def test_the_bank_is_a_function_of_rows_and_seed():
    """Drawn from the sorted distinct texts with random.Random(seed) and embedded once: the rows'
    order, earlier calls and a fresh reward (a resumed stage) give the same bank, to the bit."""
    rows = [{"reference": r} for r in REFERENCES]
    _, first = prepared({"bank": 6}, rows, seed=3)
    first.adequacy(PARAPHRASES, {"reference": REFERENCES})  # calls in between change nothing
    reordered = rows[::-1]
    _, again = prepared({"bank": 6}, reordered, seed=3)
    assert again.banks["reference"].texts == first.banks["reference"].texts
    assert torch.equal(again.banks["reference"].vectors, first.banks["reference"].vectors)
    assert len(first.banks["reference"].texts) == 6 and set(first.banks["reference"].texts) <= set(REFERENCES)
    _, other = prepared({"bank": 6}, rows, seed=4)
    assert other.banks["reference"].texts != first.banks["reference"].texts


def test_contrast_against_source_and_both():
    """Each role has its own bank from its own column; `both` averages the two s'."""
    rows = [{"reference": r, "source": p} for r, p in zip(REFERENCES, PARAPHRASES, strict=True)]
    completions = PARAPHRASES[:4] + GENERIC
    refs = {"reference": REFERENCES[:6], "source": PARAPHRASES[2:8]}
    values = {}
    for against in ("reference", "source", "both"):
        _, reward = prepared({"mode": "csls"}, rows, against=against)
        values[against] = reward.adequacy(completions, refs)
    _, both = prepared({"mode": "csls"}, rows, against="both")
    assert set(both.banks["source"].texts) <= set(PARAPHRASES) and set(both.banks["reference"].texts) <= set(
        REFERENCES
    )
    assert values["both"] == pytest.approx(
        [(a + b) / 2 for a, b in zip(values["reference"], values["source"], strict=True)], abs=1e-6
    )


def test_scoring_needs_the_bank_and_a_numeric_tau():
    unprepared = semantic({"mode": "csls"})
    with pytest.raises(UserError, match=r"prepare\(rows, seed\)"):
        unprepared([""], [PARAPHRASES[0]], reference=[REFERENCES[0]])

    reward, term = prepared({"mode": "csls"}, tau="cold_start")
    assert term.spec.tau_rule == ("cold_start", 0.5) and term.tau is None
    with pytest.raises(UserError, match="tau: cold_start"):
        reward([""], [PARAPHRASES[0]], reference=[REFERENCES[0]])
    s = term.adequacy(PARAPHRASES[:3], {"reference": REFERENCES[:3]})  # what the cold start measures
    term.set_tau(0.2)
    assert reward([""] * 3, PARAPHRASES[:3], reference=REFERENCES[:3]) == pytest.approx(
        [floor_shape(v, 0.2) for v in s]
    )
    with pytest.raises(ValueError, match="below 1"):
        term.set_tau(1.0)
    rule = semantic(tau={"from": "cold_start", "quantile": 0.25, "sample": 16}).semantic_components()[0].spec
    assert rule.tau_rule == ("cold_start", 0.25) and rule.cold_start.sample == 16
    assert semantic(tau=0.3).semantic_components()[0].spec.tau_rule is None


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"contrast": {"bank": 64, "neighbours": 5}}, "rewards.0.semantic.contrast.neighbours: unknown key"),
        (
            {"contrast": {"mode": "cosine"}},
            "rewards.0.semantic.contrast.mode: Input should be 'csls', 'margin' or 'retrieval'",
        ),
        (
            {"contrast": {"bank": 0}},
            "rewards.0.semantic.contrast.bank: Input should be greater than or equal to 1",
        ),
        ({"contrast": {"k": 0}}, "rewards.0.semantic.contrast.k: Input should be greater than or equal to 1"),
        ({"tau": "coldstart"}, "rewards.0.semantic.tau.name: Input should be 'cold_start'"),
        ({"tau": {"from": "cold_start", "q": 0.5}}, "rewards.0.semantic.tau.rule.q: unknown key"),
        (
            {"tau": {"from": "cold_start", "quantile": 1.0}},
            "rewards.0.semantic.tau.rule.quantile: Input should be less than 1",
        ),
        ({"tau": {"quantile": 0.5}}, "rewards.0.semantic.tau.rule.from: Field required"),
        ({"tau": 1.0}, "rewards.0.semantic.tau.number: Input should be less than 1"),
    ],
)
def test_contrast_and_tau_config_errors(term, message):
    with pytest.raises(UserError) as caught:
        validate(RewardConfig, {"rewards": [{"type": "semantic", **term}]}, "reward.yaml")
    assert str(caught.value) == f"reward.yaml: {message}"


def test_semrl_reward_draws_the_bank_from_its_file_and_refuses_a_cold_start_tau(tmp_path):
    import json

    import yaml

    pairs = zip(PARAPHRASES + GENERIC, REFERENCES + REFERENCES[:2], strict=True)
    rows = [{"prompt": "", "completion": c, "reference": r} for c, r in pairs]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    config = tmp_path / "reward.yaml"
    config.write_text(
        yaml.safe_dump({"rewards": [{"type": "semantic", "contrast": {"k": 5}}]}), encoding="utf-8"
    )
    result = cli_in_process(
        "reward", "--config", str(config), "--input", str(data), "--output", str(tmp_path / "out.jsonl")
    )
    assert result.returncode == 0, result.stderr
    scored = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    _, term = prepared({"k": 5}, rows)
    s = term.adequacy([r["completion"] for r in rows], {"reference": [r["reference"] for r in rows]})
    expected = [floor_shape(v, 0.0) for v in s]
    assert [row["reward"] for row in scored] == pytest.approx(expected, abs=1e-6)

    config.write_text(
        yaml.safe_dump({"rewards": [{"type": "semantic", "tau": "cold_start"}]}), encoding="utf-8"
    )
    result = cli_in_process(
        "reward", "--config", str(config), "--input", str(data), "--output", str(tmp_path / "x.jsonl")
    )
    assert result.returncode == 2
    assert len(stderr_lines(result)) == 1
    assert "tau: cold_start needs a GRPO stage" in result.stderr and "give a number here" in result.stderr
    assert not (tmp_path / "x.jsonl").exists()
