"""`python -m semrl` as a user starts it, a new interpreter per command family.

The other tests run commands in the test process (conftest.run_cli), so these are the checks that
the package starts on its own: `semrl/__main__.py`, the entry point, each command group's options
and help, exit codes and the split of stdout and stderr of a real process."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import SAMPLES, python_m_semrl

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
# every top-level command and command group of `semrl --help`
FAMILIES = {
    "score": "Corpus metrics",
    "run": "Run every arm",
    "train": "Train one stage",
    "eval": "Task metrics",
    "transfer": "Few-shot transfer",
    "report": "results.json",
    "export": "One folder to upload",
    "demo": "offline synthetic world",
    "tour": "quick walk",
    "reward": "Score rows",
    "rm": "Reward models across languages",
    "model": "Build models locally",
}


def start(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        python_m_semrl(list(args)), env=ENV, capture_output=True, text=True, timeout=timeout
    )


def test_the_top_level_help_lists_every_family_this_file_starts():
    result = start("--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m semrl" in result.stdout
    listed = {
        line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and "│" in line[2:]
    }
    assert set(FAMILIES) <= listed, listed
    assert result.stderr == ""


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_command_family_starts_in_a_new_interpreter(family):
    result = start(family, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: python -m semrl {family}" in result.stdout
    assert FAMILIES[family] in " ".join(result.stdout.split())
    assert result.stderr == ""


def test_a_real_command_runs_to_its_exit_code_and_a_user_error_exits_2(tmp_path):
    """A whole command in a new interpreter (libraries imported by it, output on its own pipes), and
    main()'s one-line error with exit code 2."""
    en = SAMPLES / "en.txt"
    result = start("score", "--hyp", str(en), "--ref", str(en), "--lang", "en", "--metrics", "bleu", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["bleu"] == pytest.approx(100.0)
    missing = start("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.startswith("semrl: error: ") and "nope.yaml" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.stdout == ""
    version = start("--version")
    assert version.returncode == 0 and version.stdout.startswith("semrl ")
