"""The layout's rules, checked on the source: no import cycles between modules at import time,
and the core never imports a competition by name (only the registry and the protocol)."""

from __future__ import annotations

import ast
from pathlib import Path

import toolkit

ROOT = Path(toolkit.__file__).parent
CORE = ("cli", "config", "engine", "export", "bundle", "data", "hpo", "slurm", "report")


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _imports(path: Path, known: set[str], top_level_only: bool) -> set[str]:
    """toolkit modules `path` imports (at module level only, outside TYPE_CHECKING, when
    `top_level_only`)."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        deferred = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if top_level_only and deferred:
            continue
        nodes.extend(ast.walk(node))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolkit"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("toolkit"))
    return found & known


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    paths = {_module(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    return {m: _imports(p, known, top_level_only) for m, p in paths.items()}


def test_no_import_cycles_between_modules():
    graph = _graph(top_level_only=True)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:3])


def test_the_core_never_imports_a_competition_by_name():
    graph = _graph(top_level_only=False)
    allowed = {"toolkit.competitions", "toolkit.competitions.protocol"}
    offenders = sorted(
        f"{module} imports {dep}"
        for module, deps in graph.items()
        if module.split(".")[1:2] and module.split(".")[1] in CORE
        for dep in deps
        if dep.startswith("toolkit.competitions") and dep not in allowed
    )
    assert not offenders, offenders
