"""Fuzzing the input layer: arbitrary configs, data rows, preference rows, YAML text and raw bytes
either load into valid objects or raise UserError (exit 2) -- never anything else."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semrl.config_files import load_yaml
from semrl.data.loading import load_table
from semrl.data.preferences import validate_pairs
from semrl.data.task_rows import load_task_rows
from semrl.errors import UserError
from semrl.experiment_config import ExperimentConfig, load_experiment

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(list("ཀ་།中文 \u200b\ufeff\r\n\t"))), max_size=30)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
CONFIG_KEYS = st.sampled_from(
    [
        "name",
        "seed",
        "model",
        "task",
        "data",
        "rewards",
        "sft",
        "grpo",
        "rm",
        "encoder",
        "eval",
        "arms",
        "decoding",
        "device",
        "report_to",
        "unknown",
    ]
)
ROW_KEYS = st.sampled_from(
    ["source", "reference", "prompt", "id", "chosen", "rejected", "language", "category", "x"]
)


def expect_user_error_or(value_check, function, *args):
    try:
        result = function(*args)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    value_check(result)
    return result


@FUZZ
@given(
    st.dictionaries(CONFIG_KEYS, VALUES, max_size=8),
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.just({"tiny": {}}),
            "task": st.just({"type": "generic"}),
            "data": st.just({"train": "x.jsonl"}),
        },
    ),
)
def test_random_configs_validate_or_fail_cleanly(tmp_path_factory, data, base):
    import yaml

    path = tmp_path_factory.mktemp("cfg") / "exp.yaml"
    path.write_text(yaml.safe_dump({**base, **data}, allow_unicode=True), encoding="utf-8")
    expect_user_error_or(lambda exp: isinstance(exp, ExperimentConfig), load_experiment, path)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["name", "model", "data", "rm", "representation", "reward_models", "train_languages", "x"]
        ),
        VALUES,
        max_size=6,
    ),
    st.dictionaries(st.sampled_from(["files", "translate", "columns", "test_size"]), VALUES, max_size=3),
)
def test_random_rm_transfer_configs_validate_or_fail_cleanly(tmp_path_factory, top, data):
    import yaml

    from semrl.studies.rm.config import RMTransferConfig, load_transfer_config

    path = tmp_path_factory.mktemp("rmcfg") / "rm.yaml"
    path.write_text(yaml.safe_dump({**top, "data": data}, allow_unicode=True), encoding="utf-8")
    expect_user_error_or(lambda cfg: isinstance(cfg, RMTransferConfig), load_transfer_config, path)


@FUZZ
@given(st.text(max_size=200))
def test_random_yaml_text_loads_or_fails_cleanly(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_bytes(text.encode("utf-8", errors="replace"))
    expect_user_error_or(lambda data: isinstance(data, dict), load_yaml, path)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["jsonl", "csv", "tsv"]))
def test_random_bytes_load_or_fail_cleanly(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"d.{suffix}"
    path.write_bytes(data)
    expect_user_error_or(
        lambda rows: all(isinstance(r, dict) and "__line__" in r for r in rows), load_table, str(path)
    )


def _clean_rows(result):
    train, test = result
    for row in train + test:
        for role in ("source", "reference"):
            value = row[role]
            assert isinstance(value, str) and value.strip()
            assert unicodedata.is_normalized("NFC", value) and "\u200b" not in value and "\ufeff" not in value


@FUZZ
@given(st.lists(st.dictionaries(ROW_KEYS, VALUES, max_size=5), min_size=1, max_size=6))
def test_random_task_rows_validate_or_fail_cleanly(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("rows")
    data = folder / "d.jsonl"
    data.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8", errors="replace"
    )
    exp = ExperimentConfig.model_validate(
        {
            "name": "f",
            "model": {"tiny": {}},
            "data": {"train": str(data), "test_size": 1},
            "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
        }
    )
    expect_user_error_or(_clean_rows, load_task_rows, exp)


@FUZZ
@given(
    st.lists(st.dictionaries(ROW_KEYS, VALUES, max_size=6), min_size=1, max_size=6),
    st.one_of(st.none(), TEXT),
)
def test_random_preference_rows_validate_or_fail_cleanly(rows, language):
    rows = [{**row, "__line__": i + 1} for i, row in enumerate(rows)]

    def check(pairs):
        for pair in pairs:
            assert (
                isinstance(pair["chosen"], str)
                and pair["chosen"].strip()
                and pair["chosen"] != pair["rejected"]
            )
            assert isinstance(pair["language"], str)

    expect_user_error_or(check, validate_pairs, rows, "prefs.jsonl", {}, language)
