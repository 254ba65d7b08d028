"""Preference pairs (the M-RewardBench layout): validation, grouping by language, translation."""

from __future__ import annotations

import pytest

from semrl.data.preferences import by_language, translate_pairs, validate_pairs
from semrl.errors import UserError


def rows(*items: dict) -> list[dict]:
    return [{**item, "__line__": n} for n, item in enumerate(items, 1)]


def test_pairs_take_their_roles_from_renamed_columns_and_fill_defaults():
    pairs = validate_pairs(
        rows({"q": "Say hi", "good": "Hi!", "bad": "No.", "lang": "en"}, {"good": "Bonjour", "bad": "Non"}),
        "pairs.jsonl",
        {"prompt": "q", "chosen": "good", "rejected": "bad", "language": "lang"},
        language="fr",
    )
    assert pairs[0] == {
        "prompt": "Say hi",
        "chosen": "Hi!",
        "rejected": "No.",
        "language": "en",
        "category": "all",
        "__line__": 1,
    }
    assert pairs[1]["prompt"] == "" and pairs[1]["language"] == "fr"  # the file's language fills the row


def test_every_problem_is_named_by_line_and_field_in_one_error():
    bad = rows(
        {"chosen": "a", "rejected": "a", "language": "en"},
        {"chosen": "", "rejected": "b", "language": "en"},
        {"chosen": "a", "rejected": 5, "language": "en"},
        {"chosen": "a", "rejected": "b"},
    )
    with pytest.raises(UserError) as error:
        validate_pairs(bad, "pairs.jsonl", {}, language=None)
    message = str(error.value)
    assert message.startswith(
        "pairs.jsonl: line 1: fields 'chosen' and 'rejected' are identical; "
        "line 2: field 'chosen' is empty; line 3: field 'rejected' must be text, got int; "
        "line 4: missing field 'language' (language)"
    )
    assert message.endswith("(or give the file's language)")


def test_an_unknown_role_is_refused():
    with pytest.raises(UserError, match="columns: unknown role 'answer'"):
        validate_pairs(rows({"chosen": "a", "rejected": "b"}), "p.jsonl", {"answer": "x"}, language="en")


def test_by_language_groups_pairs_in_first_seen_order():
    pairs = [{"language": "zh", "n": 1}, {"language": "en", "n": 2}, {"language": "zh", "n": 3}]
    groups = by_language(pairs)
    assert list(groups) == ["zh", "en"] and [p["n"] for p in groups["zh"]] == [1, 3]


def test_translated_pairs_keep_their_category_and_drop_those_whose_answers_collapse(capsys):
    pairs = [
        {"prompt": "Q1", "chosen": "good", "rejected": "bad", "language": "en", "category": "chat"},
        {"prompt": "", "chosen": "fine", "rejected": "okay", "language": "en", "category": "safety"},
        {"prompt": "Q3", "chosen": "yes", "rejected": "no", "language": "en", "category": "chat"},
    ]
    synonyms = {"fine": "bien", "okay": "bien"}  # a translation that erases the preference

    def to_french(texts: list[str]) -> list[str]:
        return [synonyms.get(text, f"fr:{text}") for text in texts]

    out = translate_pairs(pairs, to_french, "fr", batch_size=2)
    assert [(p["prompt"], p["chosen"], p["rejected"], p["category"]) for p in out] == [
        ("fr:Q1", "fr:good", "fr:bad", "chat"),
        ("fr:Q3", "fr:yes", "fr:no", "chat"),
    ]
    assert all(p["language"] == "fr" and p["translated_from"] == "en" for p in out)
    assert (
        "translation into fr: 1 of 3 pairs came out with chosen == rejected; dropped"
        in capsys.readouterr().err
    )


def test_a_translator_that_loses_texts_is_refused():
    pairs = [{"prompt": "Q", "chosen": "a", "rejected": "b", "language": "en", "category": "all"}]
    with pytest.raises(UserError, match="translator returned 2 texts for 3"):
        translate_pairs(pairs, lambda texts: texts[:2], "fr")
