"""The user's own code a config names under `plugins:`: modules that register what semrl does not
ship (a task metric with `register_metric`, a task type with `register_task`). Each process that
loads the config imports them, so the workers that train and evaluate know the same metrics and
tasks as the process that checked the config.

A plugin is code the user chose to run, like TRL's `reward_funcs` given as `module.function`:
semrl imports what the config names and nothing else, and never evaluates a string.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")


def _from_file(path: Path) -> ModuleType:
    """A `.py` file, imported once per process under a name its path decides."""
    name = f"semrl_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugin(name: str) -> ModuleType:
    """Import one plugin: a `.py` file (absolute, or already resolved against the config's folder)
    or an importable module name (installed, or on PYTHONPATH)."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ImportError(f"{name}: no such file")
        return _from_file(path.resolve())
    return importlib.import_module(name)


def load_plugins(names: Sequence[str]) -> None:
    """Import each plugin a config names (again in a worker process, where it is not yet loaded)."""
    for name in names:
        load_plugin(name)


def add_to(table: dict[str, T], name: str, entry: T, kind: str) -> T:
    """Put what a plugin registers into semrl's table of its kind. The same entry again (a module
    imported twice) is harmless; another entry under a taken name is an error, so two plugins
    cannot silently replace each other or one of semrl's own."""
    taken = table.get(name)
    if taken is not None and taken != entry:
        raise ValueError(f"{kind} {name!r} is already registered")
    table[name] = entry
    return entry
