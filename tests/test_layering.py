"""Data flows one way: data -> nn -> losses -> families -> train -> metrics / artifacts -> serve -> cli.

A module may import only from its own layer or the ones before it, and no modules may import each other
in a cycle, not even through a function-level import or a package __init__.py (docs/architecture.md).
"""

import ast
from pathlib import Path

import ganforge

ROOT = Path(ganforge.__file__).parent
LAYERS = {  # first package component below ganforge -> rank
    "__init__": 0, "config": 0, "checkpoint": 0, "image": 0, "latent": 0, "files": 0, "cache": 0, "recipes": 0,
    "data": 1, "text": 1, "nn": 2, "losses": 3, "families": 4, "train": 5,
    "metrics": 6, "artifacts": 6, "serve": 7, "cli": 8, "__main__": 9,
}


def _layer(parts: list[str]) -> str:
    return parts[0].removesuffix(".py") if parts else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, target top-level module inside ganforge) for every ganforge import in a file."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from .. import x": x names a module of the top package
                    target = [node.names[0].name]
            elif node.module and node.module.startswith("ganforge"):
                target = node.module.split(".")[1:] or [node.names[0].name]
            else:
                continue
            found.append((node.lineno, _layer(target)))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ganforge."):
                    found.append((node.lineno, _layer(alias.name.split(".")[1:])))
    return found


def test_every_module_is_in_a_known_layer():
    for path in ROOT.rglob("*.py"):
        layer = _layer(list(path.relative_to(ROOT).parts))
        assert layer in LAYERS, (
            f"{path}: add '{layer}' to LAYERS in tests/test_layering.py and docs/architecture.md"
        )


def test_no_upward_imports():
    violations = []
    for path in ROOT.rglob("*.py"):
        own = LAYERS[_layer(list(path.relative_to(ROOT).parts))]
        for line, target in _imports(path):
            if target in LAYERS and LAYERS[target] > own:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    fake = ROOT / "data" / "_layering_probe.py"
    try:
        fake.write_text("from ..train import Trainer\n")
        assert (fake.stat().st_size and _imports(fake)) == [(1, "train")]
    finally:
        fake.unlink()


# --- Import cycles between modules ----------------------------------------------------------------
#
# Layers say which *packages* may import which; within a layer (and through __init__ re-exports) modules
# can still import each other in a circle, which works only as long as every name a module takes from a
# half-initialised partner happens to be defined already. The graph below has one node per module (file)
# and one edge per import that can run:
#
# - every import statement counts wherever it is: module level, inside a function or a method (a runtime
#   import is still an edge, and it is how cycles hide), inside try/except. Only the body of
#   `if TYPE_CHECKING:` is skipped: it never runs (its `else:` branch does, and counts).
# - relative imports are resolved to full module names (`from ..data import builtin` in metrics/x.py ->
#   ganforge.data.builtin). In `from P import name`, name is the submodule P.name when P/name.py or
#   P/name/__init__.py exists, otherwise an attribute of P, i.e. an import of P/__init__.py.
# - package __init__.py edges: importing P.m first runs the __init__ of every package on the way to
#   P.m, so `from ..data.spec import X` in families/base.py is also an edge to data/__init__.py. That
#   implicit edge is left out for the packages that contain the importer: they are already running (or
#   done) before its first line. So a package __init__ importing its own submodules
#   (families/__init__.py -> families/dcgan.py) is the normal re-export pattern, not half of a cycle.
#   A module that imports its own package *explicitly* (`from . import FAMILIES`, or
#   `from ..families import FAMILIES` in a module inside families/) does get an edge to that
#   __init__.py: it needs names from a half-run __init__, and if that __init__ imports the module back
#   (directly or via others) that is a real cycle and is reported.
# - a module importing itself is not an edge. Only modules inside the package are nodes.
#
# Every strongly connected component of more than one module (Tarjan) is a cycle; the failure lists each
# one with one shortest loop through it and every import line inside it.

def _module_files(root: Path) -> dict[str, Path]:
    """Full dotted module name -> file, for every module of the package at root (named root.name)."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST):
    """Every Import / ImportFrom node that can run: anywhere, except the body of `if TYPE_CHECKING:`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _imported_modules(node: ast.Import | ast.ImportFrom, me: str, is_package: bool, modules) -> set[str]:
    """The full names of the modules an import statement in module `me` names (before parent packages)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        package = (me if is_package else me.rpartition(".")[0]).split(".")
        if node.level - 1 >= len(package):
            return set()  # beyond the top-level package: an ImportError, not an edge
        base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
    else:
        base = node.module
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}


def _import_graph(root: Path) -> tuple[dict[str, Path], dict[tuple[str, str], list[str]]]:
    """(modules, edges): edges maps (importer, imported) -> ["file:line ..." for each import behind it]."""
    modules = _module_files(root)
    edges: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for me, path in modules.items():
        is_package = path.name == "__init__.py"
        running = {".".join(me.split(".")[:i]) for i in range(1, me.count(".") + 2)}  # me and its packages
        where = path.relative_to(root)
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            for target in sorted(_imported_modules(node, me, is_package, modules)):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    # parent packages of the target are edges unless already running; the target itself,
                    # even the importer's own package (`from . import X`), always is, but never me itself
                    if step in modules and step != me and (step == target or step not in running):
                        how = "" if step == target else f" (its __init__ runs first for {target})"
                        text = f"{where}:{node.lineno} imports {step}{how}"
                        edges.setdefault((me, step), []).append((node.lineno, text))
    return modules, {edge: [text for _, text in sorted(found)] for edge, found in edges.items()}


def _cycles(nodes, edges) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted, in sorted order."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in sorted(edges):
        if a != b:
            succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return sorted(found)


def _shortest_loop(component: list[str], edges) -> list[str]:
    """One shortest cycle through the component's first module, as [m0, m1, ..., m0]."""
    inside = set(component)
    succ: dict[str, list[str]] = {n: [] for n in component}
    for a, b in sorted(edges):
        if a in inside and b in inside:
            succ[a].append(b)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for a in frontier:
            for b in succ[a]:
                if b not in came_from:
                    came_from[b] = a
                    if b == start:
                        loop = [start]
                        while True:
                            loop.append(came_from[loop[-1]])
                            if loop[-1] == start:
                                return loop[::-1]
                    nxt.append(b)
        frontier = nxt
    return component  # unreachable for a strongly connected component


def _describe_cycles(root: Path) -> list[str]:
    modules, edges = _import_graph(root)
    report = []
    for component in _cycles(modules, edges):
        inside = set(component)
        lines = [" -> ".join(_shortest_loop(component, edges))]
        for (a, b), where in sorted(edges.items()):
            if a in inside and b in inside and a != b:
                lines += [f"    {w}" for w in where]
        report.append("\n".join(lines))
    return report


def test_no_import_cycles():
    cycles = _describe_cycles(ROOT)
    assert not cycles, f"{len(cycles)} import cycle(s) between modules:\n" + "\n".join(cycles)


def test_the_checker_catches_an_import_cycle(tmp_path):
    pkg = tmp_path / "probe"
    (pkg / "sub").mkdir(parents=True)
    files = {
        # re-exporting its submodules is fine: a.py never imports probe/__init__.py back
        "__init__.py": "from .a import A\nfrom .c import C\n",
        # runtime import inside a function: a <-> b is a cycle; the TYPE_CHECKING import of c is not an edge
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\nA = 1\n\n"
        "def f():\n    from .b import B\n    return B\n",
        "b.py": "from . import a\nB = 2\n",  # a.py exists: a module import
        # A is no module: an import of probe/__init__.py, which imports c.py: probe <-> c through the __init__
        "c.py": "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    from . import A\nC = 3\n",
        # d imports probe.sub.m, which first runs probe/sub/__init__.py, which imports d
        "d.py": "from .sub.m import M\n",
        "sub/__init__.py": "from ..d import *\n",
        "sub/m.py": "from ..a import A\nM = 4\n",  # no edge to probe/__init__.py: it is running already
        "e.py": "import probe.sub.m\nfrom probe import b\n",  # absolute imports; no cycle through e
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    modules, edges = _import_graph(pkg)
    assert ("probe.a", "probe.c") not in edges  # TYPE_CHECKING
    assert ("probe.sub.m", "probe") not in edges and ("probe.sub.m", "probe.a") in edges
    assert ("probe.c", "probe") in edges  # `from . import A`: explicitly its own package's __init__
    assert {("probe.e", "probe.sub"), ("probe.e", "probe.sub.m"), ("probe.e", "probe.b")} <= set(edges)
    assert edges[("probe.a", "probe.b")] == ["a.py:7 imports probe.b"]
    assert _cycles(modules, edges) == [
        ["probe", "probe.c"], ["probe.a", "probe.b"], ["probe.d", "probe.sub"]
    ]
    report = _describe_cycles(pkg)
    assert report[1] == (
        "probe.a -> probe.b -> probe.a\n    a.py:7 imports probe.b\n    b.py:1 imports probe.a"
    )
    assert "d.py:1 imports probe.sub (its __init__ runs first for probe.sub.m)" in report[2]
