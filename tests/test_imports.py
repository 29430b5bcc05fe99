"""The house's imports run one way: no module of bench imports, directly or through others, a
module that imports it. Read from the source (every import statement, at the top of a module or
inside a function: a late import is still a dependency), not from what Python happened to load."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "bench"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The bench modules that path's module imports (a package's face counts as the package)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from . import x` may import the module x, or a name of the package
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:   # bench.environments.docker.client -> ...docker
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_of_bench_imports_one_that_imports_it():
    edges = graph()
    # A package's face (bench/environments/__init__.py discovers its kinds) may import its own
    # modules; they must not import it back, which the cycle check sees like any other.
    assert cycles(edges) == []


def test_the_check_sees_a_circle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "bench.environments.base" in edges["bench.workloads.base"]          # contracts downward
    assert "bench.environments" not in edges["bench.workloads.base"]           # not every kind
    assert not any(m.startswith(("bench.config", "bench.runner", "bench.cli")) for m in edges["bench.image"])


def test_the_floors_below_import_nothing_above_them():
    """The image and the settings are below every kind and every workload: they import neither."""
    edges = graph()
    above = ("bench.environments", "bench.workloads", "bench.config", "bench.plan", "bench.runner", "bench.cli")
    for module in ("bench.image", "bench.settings"):
        assert not any(m.startswith(above) for m in edges[module]), (module, edges[module])
    assert edges["bench.settings"] == set()

