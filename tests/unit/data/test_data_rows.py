"""Rows from files, their checks and repairs, the seeded splits, and the prompts a task builds:
semrl.data on real files in a temporary folder."""

from __future__ import annotations

import unicodedata

import pytest

from semrl.data.loading import load_table, require_columns
from semrl.data.quality import duplicate_id_problems, repair_text_fields, text_problems
from semrl.data.splits import head, rest, shuffled, split_rows
from semrl.data.tasks import TaskExamples, language_name, role_rows
from semrl.errors import UserError
from semrl.experiment_config import TaskSpec


def test_split_rows_takes_a_fraction_or_a_count_and_always_leaves_a_training_row():
    rows = list(range(20))
    train, test = split_rows(rows, 0.25, seed=0)
    assert len(test) == 5 and sorted(train + test) == rows
    assert split_rows(rows, 0.25, seed=0) == (train, test)  # same seed, same rows in the same order
    assert split_rows(rows, 0.25, seed=1) != (train, test)
    assert [len(part) for part in split_rows(rows, 3, seed=0)] == [17, 3]
    assert [len(part) for part in split_rows(rows, 50, seed=0)] == [1, 19]
    assert split_rows([], 0.5, seed=0) == ([], [])


def test_shuffled_leaves_its_input_alone_and_head_and_rest_split_at_n():
    rows = ["a", "b", "c", "d"]
    assert sorted(shuffled(rows, 7)) == rows and rows == ["a", "b", "c", "d"]
    assert (head(rows, 1), rest(rows, 1)) == (["a"], ["b", "c", "d"])
    assert (head(rows, None), rest(rows, None)) == (rows, [])  # no N: everything is the head


def test_load_table_reads_jsonl_csv_and_tsv_with_line_numbers(tmp_path):
    (tmp_path / "rows.jsonl").write_text(
        '{"source": "a", "reference": "b"}\n\n{"source": "c", "reference": "d"}\n', encoding="utf-8"
    )
    (tmp_path / "rows.csv").write_text('source,reference\n"a, quoted",b\n\nc,d\n', encoding="utf-8")
    (tmp_path / "rows.tsv").write_text("source\treference\na\tb\n", encoding="utf-8")
    jsonl = load_table(str(tmp_path / "rows.jsonl"))
    assert [(r["source"], r["__line__"]) for r in jsonl] == [("a", 1), ("c", 3)]
    csv_rows = load_table(str(tmp_path / "rows.csv"))
    assert [(r["source"], r["__line__"]) for r in csv_rows] == [("a, quoted", 2), ("c", 4)]
    assert load_table(str(tmp_path / "rows.tsv")) == [{"source": "a", "reference": "b", "__line__": 2}]


@pytest.mark.parametrize(
    "text, message",
    [
        ("source,reference\na,b,c\n", "line 2: 3 fields, header has 2"),
        ("source,source\na,b\n", "line 1: duplicate column names"),
        ("source,\na,b\n", "line 1: header has an empty column name"),
        ("source,reference\n", "no rows"),
    ],
)
def test_a_broken_csv_is_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message) as error:
        load_table(str(path))
    assert str(path) in str(error.value)


def test_load_table_names_the_config_field_of_a_missing_file_and_refuses_an_unknown_type(tmp_path):
    with pytest.raises(UserError, match=r"^data.train: .*missing.jsonl: file not found$"):
        load_table(str(tmp_path / "missing.jsonl"), field="data.train")
    (tmp_path / "rows.xml").write_text("<rows/>", encoding="utf-8")
    with pytest.raises(UserError, match="unknown file type '.xml'; set data.format"):
        load_table(str(tmp_path / "rows.xml"))


def test_require_columns_lists_the_first_problems_on_one_line_and_counts_the_rest():
    rows = [
        {"source": "ok", "reference": "ok", "__line__": 1},
        {"source": 3, "reference": "x", "__line__": 2},
        {"source": "  ", "__line__": 3},
    ] + [{"reference": "r", "__line__": n} for n in range(4, 10)]
    with pytest.raises(UserError) as error:
        require_columns(rows, "rows.jsonl", {"source": "source", "reference": "reference"}, max_report=3)
    message = str(error.value)
    assert message.startswith(
        "rows.jsonl: line 2: column 'source' must be text, got int; line 3: column 'source' "
        "is empty; line 3: missing column 'reference' (reference)"
    )
    assert message.endswith("(and 6 more)") and "\n" not in message
    require_columns(rows[:1], "rows.jsonl", {"source": "source"})  # a good row passes


def test_text_is_repaired_to_nfc_without_invisible_characters(capsys):
    decomposed = unicodedata.normalize("NFD", "café")
    rows = [
        {"source": decomposed + "\u200b", "reference": "ok\u2060", "__line__": 4},
        {"source": 7, "__line__": 5},
    ]
    repair_text_fields(rows, "rows.jsonl", ["source", "reference"])
    assert rows[0]["source"] == "café" and unicodedata.is_normalized("NFC", rows[0]["source"])
    assert rows[0]["reference"] == "ok" and rows[1]["source"] == 7  # non-text is left for validation
    err = capsys.readouterr().err
    assert "rows.jsonl: 1 field(s) not in Unicode NFC (first: line 4, field 'source')" in err
    assert "invisible characters removed from 2 field(s) (first: line 4, field 'source', U+200B)" in err


def test_long_fields_and_duplicate_ids_are_problems_named_by_line():
    rows = [
        {"id": 1, "text": "x" * 11, "__line__": 1},
        {"id": "1", "text": "short", "__line__": 2},
        {"id": None, "__line__": 3},
        {"text": "y", "__line__": 4},
    ]
    assert text_problems(rows, ["text"], max_chars=10) == [
        "line 1: field 'text' is 11 characters long (limit 10; set data.max_chars to allow more)"
    ]
    assert duplicate_id_problems(rows) == ["line 2: duplicate id '1' (first on line 1)"]


def test_language_names_come_from_the_code_unless_given():
    assert language_name("bo", None) == "Tibetan" and language_name("zh-Hans", None) == "Chinese"
    assert language_name("xx", None) == "xx" and language_name(None, None) == "the target language"
    assert language_name("bo", "Lhasa Tibetan") == "Lhasa Tibetan"


def test_a_translate_task_builds_the_same_prompt_for_sft_and_grpo():
    task = TaskSpec(type="translate", source_lang="zh", target_lang="bo", system="Be brief.")
    chat, plain = TaskExamples(task, use_chat=True), TaskExamples(task, use_chat=False)
    row = {"source": "你好", "reference": "བཀྲ་ཤིས་བདེ་ལེགས།"}
    text = "Translate the following Chinese text into Tibetan.\n你好"
    assert chat.prompt(row) == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    assert plain.prompt(row) == text + "\n"
    assert chat.sft_record(row) == {
        "prompt": chat.prompt(row),
        "completion": [{"role": "assistant", "content": row["reference"]}],
    }
    assert chat.grpo_record(row, {"reference": "ref", "source": "src"}) == {
        "prompt": chat.prompt(row),
        "ref": row["reference"],
        "src": "你好",
    }
    assert "ref" not in chat.grpo_record(row, {"reference": "ref", "source": "src"}, with_reference=False)


def test_a_template_with_an_unknown_field_is_a_user_error():
    examples = TaskExamples(TaskSpec(type="generic", template="{prompt} {speaker}"), use_chat=False)
    with pytest.raises(UserError, match=r"task.template: cannot fill 'speaker' \(fields: prompt, source, "):
        examples.prompt_text({"prompt": "hi"})


def test_role_rows_rename_columns_to_roles_and_keep_line_numbers():
    rows = [{"zh": "a", "bo": "b", "key": "7", "other": "x", "__line__": 3}]
    assert role_rows(rows, "translate", {"source": "zh", "reference": "bo", "id": "key"}) == [
        {"source": "a", "reference": "b", "id": "7", "__line__": 3}
    ]
    assert role_rows([{"prompt": "p", "reference": "r"}], "generic", {}) == [
        {"prompt": "p", "reference": "r", "__line__": None}
    ]
