"""semrl.api: the names it promises are the names it imports, each loads on first use, and each is
the very object of its home module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import semrl.api as api


def test_the_public_names_are_the_imported_ones_and_each_resolves():
    assert sorted(api.__all__) == sorted(api.HOMES)
    for name, home in api.HOMES.items():
        assert getattr(api, name) is getattr(importlib.import_module(home), name), name
    assert set(dir(api)) == set(api.__all__)


def test_an_unknown_name_is_an_attribute_error():
    try:
        api.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_a_light_name_does_not_load_the_training_libraries():
    """`from semrl.api import read_json` imports semrl.files, not TRL (a fresh interpreter: the
    test process has TRL loaded already)."""
    code = "import sys; from semrl.api import read_json; print('trl' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
