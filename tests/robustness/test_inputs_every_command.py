"""Input checks that hold for every command, through the real CLI: output paths are checked before
any work (a folder where a file goes, a file where a folder goes, a model folder holding the user's
own files), every float option refuses NaN and infinity, and text that is empty once repaired is
empty in every file format. Each refusal: exit 2, one line naming the option or file, nothing written."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import typer

from conftest import ROOT, cli_in_process, experiment, run_cli, stderr_lines, write_jsonl, write_lines

GOOD_REWARD = "rewards:\n  - {type: chrf, weight: 1.0, lang: zh}\n"
ROW = {"prompt": "ཆུ་འདི་གྲང་མོ་འདུག", "completion": "这水很凉。", "reference": "这水很凉。"}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: what "nothing written" is checked against."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(result, *fragments: str) -> None:
    lines = stderr_lines(result)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---- output paths ------------------------------------------------------------------------------


def _inputs(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "reward.yaml"
    config.write_text(GOOD_REWARD, encoding="utf-8")
    rows = write_jsonl(tmp_path / "rows.jsonl", [ROW])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"reference": "我们每天去学校。"}])
    folder = tmp_path / "a_folder"
    folder.mkdir()
    a_file = write_lines(tmp_path / "a_file.txt", ["这不是文件夹。"])
    return {"config": config, "rows": rows, "pairs": pairs, "folder": folder, "file": a_file}


# (command, where the output goes, what the one line says); {folder} is an existing folder,
# {file} an existing file
OUTPUT_CASES = {
    "reward_output_is_a_folder": (
        ["reward", "--config", "{config}", "--input", "{rows}", "--output", "{folder}"],
        ["--output", "a_folder: is a folder; give a file name"],
    ),
    "reward_output_under_a_file": (
        ["reward", "--config", "{config}", "--input", "{rows}", "--output", "{file}/scored.jsonl"],
        ["--output", "a_file.txt is a file, so the file cannot be made under it"],
    ),
    "reward_audit_output_is_a_folder": (
        ["reward", "audit", "--config", "{config}", "--input", "{pairs}", "--output", "{folder}"],
        ["--output", "a_folder: is a folder"],
    ),
    "best_of_n_out_is_a_folder": (
        ["rm", "best-of-n", "--model", "no/such-rm", "--candidates", "{rows}", "--out", "{folder}"],
        ["--out", "a_folder: is a folder"],
    ),
    "eval_out_is_a_file": (
        ["eval", "--model", "no/such-model", "--config", "{config}", "--out", "{file}"],
        ["--out", "a_file.txt: is a file, not a folder"],
    ),
    "rm_transfer_out_is_a_file": (
        ["rm", "transfer", "--config", "{config}", "--out", "{file}"],
        ["--out", "a_file.txt: is a file, not a folder"],
    ),
    "transfer_out_is_a_file": (
        ["transfer", "--config", "{config}", "--from", "a=x", "--from", "b=y", "--out", "{file}"],
        ["--out", "a_file.txt: is a file, not a folder"],
    ),
    "demo_out_is_a_file": (["demo", "--out", "{file}"], ["--out", "a_file.txt: is a file, not a folder"]),
    "tour_out_is_a_file": (["tour", "--out", "{file}"], ["--out", "a_file.txt: is a file, not a folder"]),
    "model_tiny_out_is_a_file": (
        ["model", "tiny", "--out", "{file}"],
        ["--out", "a_file.txt: is a file, not a folder"],
    ),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_an_unusable_output_path_is_refused_before_any_work(tmp_path, case):
    args, fragments = OUTPUT_CASES[case]
    paths = {name: str(path) for name, path in _inputs(tmp_path).items()}
    before = snapshot(tmp_path)
    assert_refused(cli_in_process(*(arg.format(**paths) for arg in args)), *fragments)
    assert snapshot(tmp_path) == before


def test_model_tiny_keeps_out_of_a_folder_of_the_users_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}\n', encoding="utf-8")
    (folder / "notes.txt").write_text("ང་ཚོའི་ཟིན་བྲིས།\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = run_cli("model", "tiny", "--out", str(folder), "--size", "tiny")
    assert_refused(result, "--out", "mine: already exists and is not empty")
    assert snapshot(tmp_path) == before


def test_reward_output_folder_is_refused_in_a_fresh_process(tmp_path):
    """A folder as --output, as a user types it: one line, not an IsADirectoryError traceback."""
    paths = _inputs(tmp_path)
    result = run_cli(
        "reward", "--config", str(paths["config"]), "--input", str(paths["rows"]), "--output", str(tmp_path)
    )
    assert_refused(result, "--output", "is a folder")


# ---- numbers on the command line -----------------------------------------------------------------


def _holds_float(annotation: object) -> bool:
    """float, float | None, list[float], ..."""
    return annotation is float or any(_holds_float(arg) for arg in typing.get_args(annotation))


def _float_options(command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(command path, flag) of every float option in the command tree."""
    found = [
        (path, param.opts[0])
        for param in command.params
        if param.param_type_name == "option" and _holds_float(param.type_descriptor.annotation)
    ]
    for name, sub in getattr(command, "commands", {}).items():
        found += _float_options(sub, (*path, name))
    return found


FLOAT_OPTIONS = _float_options(typer.main.get_command(__import__("semrl.cli").cli.app))


def test_the_float_options_are_found():
    assert (("score",), "--threshold") in FLOAT_OPTIONS


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize("option", FLOAT_OPTIONS, ids=lambda o: " ".join((*o[0], o[1])))
def test_every_float_option_refuses_non_finite_numbers(option, value):
    path, flag = option
    assert_refused(cli_in_process(*path, flag, value), f"{flag}: ", "is not a finite number")


def test_score_threshold_nan_is_refused(tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", ["我们每天去学校。"])
    result = run_cli(
        "score",
        "--hyp",
        str(hyp),
        "--ref",
        str(hyp),
        "--lang",
        "zh",
        "--metrics",
        "lang",
        "--threshold",
        "nan",
    )
    assert_refused(result, "--threshold: nan is not a finite number")
    assert result.stdout == ""


# ---- text empty once repaired, in every format ----------------------------------------------------


def test_parquet_text_of_invisible_characters_is_empty(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"source": "ང་ཚོ་ཉིན་རེ་སློབ་གྲྭར་འགྲོ།", "reference": "我们每天去学校。"},
        {"source": "ཆུ་འདི་གྲང་མོ་འདུག", "reference": "\u2060\u200b"},
    ]
    data = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    result = cli_in_process(
        "run", str(experiment(tmp_path, data)), "--dry-run", "--out", str(tmp_path / "run")
    )
    assert_refused(result, "rows.parquet: line 2: column 'reference' is empty (it holds only invisible")
    assert not (tmp_path / "run").exists()


def test_tsv_text_of_invisible_characters_is_empty(tmp_path):
    data = write_lines(
        tmp_path / "rows.tsv",
        ["source\treference", "\u200b\t这水很凉。", "ཁྱོད་ག་རེ་བྱེད་ཀྱི་ཡོད།\t你在做什么？"],
    )
    result = cli_in_process(
        "run", str(experiment(tmp_path, data)), "--dry-run", "--out", str(tmp_path / "run")
    )
    assert_refused(result, "rows.tsv: line 2: column 'source' is empty (it holds only invisible characters)")


def test_a_lone_surrogate_is_refused_before_the_run_folder_is_made(tmp_path):
    """A lone surrogate in the data is refused before manifest.json and config.yaml are written."""
    bad = ROOT / "tests" / "data" / "bad" / "lone_surrogate.jsonl"
    out = tmp_path / "run"
    result = run_cli("run", str(experiment(tmp_path, bad)), "--out", str(out))
    assert_refused(result, "lone_surrogate.jsonl: line 2: field 'source' holds a lone surrogate")
    assert not out.exists()


def test_encoder_pairs_of_invisible_characters_are_empty(tmp_path):
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"anchor": "ཆུ་འདི་གྲང་མོ་འདུག", "positive": "这水很凉。"},
            {"anchor": "ཁྱོད་ག་རེ་བྱེད་ཀྱི་ཡོད།", "positive": "\u200b\u200b"},
            {"anchor": "ང་ཚོ་ཉིན་རེ་སློབ་གྲྭར་འགྲོ།", "positive": "我们每天去学校。"},
        ],
    )
    config = experiment(
        tmp_path,
        rewards={
            "rewards": [{"type": "semantic", "weight": 1.0, "encoder": "run:encoder", "against": "reference"}]
        },
        encoder={"train": str(pairs)},
        sft={"examples": 20},
        arms=[{"name": "rl", "recipe": "two_stage"}],
    )
    result = cli_in_process("run", str(config), "--dry-run", "--out", str(tmp_path / "run"))
    assert_refused(result, "pairs.jsonl: line 2", "'positive' is empty (it holds only invisible characters)")


def test_same_file_as_train_and_test_for_rm_pairs(tmp_path):
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl", [{"prompt": "ཆུ་", "chosen": "这水很凉。", "rejected": "水。"}]
    )
    config = experiment(tmp_path, rm={"train": str(pairs), "test": str(pairs)})
    result = cli_in_process("run", str(config), "--dry-run", "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "rm.test: " in result.stderr and "is the same file as rm.train" in result.stderr, result.stderr
