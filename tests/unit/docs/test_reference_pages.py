"""The reference pages say what the code says: the configuration page lists every field of the
schema (walked here independently of the generator) and no other, and the checked-in pages are what
scripts/gen_docs.py writes from the code today."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from semrl.evaluate.suite import SuiteConfig
from semrl.experiment_config import ExperimentConfig

REPO = Path(__file__).resolve().parents[3]
PAGE = REPO / "docs" / "reference" / "configuration.md"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def schema_fields(root: type[BaseModel]) -> set[tuple[str, str]]:
    """(module.Class, YAML key) for every field of every model reachable from `root`."""
    found: set[tuple[str, str]] = set()
    seen: set[type] = set()

    def walk(tp) -> None:
        if inspect.isclass(tp) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.add(tp)
            for name, field in tp.model_fields.items():
                found.add((f"{tp.__module__}.{tp.__qualname__}", field.alias or name))
                walk(field.annotation)
            return
        for arg in typing.get_args(tp):
            walk(arg)

    walk(root)
    return found


def page_tables(text: str) -> list[tuple[str, list[str]]]:
    """(schema named under each heading, the keys of its table), in page order."""
    tables = []
    for block in text.split("\n### ")[1:]:
        schema = re.search(r"^Schema: `([\w.]+)`\.$", block, re.M)
        assert schema, f"a table without its schema line: {block.splitlines()[0]}"
        keys = re.findall(r"^\| `([^`]+)` \|", block, re.M)
        tables.append((schema.group(1), keys))
    return tables


def _part(text: str, heading: str) -> str:
    """The page between `## heading` and the next `## `."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def page_fields(text: str) -> set[tuple[str, str]]:
    return {(schema, key) for schema, keys in page_tables(text) for key in keys}


@pytest.mark.parametrize(
    "heading, root", [("Experiment YAML", ExperimentConfig), ("General suite YAML", SuiteConfig)]
)
def test_the_configuration_page_lists_every_field_of_the_schema_and_no_other(heading, root):
    documented = page_fields(_part(PAGE.read_text(encoding="utf-8"), heading))
    expected = schema_fields(root)
    assert expected - documented == set(), "fields missing from the page"
    assert documented - expected == set(), "fields on the page that the schema does not have"
    assert len(expected) > 200 if root is ExperimentConfig else len(expected) > 10


def test_a_missing_row_is_noticed():
    text = _part(PAGE.read_text(encoding="utf-8"), "Experiment YAML")
    without = "\n".join(line for line in text.splitlines() if not line.startswith("| `learning_rate` |"))
    missing = schema_fields(ExperimentConfig) - page_fields(without)
    assert ("semrl.experiment_config.GRPOSpec", "learning_rate") in missing


def test_each_table_holds_its_schema_fields_in_the_schema_order():
    for schema, keys in page_tables(PAGE.read_text(encoding="utf-8")):
        module, name = schema.rsplit(".", 1)
        model = getattr(importlib.import_module(module), name)
        assert keys == [field.alias or key for key, field in model.model_fields.items()], schema


def test_every_setting_has_a_description():
    undescribed = []
    for root in (ExperimentConfig, SuiteConfig):
        for schema, key in schema_fields(root):
            module, name = schema.rsplit(".", 1)
            model = getattr(importlib.import_module(module), name)
            field = next(f for k, f in model.model_fields.items() if (f.alias or k) == key)
            if not (field.description or "").strip():
                undescribed.append(f"{name}.{key}")
    assert undescribed == []


def _row(text: str, heading: str, key: str) -> list[str]:
    block = text.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]
    line = next(line for line in block.splitlines() if line.startswith(f"| `{key}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_defaults_are_those_of_the_place_a_mapping_appears():
    text = PAGE.read_text(encoding="utf-8")
    assert (
        _row(text, "`sft`", "epochs")[2]
        == f"`{ExperimentConfig.model_fields['sft'].default_factory().epochs}`"
    )
    assert _row(text, "`recover`", "epochs")[2] == "`1.0`"  # recover: SFTSpec(epochs=1.0)
    assert _row(text, "`grpo`", "learning_rate")[1:3] == ["number > 0, <= 1.0", "`5e-07`"]
    assert _row(text, "Top level", "name")[2] == "required"


def test_the_checked_in_reference_pages_are_what_the_code_generates():
    stale = [
        str(path.relative_to(REPO))
        for path, text in _generator().pages().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], "run `python scripts/gen_docs.py` (or `make docs`) and commit the pages"


def test_the_cli_page_has_every_command():
    import typer

    from semrl.cli import app

    text = (REPO / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="semrl")
    for name in root.list_commands(ctx):
        assert f"\n## `semrl {name}`\n" in text
