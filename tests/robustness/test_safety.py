"""Safe by default: the source never calls eval/exec, pickle or unsafe YAML, never loads torch
files without weights_only, never hard-codes trust_remote_code=True (that models are written as
safetensors is checked in test_experiment_config); and no command hangs or reaches the network
when there is none."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_lines

ROOT = Path(__file__).resolve().parents[2]
SOURCE = sorted((ROOT / "src" / "semrl").rglob("*.py"))
# the deliberate imports of a module named at run time: user-named ones, for eval.judge {type: callable,
# callable: module:function} and the config's `plugins:`; and semrl.api's own fixed table of homes
ALLOWED_IMPORT_MODULE = {"src/semrl/evaluate/preference.py", "src/semrl/plugins.py", "src/semrl/api.py"}


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    rel = str(path.relative_to(ROOT))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle", "marshal", "shelve") for n in names):
                found.append(f"{rel}:{node.lineno}: imports a pickle-like module")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if isinstance(func, ast.Name) and name in ("eval", "exec", "compile", "__import__"):
            found.append(f"{rel}:{node.lineno}: calls {name}()")
        if owner == "yaml" and name in ("load", "load_all", "unsafe_load", "full_load", "unsafe_load_all"):
            found.append(f"{rel}:{node.lineno}: yaml.{name} (use yaml.safe_load)")
        if owner == "torch" and name == "load":
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            if not safe:
                found.append(f"{rel}:{node.lineno}: torch.load without weights_only=True")
        if name == "import_module" and rel not in ALLOWED_IMPORT_MODULE:
            found.append(f"{rel}:{node.lineno}: imports a module named at run time")
        for keyword in node.keywords:
            if (
                keyword.arg == "trust_remote_code"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is True
            ):
                found.append(f"{rel}:{node.lineno}: trust_remote_code=True hard-coded")
            if (
                keyword.arg == "shell"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is True
            ):
                found.append(f"{rel}:{node.lineno}: subprocess with shell=True")
    return found


def test_source_has_no_unsafe_calls():
    assert len(SOURCE) > 50
    problems = [v for path in SOURCE for v in violations(path)]
    assert problems == []


def test_the_scan_catches_what_it_forbids(tmp_path):
    bad = ROOT / "src" / "semrl" / "_scan_probe.py"  # inside ROOT so the relative path works
    bad.write_text(
        "import pickle\nimport yaml, torch\nyaml.load('a')\ntorch.load('x')\neval('1')\n"
        "f(trust_remote_code=True)\n",
        encoding="utf-8",
    )
    try:
        assert len(violations(bad)) == 5
    finally:
        bad.unlink()


def _no_network() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
    )


offline = pytest.mark.skipif(not _no_network(), reason="needs `unshare -rn` (a network-less namespace)")


def without_network(*args: str, hub_offline: bool = True, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("TRANSFORMERS_OFFLINE", None)
    if hub_offline:
        env["HF_HUB_OFFLINE"] = "1"
    else:
        env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run(
        ["unshare", "-rn", sys.executable, "-m", "semrl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@offline
def test_commands_work_or_name_the_missing_file_without_network(tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", ["the house is big", "a horse runs"])
    ref = write_lines(tmp_path / "ref.txt", ["the house is large", "the horse runs"])
    works = without_network(
        "score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en", "--metrics", "bleu,sim", "--json"
    )
    assert works.returncode == 0, works.stderr
    example = ROOT / "configs" / "examples" / "tiny-bo-zh.yaml"
    dry = without_network("run", str(example), "--dry-run", "--out", str(tmp_path / "run"))
    assert dry.returncode == 0, dry.stderr
    # refused at once, naming what is missing: a hub encoder without HF_HUB_OFFLINE (the client would
    # otherwise retry for over a minute) and a hub model with it
    missing = without_network(
        "score",
        "--hyp",
        str(hyp),
        "--ref",
        str(ref),
        "--lang",
        "en",
        "--metrics",
        "sim",
        "--encoder",
        "example-org/never-downloaded-encoder",
        hub_offline=False,
        timeout=120,
    )
    assert missing.returncode == 2, missing.stderr
    assert "example-org/never-downloaded-encoder" in missing.stderr and "not reachable" in missing.stderr
    config = tmp_path / "hub.yaml"
    config.write_text(
        example.read_text(encoding="utf-8")
        .replace(
            "  tiny: {vocab_size: 512, hidden_size: 64, intermediate_size: 128, num_layers: 2, num_heads: 4}",
            "  path: example-org/never-downloaded-model",
        )
        .replace("data/tiny-bo-zh.jsonl", str(example.parent / "data" / "tiny-bo-zh.jsonl")),
        encoding="utf-8",
    )
    model = without_network("run", str(config), "--dry-run", timeout=120)
    assert model.returncode == 2, model.stderr
    assert "example-org/never-downloaded-model" in model.stderr and "Traceback" not in model.stderr
