"""The package's imports point down: no circles, no module importing a layer above its own, and
internal imports at module top (where a reader sees them), not hidden inside functions.

The layers (docs/architecture.md), bottom to top. A module may import its own layer or lower ones."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS: list[tuple[str, list[str]]] = [
    (
        "base",
        [
            "semrl",
            "semrl.errors",
            "semrl.files",
            "semrl.names",
            "semrl.notices",
            "semrl.plugins",
            "semrl.hub",
            "semrl.devices",
            "semrl.distributed",
            "semrl.config_files",
            "semrl.text",
            "semrl.weights",
            "semrl.run_lock",
            "semrl.run_folder",
        ],
    ),
    ("measures", ["semrl.metrics", "semrl.encoders"]),
    ("models", ["semrl.models"]),
    # recipes/ holds the recipes and the planner (no trainer): the schema reads their names
    (
        "data and rewards",
        ["semrl.data", "semrl.rewards", "semrl.experiment_config", "semrl.tasks", "semrl.recipes"],
    ),
    ("train and evaluate", ["semrl.train", "semrl.evaluate", "semrl.workers"]),
    ("report", ["semrl.report"]),
    ("checks", ["semrl.checks"]),
    ("pipeline", ["semrl.pipeline"]),
    ("studies", ["semrl.studies"]),
    ("api", ["semrl.api"]),
    ("apps", ["semrl.sandbox", "semrl.tour", "semrl.terminal_tables"]),
    ("cli", ["semrl.cli", "semrl.__main__"]),
]
MAX_INSIDE_FUNCTIONS = 0.10


def modules(src: Path = SRC) -> dict[str, Path]:
    found = {}
    for path in sorted((src / "semrl").rglob("*.py")):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def internal_imports(src: Path = SRC) -> list[tuple[str, str, bool]]:
    """(importer, imported module, inside a function) for every `semrl` import statement."""
    known = modules(src)
    out = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        top |= {
            id(n) for node in tree.body if isinstance(node, ast.If) for n in ast.walk(node)
        }  # TYPE_CHECKING
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != "semrl":
                    continue
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    out.append((name, target, id(node) not in top))
    return out


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), i)
        for i, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)"
    return max(matches)[1]


def test_no_import_circle():
    edges: dict[str, set[str]] = {}
    for importer, imported, _ in internal_imports():
        edges.setdefault(importer, set()).add(imported)
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_imports_point_down():
    upward = sorted(
        {
            f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
            for a, b, _ in internal_imports()
            if layer_of(b) > layer_of(a)
        }
    )
    assert not upward, "\n".join(upward)


def test_internal_imports_sit_at_module_top():
    imports = internal_imports()
    inside = [f"{a} -> {b}" for a, b, lazy in imports if lazy]
    assert len(inside) <= MAX_INSIDE_FUNCTIONS * len(imports), (len(inside), len(imports), inside)


def past_the_api(app: str, src: Path = SRC) -> list[str]:
    """The imports of `app`'s modules that reach into semrl other than through semrl.api."""
    return sorted(
        {
            f"{a} imports {b}"
            for a, b, _ in internal_imports(src)
            if a.startswith(app + ".") and b != "semrl.api" and not b.startswith(app + ".")
        }
    )


def test_the_sandbox_uses_semrl_only_through_its_api():
    """The sandbox is an app built on semrl as a user's would be: everything it needs is public."""
    assert not past_the_api("semrl.sandbox"), "\n".join(past_the_api("semrl.sandbox"))


def test_the_api_check_finds_a_private_import(tmp_path):
    package = tmp_path / "semrl"
    (package / "app").mkdir(parents=True)
    for name in ("__init__.py", "api.py", "files.py", "app/__init__.py", "app/helper.py"):
        (package / name).write_text("")
    (package / "app" / "main.py").write_text(
        "from semrl.api import x\nfrom semrl.app.helper import y\nfrom semrl.files import z\n"
    )
    assert past_the_api("semrl.app", tmp_path) == ["semrl.app.main imports semrl.files"]


def test_the_check_finds_a_planted_circle(tmp_path):
    """The checks themselves: a circle hidden by a function-level import is found."""
    package = tmp_path / "semrl"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from semrl.high import g\n    return g\n")
    (package / "high.py").write_text("from semrl.low import f\n\ndef g():\n    return f\n")
    edges: dict[str, set[str]] = {}
    for importer, imported, _ in internal_imports(tmp_path):
        edges.setdefault(importer, set()).add(imported)
    assert find_cycle(edges) in (
        ["semrl.low", "semrl.high", "semrl.low"],
        ["semrl.high", "semrl.low", "semrl.high"],
    )
