"""The package reads as the pipeline: imports only go down the layers (style.md section 6.1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "satdifuser"
CORE = {"errors", "registry", "_typing", "_system", "_atomic_io", "__init__", "__version__"}

# package -> satdifuser packages it may import (besides itself and the core modules)
ALLOWED: dict[str, set[str]] = {
    "data": set(),
    "backbones": set(),
    "viz": set(),
    "heads": set(),
    "fusion": {"features.spec"},
    "baselines": {"features.spec", "features.extractor", "features.taps", "tasks.metrics"},
    "features": {"backbones", "data"},
    "interop": {"backbones", "features", "fusion", "heads", "model.inputs"},
    "pretrain": {"data", "backbones"},
    "model": {"backbones", "features", "fusion", "heads", "data.bands"},
    "predict": {"data", "backbones", "features", "fusion", "heads", "model", "viz"},
    "embed": {"data", "backbones", "features", "fusion", "heads", "model"},
    "tasks": {"data", "backbones", "features", "fusion", "heads", "viz", "interop", "model"},
    "bench": {"data", "backbones", "features", "fusion", "heads", "viz", "interop", "tasks",
              "model", "predict",
              "baselines", "pretrain"},
    "cli": {"data", "backbones", "features", "fusion", "heads", "viz", "interop", "tasks",
            "model", "predict", "embed",
            "baselines", "pretrain", "bench"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("satdifuser.")}


def _allowed(package: str, target: str) -> bool:
    parts = target.split(".")[1:]
    if not parts or parts[0] in CORE or parts[0] == package:
        return True
    dotted = ".".join(parts)
    return any(dotted == a or dotted.startswith(a + ".") or parts[0] == a
               for a in ALLOWED[package])


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_go_down_the_pipeline(package: str) -> None:
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for target in _imports(path):
            if not _allowed(package, target):
                bad.append(f"{path.relative_to(SRC)} imports {target}")
    assert not bad, "backward or sideways imports:\n" + "\n".join(bad)


def test_every_package_is_covered_by_the_layer_table() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"weights"} <= set(ALLOWED), sorted(packages - set(ALLOWED))
