"""The house rules, read from the code: the user's layout, one-way imports, no circles, small modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data_contracts", "features", "models", "flows")
# What each package may import of the others: data flows one way, flows/ at the top.
ALLOWED: dict[str, set[str]] = {
    "data_contracts": set(),
    "features": {"data_contracts"},
    "models": {"data_contracts", "features"},
    "flows": {"data_contracts", "features", "models"},
}
MAX_LINES = 500


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def _imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_top_level_is_the_users_layout() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages <= {*PACKAGES, "tests", "bench"}, packages
    for name in ("pyproject.toml", "README.md", "constraints.txt", *PACKAGES, "tests"):
        assert (ROOT / name).exists(), name


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_imports_flow_one_way(module: str, path: Path) -> None:
    own = module.split(".")[0]
    for name in _imports(path):
        top = name.split(".")[0]
        if top in PACKAGES and top != own:
            assert top in ALLOWED[own], f"{module} imports {name}: {own}/ may not import {top}/"
        if top == "prefect":
            assert own == "flows", f"{module} imports Prefect: only flows/ may"


def test_no_import_circle() -> None:
    modules = dict(_modules())
    graph = {
        m: {
            n
            for name in _imports(p)
            for n in (name, name.rsplit(".", 1)[0])
            if n in modules and n != m and not m.startswith(n + ".")
        }
        for m, p in modules.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*trail[trail.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_production_module_over_500_lines(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it into its ideas"


def _calls(path: Path, name: str) -> bool:
    """Whether ``path`` calls ``name(...)`` or ``something.name(...)`` anywhere."""
    return any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
    )


def test_only_the_test_worlds_build_lake_tables() -> None:
    """tests/worlds/ is the one place that builds lake tables for tests; others use its builders."""
    worlds = ROOT / "tests" / "worlds"
    assert _calls(worlds / "lake.py", "LakeTables")  # the check sees the one call it allows
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if worlds not in path.parents and _calls(path, "LakeTables")
    ]
    assert not offenders, f"build LakeTables with tests.worlds.lake.lake_tables, not in {offenders}"
