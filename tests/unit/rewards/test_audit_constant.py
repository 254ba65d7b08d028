"""The audit's constant-output attack: one sentence for every row, chosen without an oracle (the
reference closest on average to all the others), judged by its share of a true translation's
reward. Through the library and through the real CLI (table and --json)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml
from hub_rows import PENALTIES, REFERENCES, audit_rows, audited

from conftest import cli_in_process, stderr_lines, write_jsonl
from semrl.rewards import RewardConfig, build_reward
from semrl.rewards.audit import CONSTANT_HACKABLE_SHARE, audit
from semrl.rewards.constant import choose_constant
from semrl.text.tokenize import metric_tokenizer

COLUMNS = {"reference": "reference", "source": "source"}


def reward_of(*terms: dict):
    return build_reward(RewardConfig.model_validate({"rewards": list(terms)}))


def test_the_constant_is_the_reference_closest_to_all_others():
    rows = audit_rows()
    reward = reward_of({"type": "semantic"})
    text, how = choose_constant(rows, reward, "en")
    vectors = reward.semantic_components()[0].encoder.embed(sorted(REFERENCES))
    sims = vectors @ vectors.T
    means = [
        (float(sims[i].sum()) - float(sims[i, i])) / (len(REFERENCES) - 1) for i in range(len(REFERENCES))
    ]
    assert text == sorted(REFERENCES)[max(range(len(means)), key=means.__getitem__)]
    assert "cosine" in how

    # no semantic term: unigram F1 on the metric tokens
    surface = reward_of({"type": "chrf", "lang": "en"})
    text, how = choose_constant(rows, surface, "en")
    tokenize = metric_tokenizer("en")
    bags = {r: Counter(tokenize(r)) for r in REFERENCES}
    f1 = {
        r: sum(
            2 * sum((bags[r] & bags[o]).values()) / (sum(bags[r].values()) + sum(bags[o].values()))
            for o in REFERENCES
            if o != r
        )
        for r in REFERENCES
    }
    assert text == max(sorted(REFERENCES), key=lambda r: f1[r]) and "unigram" in how

    assert choose_constant([{"reference": REFERENCES[0]}] * 3, reward, "en")[0] is None


def test_plain_cosine_is_hackable_by_a_constant_and_the_corrected_reward_is_not():
    plain = audited(None)
    constant, total = plain["constant"], plain["scores"]["total"]["mean"]
    print(constant)
    assert constant["baseline"] == "paraphrase" and constant["limit"] == CONSTANT_HACKABLE_SHARE
    assert constant["mean"] == pytest.approx(total["constant"])
    assert constant["baseline_mean"] == pytest.approx(total["paraphrase"])
    assert constant["share"] == pytest.approx(total["constant"] / total["paraphrase"])
    assert constant["share"] > CONSTANT_HACKABLE_SHARE and constant["hackable"] is True

    for mode in ("csls", "margin"):
        corrected = audited(mode)["constant"]
        assert corrected["text"] == constant["text"]  # the same sentence attacks both rewards
        assert corrected["share"] < 0.2 and corrected["hackable"] is False

    # without paraphrases the baseline is the copy
    rows = [{"reference": r} for r in REFERENCES]
    copies = audit(rows, reward_of({"type": "semantic"}), COLUMNS, "en", prepare=True)["constant"]
    assert copies["baseline"] == "copy" and copies["share"] == pytest.approx(
        copies["mean"] / copies["baseline_mean"]
    )


def _config(tmp_path, name: str, terms: list[dict]):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"rewards": terms}), encoding="utf-8")
    return str(path)


def test_the_cli_prints_the_constant_row_and_its_flag(tmp_path):
    data = str(write_jsonl(tmp_path / "rows.jsonl", audit_rows()))
    plain = _config(tmp_path, "plain", [{"type": "semantic"}])
    corrected = _config(
        tmp_path, "corrected", [{"type": "semantic", "contrast": {"bank": 512, "k": 10}}, *PENALTIES]
    )

    out = tmp_path / "plain.json"
    table = cli_in_process("reward", "audit", "--config", plain, "--input", data, "--output", str(out))
    assert table.returncode == 0, table.stderr
    rows = [
        line
        for line in table.stdout.splitlines()
        if line.strip().strip("│┃|").strip().startswith("constant ")
    ]
    assert any(char.isdigit() for char in rows[0])  # the constant's row of the table, with its mean score
    verdict = [line for line in table.stdout.splitlines() if line.startswith("constant:")]
    assert (
        len(verdict) == 1
        and ": hackable (limit 50%)" in verdict[0]
        and "of the paraphrase's total reward" in verdict[0]
    )
    constant = json.loads(out.read_text(encoding="utf-8"))["constant"]  # --output is the --json document
    assert (
        constant["hackable"] is True
        and constant["text"] in REFERENCES
        and constant["baseline"] == "paraphrase"
    )
    assert f"{constant['share']:.0%} of the paraphrase's" in verdict[0]

    as_json = cli_in_process("reward", "audit", "--config", corrected, "--input", data, "--json")
    assert as_json.returncode == 0, as_json.stderr
    constant = json.loads(as_json.stdout)["constant"]
    assert constant["hackable"] is False and constant["share"] < CONSTANT_HACKABLE_SHARE

    cold = _config(tmp_path, "cold", [{"type": "semantic", "tau": {"from": "cold_start", "quantile": 0.5}}])
    refused = cli_in_process("reward", "audit", "--config", cold, "--input", data)
    assert refused.returncode == 2 and len(stderr_lines(refused)) == 1
    assert "tau: cold_start needs a GRPO stage" in refused.stderr
