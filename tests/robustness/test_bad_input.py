"""Bad input to `score` and `reward`: exit 2, one line naming file and line/field, no traceback,
no output file left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, run_cli, write_jsonl, write_lines

GOOD_REWARD = (
    "rewards:\n  - {type: language, weight: 1.0, lang: en}\n  - {type: chrf, weight: 1.0, lang: en}\n"
)


def assert_user_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---- score ---------------------------------------------------------------------------------


def test_score_unequal_line_counts(tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", ["a", "b", "c"])
    ref = write_lines(tmp_path / "ref.txt", ["a", "b"])
    assert_user_error(
        run_cli("score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en"), "hyp.txt", "3 lines", "2"
    )


def test_score_non_utf8(tmp_path):
    hyp = tmp_path / "hyp.txt"
    hyp.write_bytes(b"fine\nbro\xffken\n")
    ref = write_lines(tmp_path / "ref.txt", ["a", "b"])
    assert_user_error(
        run_cli("score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en"), "hyp.txt", "line 2", "UTF-8"
    )


def test_score_empty_reference_line(tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", ["a", "b"])
    ref = write_lines(tmp_path / "ref.txt", ["a", "  "])
    assert_user_error(
        run_cli("score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en"), "ref.txt", "line 2", "empty"
    )


def test_score_reference_line_of_invisible_characters(tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", ["我们每天去学校。", "这水很凉。"])
    ref = write_lines(tmp_path / "ref.txt", ["我们每天去学校。", "\u200b\ufeff"])
    assert_user_error(
        run_cli("score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "zh"), "ref.txt", "line 2", "empty"
    )


def test_score_missing_file_and_unknown_metric_and_language(tmp_path):
    ref = write_lines(tmp_path / "ref.txt", ["a"])
    assert_user_error(
        run_cli("score", "--hyp", str(tmp_path / "nope.txt"), "--ref", str(ref), "--lang", "en"),
        "nope.txt",
        "not found",
    )
    assert_user_error(
        run_cli("score", "--hyp", str(ref), "--ref", str(ref), "--lang", "en", "--metrics", "bleu,meteor"),
        "--metrics",
        "meteor",
    )
    assert_user_error(
        run_cli("score", "--hyp", str(ref), "--ref", str(ref), "--lang", "xx", "--metrics", "lang"),
        "--lang",
        "xx",
    )


def test_score_missing_encoder_path(tmp_path):
    ref = write_lines(tmp_path / "ref.txt", ["a"])
    assert_user_error(
        run_cli(
            "score",
            "--hyp",
            str(ref),
            "--ref",
            str(ref),
            "--lang",
            "en",
            "--metrics",
            "sim",
            "--encoder",
            str(tmp_path / "no_encoder"),
        ),
        "no_encoder",
        "does not exist",
    )


def test_score_encoder_not_cached_offline(tmp_path):
    ref = write_lines(tmp_path / "ref.txt", ["a"])
    assert_user_error(
        run_cli(
            "score",
            "--hyp",
            str(ref),
            "--ref",
            str(ref),
            "--lang",
            "en",
            "--metrics",
            "sim",
            "--encoder",
            "nobody/no-such-encoder",
        ),
        "nobody/no-such-encoder",
        "not in the Hugging Face cache",
    )


# ---- reward --------------------------------------------------------------------------------


def _reward(tmp_path: Path, config_text: str, rows_text: str | bytes):
    config = tmp_path / "reward.yaml"
    config.write_text(config_text, encoding="utf-8")
    rows = tmp_path / "rows.jsonl"
    if isinstance(rows_text, bytes):
        rows.write_bytes(rows_text)
    else:
        rows.write_text(rows_text, encoding="utf-8")
    out = tmp_path / "out" / "scored.jsonl"
    result = run_cli("reward", "--config", str(config), "--input", str(rows), "--output", str(out))
    assert not out.exists(), "no output may be left behind on bad input"
    return result


GOOD_ROW = json.dumps({"prompt": "p", "completion": "the cat", "reference": "the cat"})

BAD_REWARD_CASES = {
    "invalid_jsonl_line": (
        GOOD_REWARD,
        GOOD_ROW + '\n{"prompt": "p", "completion": \n',
        ["rows.jsonl", "line 2", "invalid JSON"],
    ),
    "not_an_object": (GOOD_REWARD, GOOD_ROW + "\n[1, 2]\n", ["rows.jsonl", "line 2", "JSON object"]),
    "missing_reference": (
        GOOD_REWARD,
        GOOD_ROW + "\n" + json.dumps({"prompt": "p", "completion": "c"}) + "\n",
        ["rows.jsonl", "line 2", "'reference'"],
    ),
    "missing_completion": (
        GOOD_REWARD,
        json.dumps({"prompt": "p", "reference": "r"}) + "\n",
        ["line 1", "'completion'"],
    ),
    "reference_wrong_type": (
        GOOD_REWARD,
        json.dumps({"prompt": "p", "completion": "c", "reference": 3}) + "\n",
        ["line 1", "'reference'", "string"],
    ),
    "empty_reference": (
        GOOD_REWARD,
        json.dumps({"prompt": "p", "completion": "c", "reference": " "}) + "\n",
        ["line 1", "'reference'", "empty"],
    ),
    "non_utf8": (GOOD_REWARD, GOOD_ROW.encode() + b"\n\xfe\xff\n", ["rows.jsonl", "line 2", "UTF-8"]),
    "empty_file": (GOOD_REWARD, "", ["rows.jsonl", "no rows"]),
    "unknown_reward_type": (
        "rewards:\n  - {type: meteor, weight: 1.0}\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "rewards.0", "meteor"],
    ),
    "bad_yaml": (
        "rewards:\n  - {type: language, lang: en\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "line", "invalid YAML"],
    ),
    "unknown_key": (
        "rewards:\n  - {type: language, lang: en, treshold: 0.9}\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "rewards.0.language.treshold", "unknown key"],
    ),
    "unknown_top_level_key": (
        "rewards:\n  - {type: language, lang: en}\nrewrds: []\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "rewrds", "unknown key"],
    ),
    "wrong_type": (
        "rewards:\n  - {type: language, lang: en, threshold: high}\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "threshold"],
    ),
    "positive_penalty": (
        "rewards:\n  - {type: length, weight: 0.2}\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "negative weight"],
    ),
    "not_a_mapping": ("- just\n- a list\n", GOOD_ROW + "\n", ["reward.yaml", "mapping"]),
    "missing_encoder": (
        "rewards:\n  - {type: semantic, encoder: ./missing-encoder}\n",
        GOOD_ROW + "\n",
        ["missing-encoder", "does not exist"],
    ),
    "missing_reward_model": (
        "rewards:\n  - {type: reward_model, model: /no/such/rm}\n",
        GOOD_ROW + "\n",
        ["/no/such/rm", "not a local model folder"],
    ),
    "unknown_language": (
        "rewards:\n  - {type: language, lang: xx}\n",
        GOOD_ROW + "\n",
        ["reward.yaml", "xx"],
    ),
    "invisible_only_reference": (
        GOOD_REWARD,
        GOOD_ROW + "\n" + json.dumps({"prompt": "p", "completion": "c", "reference": "\u200b\u2060"}) + "\n",
        ["rows.jsonl", "line 2", "'reference' is empty (it holds only invisible characters)"],
    ),
    "lone_surrogate": (
        GOOD_REWARD,
        GOOD_ROW + '\n{"prompt": "p", "completion": "\\ud800", "reference": "the cat"}\n',
        ["rows.jsonl", "line 2", "field 'completion' holds a lone surrogate (\\ud800)"],
    ),
    "duplicate_key": (
        GOOD_REWARD,
        '{"prompt": "p", "completion": "a dog", "reference": "the cat", "completion": "the cat"}\n',
        ["rows.jsonl", "line 1", "duplicate key 'completion'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REWARD_CASES))
def test_reward_bad_input(tmp_path, case):
    config_text, rows_text, fragments = BAD_REWARD_CASES[case]
    assert_user_error(_reward(tmp_path, config_text, rows_text), *fragments)


def test_reward_missing_config_file(tmp_path):
    rows = write_jsonl(tmp_path / "rows.jsonl", [json.loads(GOOD_ROW)])
    out = tmp_path / "scored.jsonl"
    result = run_cli(
        "reward", "--config", str(tmp_path / "missing.yaml"), "--input", str(rows), "--output", str(out)
    )
    assert_user_error(result, "missing.yaml", "not found")
    assert not out.exists()


def test_reward_bad_batch_size(tmp_path):
    rows = write_jsonl(tmp_path / "rows.jsonl", [json.loads(GOOD_ROW)])
    config = tmp_path / "r.yaml"
    config.write_text(GOOD_REWARD, encoding="utf-8")
    result = run_cli(
        "reward",
        "--config",
        str(config),
        "--input",
        str(rows),
        "--output",
        str(tmp_path / "o.jsonl"),
        "--batch-size",
        "0",
    )
    assert_user_error(result, "--batch-size")


def test_audit_bad_row(tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"reference": "a b c"}, {"source": "x"}])
    result = run_cli(
        "reward", "audit", "--config", str(SAMPLES / "reward-bo-surface.yaml"), "--input", str(pairs)
    )
    assert_user_error(result, "pairs.jsonl", "line 2", "'reference'")


@pytest.mark.parametrize("command", [["run"], ["train", "sft", "--config"]])
def test_a_bad_config_is_refused_before_torch_loads(command):
    """Config errors are the commonest mistake: the answer should take a second, not the 10 s it
    takes to import torch and transformers (a fresh interpreter: this test process has them loaded)."""
    bad = str(ROOT / "tests" / "data" / "bad" / "arm_name_dot.yaml")
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['semrl', *{command!r}, {bad!r}]\n"
        "try:\n"
        "    runpy.run_module('semrl', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "[]"], (result.stdout, result.stderr)
    assert "arms.0.name" in result.stderr
