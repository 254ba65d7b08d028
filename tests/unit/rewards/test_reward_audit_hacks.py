"""The collapse of a public embedding + language-ID GRPO run (English->French): copy the source,
then repeat one target-language word until the language reward pays. `semrl reward audit` builds
that candidate (`source_filler`) and the filler alone (`filler`); the sibling paper's penalties
(length > 2.5x the batch median, repeated 4-grams > 0.15) are what make it lose.

The encoder must be cross-lingual for the collapse to pay (under the English MiniLM a copied
English source is far from a Tibetan reference): a tiny encoder trained here, contrastively, on
the project's own English-Tibetan sample pairs stands in for the multilingual encoder of that run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import run_cli, sample_lines, write_jsonl
from semrl.rewards.audit import FILLER_MIN, candidates_for, filler_repeats, filler_word
from semrl.rewards.penalties import length_penalty, repeated_ngram_ratio, repetition_penalty
from semrl.text.scripts import resolve_scripts, target_share
from semrl.text.tokenize import metric_tokenizer

EN, BO, BO_HYP = sample_lines("en.txt"), sample_lines("bo.txt"), sample_lines("bo.hyp.txt")
BARE = [
    {"type": "semantic", "weight": 1.5, "tau": 0.3},
    {"type": "language", "weight": 1.0, "lang": "bo", "threshold": 0.95},
]
PENALTIES = [
    {"type": "length", "weight": -0.2, "start": 2.5, "end": 5.0},
    {"type": "repetition", "weight": -0.05, "n": 4, "threshold": 0.15},
]


@pytest.fixture(scope="module")
def crosslingual_encoder(tmp_path_factory) -> Path:
    """A ~0.1M-parameter encoder that maps each English sample onto its Tibetan translation
    (in-batch-negatives loss, 150 full-batch steps, ~5 s on 2 cores)."""
    import torch
    from sentence_transformers import SentenceTransformer, losses

    from semrl.models.tiny import TinySpec, build_tiny_encoder

    out = tmp_path_factory.mktemp("xling")
    model = SentenceTransformer(
        str(build_tiny_encoder(out / "init", EN + BO + BO_HYP, TinySpec())), device="cpu"
    )
    loss = losses.MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(150):
        value = loss([model.preprocess(EN), model.preprocess(BO)], None)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    model.eval()
    model.save(str(out / "final"))
    return out / "final"


def _audit(tmp_path: Path, encoder: Path, rewards: list[dict], gate: dict | None, name: str) -> dict:
    """`semrl reward audit --json` on the English->Tibetan rows, as a user runs it."""
    import yaml

    rewards = [dict(r, encoder=str(encoder)) if r["type"] == "semantic" else r for r in rewards]
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"rewards": rewards, "gate": gate}), encoding="utf-8")
    # a fair paraphrase differs from the reference and passes the language reward (line 7 of
    # bo.hyp.txt is deliberately code-mixed, so any gated reward zeroes it)
    tibetan = resolve_scripts("bo")
    rows = [
        {"source": e, "reference": b, "paraphrase": h}
        for e, b, h in zip(EN, BO, BO_HYP, strict=True)
        if h != b and target_share(h, tibetan) >= 0.95
    ]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = run_cli("reward", "audit", "--config", str(config), "--input", str(data), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_penalties_make_source_copy_plus_filler_lose(tmp_path, crosslingual_encoder):
    bare = _audit(tmp_path, crosslingual_encoder, BARE, None, "bare")
    guarded = _audit(
        tmp_path, crosslingual_encoder, BARE + PENALTIES, {"type": "language", "lang": "bo"}, "guarded"
    )
    for result in (bare, guarded):
        assert {"source_filler", "filler"} <= set(result["scores"]["total"]["mean"])
        language = result["scores"]["language"]["mean"]
        assert language["source"] == 0.0 and language["source_filler"] == 1.0  # the filler tips it

    # bare (1.5 semantic + 1.0 language): the collapse keeps most of the reference's reward, and
    # it beats or ties a true Tibetan paraphrase on some rows: the audit flags it
    total = bare["scores"]["total"]
    print("bare", {k: round(v, 3) for k, v in total["mean"].items()}, total["paraphrase_above"])
    assert total["relative"]["source_filler"] > 0.6
    assert total["paraphrase_above"]["source_filler"] < 0.9
    assert "source_filler" in {item["candidate"] for item in bare["hackable"]}

    # with the sibling paper's penalties and gate the copy and the paraphrase always win
    total = guarded["scores"]["total"]
    print("guarded", {k: round(v, 3) for k, v in total["mean"].items()}, total["paraphrase_above"])
    assert guarded["scores"]["length"]["mean"]["source_filler"] == 1.0  # far past 5x the batch median
    assert guarded["scores"]["repetition"]["mean"]["source_filler"] > 0.9
    assert (
        guarded["scores"]["length"]["mean"]["copy"] == 0.0 == guarded["scores"]["repetition"]["mean"]["copy"]
    )
    assert total["copy_above"]["source_filler"] == 1.0
    assert total["paraphrase_above"]["source_filler"] == 1.0
    assert "source_filler" not in {item["candidate"] for item in guarded["hackable"]}


def test_filler_is_a_common_target_word_and_just_tips_the_language_reward():
    rng = random.Random(0)
    assert candidates_for({"reference": "Le chien noir boit de l'eau, le chien dort."}, "fr", rng)[
        "filler"
    ] == (
        " ".join(["le"] * 10)
    )  # French: the most frequent word (first on ties), as long as the reference (10 words)
    assert (
        filler_word(metric_tokenizer("zh")("山上有一匹白马。"), resolve_scripts("zh")) == "山"
    )  # first on ties
    tibetan = resolve_scripts("bo")
    word = filler_word(metric_tokenizer("bo")(BO[1]), tibetan)
    repeats = filler_repeats(EN[1], word, tibetan, 0.95)
    text = EN[1] + " " + "\u0f0b".join([word] * repeats)
    assert (
        target_share(text, tibetan)
        >= 0.95
        > target_share(EN[1] + " " + "\u0f0b".join([word] * (repeats - 1)), tibetan)
    )
    # English source, French target: one script, so the source alone already passes; the floor keeps the
    # filler
    assert filler_repeats(EN[1], "le", resolve_scripts("fr"), 0.95) == FILLER_MIN


def test_repetition_ratio_is_trls_and_where_ours_differs():
    """The ratio is TRL's `get_repetition_penalty_reward` (no copy); the threshold and the unit are
    the paper's. The numbers quoted in rewards/penalties.py's docstring are measured here."""
    from trl.rewards import get_repetition_penalty_reward, get_soft_overlong_punishment

    def trl_ratio(ids: list[int]) -> float:
        return 0.0 - get_repetition_penalty_reward(ngram_size=4, max_penalty=-1.0)([ids])[0]

    rng = random.Random(0)
    for _ in range(500):
        tokens = [rng.choice("ab") for _ in range(rng.randint(0, 12))]
        grams = [tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3)]
        assert repeated_ngram_ratio(tokens) == (1.0 - len(set(grams)) / len(grams) if grams else 0.0)

    # threshold form: natural repetition (ratio <= 0.15) costs nothing here, TRL charges it
    tokens = "a b c d e f g h i j a b c d".split()
    assert repeated_ngram_ratio(tokens) == pytest.approx(1 / 11) and repetition_penalty(tokens) == 0.0
    # unit: syllables, not bytes. No syllable 4-gram repeats in our sentence; its UTF-8 bytes do
    sentence = "ཉི་མ་ཤར་སོང་། རྟ་དཀར་པོ་རི་ལ་ཡོད། ཁྱི་ནག་པོས་ཆུ་འཐུང་གི་འདུག"
    assert repeated_ngram_ratio(metric_tokenizer("bo")(sentence)) == 0.0
    assert trl_ratio(list(sentence.encode())) == pytest.approx(0.387, abs=0.005)
    twice = "ཁྱི་ནག་པོས་ཆུ་འཐུང་གི་འདུག། " * 2
    assert repeated_ngram_ratio(metric_tokenizer("bo")(twice)) == pytest.approx(0.364, abs=0.005)
    assert trl_ratio(list(twice.encode())) == pytest.approx(0.627, abs=0.005)
    from semrl.models.tiny import train_tokenizer

    bpe = train_tokenizer(EN + BO + sample_lines("zh.txt"), 512)
    assert trl_ratio(bpe(twice, add_special_tokens=False)["input_ids"]) == pytest.approx(0.463, abs=0.005)

    # length: the paper's thresholds follow the median; TRL's are absolute
    lengths = [10, 10, 10, 60]
    assert [length_penalty(n, 10) for n in lengths] == [0.0, 0.0, 0.0, 1.0]
    overlong = get_soft_overlong_punishment(max_completion_len=256, soft_punish_cache=64)
    assert overlong([[0] * n for n in lengths]) == [0.0] * 4
    assert overlong([[0] * 300]) == [-1.0] and length_penalty(300, 300) == 0.0
