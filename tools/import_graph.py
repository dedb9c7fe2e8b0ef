#!/usr/bin/env python3
"""The import graph of lei_store: cycles, and read-side modules that import write-side ones.

    python3 tools/import_graph.py            # exit 1 on a cycle or a forbidden import
    python3 tools/import_graph.py --dot      # the graph in Graphviz dot

Every import counts, including the lazy ones inside functions (they are cycles all
the same; laziness only hides them from start-up); only `if TYPE_CHECKING:` imports,
which never run, are left out. The layers are declared in
RANK below: a module may import from its own layer and those below it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lei_store"

# The layers, lowest first: a module may import from its own layer and the ones below it.
# read and write share a rank but must not import each other: readers never load writer code
# (public-inbox keeps Over/Search apart from OverIdx/SearchIdx the same way).
RANK = {"foundation": 0, "mail": 1, "sources": 2, "disk": 3, "read": 4, "write": 4, "ops": 5, "serve": 6, "cli": 7}
READ_SIDE = ("lei_store.read",)
WRITE_SIDE = ("lei_store.write",)


def layer(module: str) -> str:
    """mail, sources, ...; the top-level modules (errors, paths, git, sqlite, locks, schema) are the
    foundation everything stands on; `python -m lei_store` is the command line."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return "cli" if module == "lei_store.__main__" else "foundation"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The lei_store modules PATH imports (a `from pkg import name` of a submodule counts as it)."""
    current = module_name(path)
    is_package = path.name == "__init__.py"
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(current, is_package, node)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != current:
                found.add(name)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (imports for annotations only: never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
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

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def read_side_violations(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((m, dep) for m, deps in g.items() if _within(m, READ_SIDE)
                  for dep in deps if _within(dep, WRITE_SIDE))


def layer_violations(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports of a higher layer (read -> write and write -> read included)."""
    bad = []
    for m, deps in g.items():
        for dep in deps:
            a, b = layer(m), layer(dep)
            if RANK[b] > RANK[a] or {a, b} == {"read", "write"}:
                bad.append((m, dep))
    return sorted(bad)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dot", action="store_true", help="print the graph in Graphviz dot")
    args = ap.parse_args()
    g = graph()
    if args.dot:
        print("digraph lei_store {")
        for m, deps in sorted(g.items()):
            for d in sorted(deps):
                print(f'  "{m}" -> "{d}";')
        print("}")
        return 0
    found = cycles(g)
    bad = read_side_violations(g)
    upward = [v for v in layer_violations(g) if v not in bad]
    for comp in found:
        print("cycle: " + " <-> ".join(comp))
    for m, dep in bad:
        print(f"read side imports write side: {m} -> {dep}")
    for m, dep in upward:
        print(f"imports a higher layer: {m} ({layer(m)}) -> {dep} ({layer(dep)})")
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports, {len(found)} cycles, "
          f"{len(bad)} read->write imports, {len(upward)} upward imports")
    return 1 if found or bad or upward else 0


if __name__ == "__main__":
    sys.exit(main())
