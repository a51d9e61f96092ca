"""The package's import graph: no cycles (imports inside functions included, since a cycle hidden
that way still ties modules together), and a module's own dependencies imported at its top, a
function-level import of reasonlab's own code kept only where it is heavy or optional."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "reasonlab"
#: where a function-level import of reasonlab's own code is allowed, and why
LAZY = {
    "reasonlab.cli": "each command imports its own stack, so `reasonlab --help` starts without torch",
    "reasonlab.tasks": "reasoning-gym and file tasks load optional, heavy libraries only when asked for",
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(p.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _targets(mods: dict[str, Path], name: str, node: ast.AST) -> list[str]:
    """The reasonlab modules an import statement loads (a package's __init__ included)."""
    if isinstance(node, ast.Import):
        found = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = name.split(".")
            keep = len(parts) - node.level + (mods[name].name == "__init__.py")
            base = ".".join(parts[:keep] + ([base] if base else []))
        found = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
    out = set()
    for t in found:
        parts = t.split(".")
        for i in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ too
            m = ".".join(parts[:i])
            if m in mods and m != name and not name.startswith(m + "."):
                out.add(m)
    return sorted(out)


def _graph():
    mods = _modules()
    edges, lazy = {m: set() for m in mods}, {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges[name].update(_targets(mods, name, node))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and _targets(mods, name, node):
                        lazy[name] = lazy.get(name, 0) + 1
    return edges, lazy


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_package():
    edges, _ = _graph()
    assert len(edges) > 80 and edges["reasonlab.pipeline.main"]  # the graph is the package's
    assert _cycles(edges) == []


def test_modules_import_their_own_dependencies_at_the_top():
    _, lazy = _graph()
    assert sum(lazy.values()) <= 40, lazy
    assert set(lazy) <= set(LAZY), {m: n for m, n in lazy.items() if m not in LAZY}
