"""The layers of ``DESIGN.md`` run one way: no module imports from a layer above its own,
and no two modules import each other (directly or round a circle) when they load.

Every ``import transferome.X`` / ``from transferome.X import`` in the package, at module level
or inside a function, is checked against the layer table below (each layer may import from
its own and the ones before it); the circle check reads the module-level imports. A
sub-package's private modules and names (a part starting with ``_``) are its own: another
sub-package imports what it exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferome"

LAYERS: dict[str, int] = {
    "errors": 0,
    "_logging": 0,
    "data": 1,
    "training": 1,
    "datasets": 1,
    "models": 2,
    "crossspecies": 3,
    "metrics": 4,
    "benchmark": 4,
    "analysis": 4,
    "plotting": 5,
    "report": 5,
    "pipeline": 6,
    "cli": 6,
    "__main__": 6,
}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every transferome import in a file.

    ``names`` are those of ``from module import ...`` (empty for ``import module``).
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [(node.module, [alias.name for alias in node.names])]
        elif isinstance(node, ast.Import):
            modules = [(alias.name, []) for alias in node.names]
        else:
            continue
        found += [(node.lineno, m, n) for m, n in modules if m.split(".")[0] == "transferome"]
    return found


def _layer_of(parts: tuple[str, ...]) -> str | None:
    return parts[0].removesuffix(".py") if parts and parts[0] != "__init__.py" else None


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer_of(path.relative_to(PACKAGE).parts)
        if own is None:
            continue
        for line, module, _ in _imports(path):
            parts = module.split(".")
            if len(parts) < 2 or parts[1] == "__version__":
                continue  # the package itself: its version, the lazy top-level names
            if LAYERS[parts[1]] > LAYERS[own]:
                where = path.relative_to(PACKAGE)
                bad.append(f"{where}:{line} ({own}) imports {module} ({parts[1]})")
    return bad


def test_every_subpackage_has_a_layer() -> None:
    modules = [p for p in PACKAGE.iterdir() if p.is_dir() or p.suffix == ".py"]  # not py.typed
    names = {_layer_of(p.relative_to(PACKAGE).parts) for p in modules}
    names.discard(None)
    names.discard("__pycache__")
    assert names <= set(LAYERS), sorted(names - set(LAYERS))


def test_no_import_runs_against_the_layers() -> None:
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "transferome"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "bad.py").write_text(
        "def f():\n    from transferome.pipeline.run import run_pipeline\n"
    )
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    assert _violations() == ["models/bad.py:2 (models) imports transferome.pipeline.run (pipeline)"]


# (file, module) pairs excused from the private-import check while a file moves to the public
# name; each pair leaves the list once its file imports that name
# (test_every_allowed_private_import_is_still_there fails on a pair that has gone).
PRIVATE_IMPORTS_ALLOWED: set[tuple[str, str]] = set()


def _private_imports() -> list[str]:
    """Imports of another sub-package's private module or name, but the allowed ones.

    ``transferome._logging`` is no sub-package's: every layer shares it.
    """
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE)
        own = _layer_of(where.parts)
        if own is None:
            continue
        for line, module, names in _imports(path):
            parts = module.split(".")
            if len(parts) < 2 or parts[1] == own:
                continue
            if (where.as_posix(), module) in PRIVATE_IMPORTS_ALLOWED:
                continue
            if any(part.startswith("_") for part in parts[2:]):
                bad.append(f"{where}:{line} ({own}) imports {module}")
            hidden = [name for name in names if name.startswith("_")]
            if hidden:
                bad.append(f"{where}:{line} ({own}) imports {', '.join(hidden)} from {module}")
    return bad


def test_no_subpackage_imports_the_private_parts_of_another() -> None:
    assert _private_imports() == []


def test_the_check_sees_a_private_import(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "transferome"
    (fake / "cli").mkdir(parents=True)
    (fake / "data").mkdir()
    (fake / "cli" / "bad.py").write_text(
        "from transferome.data._atomic import atomic_path\n"
        "from transferome.data import _atomic, read\n"
        "import transferome.pipeline._yaml\n"
        "from transferome.cli._common import read_input\n"  # its own sub-package's
        "from transferome._logging import get_logger\n"  # shared by every layer
        "from transferome.data import atomic_path\n"  # the public name
        "def f():\n    from transferome.models.base import _E\n"
    )
    (fake / "data" / "fine.py").write_text("from transferome.data._atomic import atomic_path\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    assert _private_imports() == [
        "cli/bad.py:1 (cli) imports transferome.data._atomic",
        "cli/bad.py:2 (cli) imports _atomic from transferome.data",
        "cli/bad.py:3 (cli) imports transferome.pipeline._yaml",
        "cli/bad.py:8 (cli) imports _E from transferome.models.base",
    ]


def test_every_allowed_private_import_is_still_there() -> None:
    found = {
        (path.relative_to(PACKAGE).as_posix(), module)
        for path in PACKAGE.rglob("*.py")
        for _, module, _ in _imports(path)
    }
    assert sorted(PRIVATE_IMPORTS_ALLOWED - found) == []  # fixed: take the pair off the list


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at module level (what runs on import)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
    return graph


def test_no_module_level_import_circle() -> None:
    graph = _module_level_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []


@pytest.mark.parametrize("module", ["transferome.metrics", "transferome.crossspecies"])
def test_the_moved_mapping_scores_import(module) -> None:
    import importlib

    names = importlib.import_module(module).__all__
    assert ("evaluate_mapping" in names) == (module == "transferome.metrics")
