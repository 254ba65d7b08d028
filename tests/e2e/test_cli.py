"""The commands end to end, through the real `semrl` executable."""

from __future__ import annotations

import json

import pytest
from sacrebleu.metrics import BLEU, CHRF

from conftest import SAMPLES, run_cli, sample_lines, write_jsonl, write_lines
from semrl.text import syllables


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in (
        "score",
        "reward",
        "demo",
        "tour",
        "run",
        "train",
        "eval",
        "report",
        "transfer",
        "model",
        "export",
    ):
        assert command in result.stdout


def test_score_json_equals_sacrebleu_for_chinese():
    result = run_cli(
        "score",
        "--hyp",
        str(SAMPLES / "zh.hyp.txt"),
        "--ref",
        str(SAMPLES / "zh.txt"),
        "--lang",
        "zh",
        "--metrics",
        "bleu,chrf,rougeL,lang",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    hyps, refs = sample_lines("zh.hyp.txt"), sample_lines("zh.txt")
    assert out["bleu"] == pytest.approx(BLEU(tokenize="zh").corpus_score(hyps, [refs]).score)
    assert out["chrf"] == pytest.approx(CHRF(word_order=2).corpus_score(hyps, [refs]).score)
    assert out["lang"] == pytest.approx(11 / 12)
    assert out["n"] == 12
    assert set(out["signatures"]) == {"bleu", "chrf", "rougeL", "lang"}
    assert 0 <= out["rougeL"] <= 100


def test_score_tibetan_and_similarity_to_source(tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", sample_lines("en.paraphrase.txt"))
    result = run_cli(
        "score",
        "--hyp",
        str(hyp),
        "--ref",
        str(SAMPLES / "en.txt"),
        "--src",
        str(SAMPLES / "en.txt"),
        "--lang",
        "en",
        "--metrics",
        "sim,bleu",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"sim", "sim_src", "bleu", "n", "signatures"}
    assert 0.5 < out["sim"] <= 1.0 and out["sim"] == pytest.approx(out["sim_src"])

    bo = run_cli(
        "score",
        "--hyp",
        str(SAMPLES / "bo.hyp.txt"),
        "--ref",
        str(SAMPLES / "bo.txt"),
        "--lang",
        "bo",
        "--metrics",
        "bleu",
        "--json",
    )
    spaced = lambda lines: [" ".join(syllables(t)) for t in lines]  # noqa: E731
    expected = BLEU(tokenize="none").corpus_score(
        spaced(sample_lines("bo.hyp.txt")), [spaced(sample_lines("bo.txt"))]
    )
    assert json.loads(bo.stdout)["bleu"] == pytest.approx(expected.score)


def test_score_table_is_readable():
    result = run_cli(
        "score", "--hyp", str(SAMPLES / "bo.hyp.txt"), "--ref", str(SAMPLES / "bo.txt"), "--lang", "bo"
    )
    assert result.returncode == 0
    assert "BLEU" in result.stdout and "language consistency" in result.stdout


def test_reward_command_scores_rows(tmp_path):
    config = tmp_path / "reward.yaml"
    config.write_text(
        "rewards:\n"
        "  - {type: semantic, weight: 1.5, encoder: default, against: reference, tau: 0.3}\n"
        "  - {type: language, weight: 1.0, lang: en}\n"
        "gate: null\n"
        "columns: {reference: ref_text}\n",
        encoding="utf-8",
    )
    en, para, bo = sample_lines("en.txt"), sample_lines("en.paraphrase.txt"), sample_lines("bo.txt")
    rows = [
        {"id": i, "prompt": f"Translate: {b}", "completion": c, "ref_text": e}
        for i, (b, c, e) in enumerate(zip(bo[:3], [para[0], bo[1], ""], en[:3], strict=True))
    ]
    inp = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "scored.jsonl"
    result = run_cli("reward", "--config", str(config), "--input", str(inp), "--output", str(out))
    assert result.returncode == 0, result.stderr
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in scored] == [0, 1, 2]
    assert all(set(row["components"]) == {"semantic", "language"} for row in scored)
    for row in scored:
        c = row["components"]
        assert row["reward"] == pytest.approx(1.5 * c["semantic"] + 1.0 * c["language"])
    assert scored[0]["components"]["language"] == 1.0 and scored[1]["components"]["language"] == 0.0
    assert scored[2]["reward"] == 0.0


def test_reward_batch_size_changes_batch_relative_terms(tmp_path):
    config = tmp_path / "reward.yaml"
    config.write_text("rewards:\n  - {type: length, weight: -1.0, lang: en}\n", encoding="utf-8")
    long = " ".join(["word"] * 20)
    rows = [{"prompt": "", "completion": c} for c in ["a b", "a b", "a b", long]]
    inp = write_jsonl(tmp_path / "rows.jsonl", rows)
    whole, pairs = tmp_path / "whole.jsonl", tmp_path / "pairs.jsonl"
    assert (
        run_cli("reward", "--config", str(config), "--input", str(inp), "--output", str(whole)).returncode
        == 0
    )
    assert (
        run_cli(
            "reward",
            "--config",
            str(config),
            "--input",
            str(inp),
            "--output",
            str(pairs),
            "--batch-size",
            "2",
        ).returncode
        == 0
    )
    as_one = [json.loads(line)["reward"] for line in whole.read_text().splitlines()]
    as_two = [json.loads(line)["reward"] for line in pairs.read_text().splitlines()]
    assert as_one == [0.0, 0.0, 0.0, -1.0]  # one batch: median 2 tokens, 20 tokens is 10x
    assert as_two == [0.0, 0.0, 0.0, 0.0]  # batches of two: median of (2, 20) is 11, 20 < 2.5x


def test_audit_shows_language_gate_closing_code_mixing(tmp_path):
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"reference": e, "source": b, "paraphrase": p}
            for e, b, p in zip(
                sample_lines("en.txt"), sample_lines("bo.txt"), sample_lines("en.paraphrase.txt"), strict=True
            )
        ],
    )
    plain = run_cli(
        "reward",
        "audit",
        "--config",
        str(SAMPLES / "reward-semantic-only.yaml"),
        "--input",
        str(pairs),
        "--json",
    )
    guarded_path = tmp_path / "audit.json"
    guarded = run_cli(
        "reward",
        "audit",
        "--config",
        str(SAMPLES / "reward-guarded.yaml"),
        "--input",
        str(pairs),
        "--output",
        str(guarded_path),
    )
    assert plain.returncode == 0 and guarded.returncode == 0, plain.stderr + guarded.stderr
    plain_total = json.loads(plain.stdout)["scores"]["total"]
    guarded_json = json.loads(guarded_path.read_text(encoding="utf-8"))
    guarded_total = guarded_json["scores"]["total"]
    assert set(plain_total["mean"]) == {
        "copy",
        "paraphrase",
        "shuffle",
        "truncate",
        "source",
        "mix",
        "pad",
        "source_filler",
        "filler",
        "constant",
        "empty",
    }
    assert plain_total["mean"]["copy"] == pytest.approx(1.0, abs=1e-4)
    assert plain_total["mean"]["empty"] == 0.0
    assert plain_total["mean"]["mix"] > 0.0  # the semantic reward alone credits code-mixing
    assert guarded_total["mean"]["mix"] == 0.0 and guarded_total["mean"]["source"] == 0.0
    assert guarded_total["copy_above"]["mix"] == 1.0
    assert guarded_json["scores"]["length"]["mean"]["pad"] > 0.5
    assert "reward audit" in guarded.stdout


def test_tour_runs_offline(tmp_path):
    result = run_cli("tour", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text(encoding="utf-8"))
    assert summary["score_bo"]["lang"] == pytest.approx(11 / 12)
    assert summary["audit"]["guarded"]["scores"]["total"]["mean"]["mix"] == 0.0
    assert (tmp_path / "demo" / "scored.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["demo", "--seeds", "0"], "semrl demo: Invalid value for '--seeds'"),
        (["run", "exp.yaml", "--bogus"], "semrl run: No such option: --bogus"),
        (["score", "--lang", "en"], "semrl score: Missing option '--hyp'"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
)
def test_a_usage_error_is_one_line_with_exit_code_2(args, fragment):
    """A wrong option, value or command is bad input like any other: one line, exit 2, no box."""
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
    assert fragment in lines[0] and lines[0].endswith("--help)"), lines[0]
