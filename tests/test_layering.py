"""Data flows one way: data -> nn -> losses -> families -> train -> metrics / artifacts -> serve -> cli.

A module may import only from its own layer or the ones before it (DESIGN.md section 2).
"""

import ast
from pathlib import Path

import ganforge

ROOT = Path(ganforge.__file__).parent
LAYERS = {  # first package component below ganforge -> rank
    "__init__": 0, "config": 0, "checkpoint": 0, "image": 0, "latent": 0,
    "data": 1, "nn": 2, "losses": 3, "families": 4, "train": 5,
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
        assert layer in LAYERS, f"{path}: add '{layer}' to LAYERS in tests/test_layering.py and DESIGN.md"


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
