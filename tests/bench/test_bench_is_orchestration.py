"""bench/ is experiment orchestration over the library: no models, datasets or cache readers.

Models train as satdifuser tasks (``tasks.fit_and_test``), data comes from ``satdifuser.data`` and
features from the library cache (``CachedDataModule``/``CachedView``); baselines live in
``satdifuser.baselines``. This scan fails when a bench module defines an ``nn.Module`` or a
``Dataset``/data module, or reads safetensors / cache shards itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "src" / "satdifuser" / "bench"
FORBIDDEN_BASES = {"Module", "Dataset", "IterableDataset", "LightningModule",
                   "LightningDataModule", "BaseTask", "InMemoryFeatures"}  # fmt: skip
FORBIDDEN_MODULES = ("safetensors", "satdifuser.features.cache_shard",
                     "satdifuser.features.cache_format")  # fmt: skip
FORBIDDEN_NAMES = {"shard_tensors", "safe_open", "load_file", "load_index", "load_state_dict"}
KNOWN: dict[str, set[str]] = {}


def _base(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def findings(source: str) -> set[str]:
    """What a bench module must not do, one line each."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for b in node.bases:
                if _base(b) in FORBIDDEN_BASES:
                    found.add(f"class {node.name}({_base(b)})")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else names
            for m in mods:
                if m.startswith(FORBIDDEN_MODULES):
                    found.add(f"import {m}")
            if isinstance(node, ast.ImportFrom):
                found |= {f"import {n}" for n in names if n in FORBIDDEN_NAMES}
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.add(f".{node.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and (".safetensors" in node.value or "shard-" in node.value)
        ):
            found.add(f"string {node.value!r}")
    return found


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_module_defines_no_model_dataset_or_cache_reader(path: Path) -> None:
    bad = findings(path.read_text()) - KNOWN.get(path.name, set())
    assert not bad, f"{path.name}: {sorted(bad)}; use the library (tasks, data, features cache)"


def test_the_scan_catches_what_bench_used_to_hold() -> None:
    old = '''
from safetensors.torch import load_file
class FusionClassifier(nn.Module): ...
class Bank(torch.utils.data.Dataset): ...
def load_cache(ds):
    return [ds.shard_tensors(k) for k in range(3)], "shard-00001.safetensors"
'''
    assert findings(old) == {
        "import safetensors.torch", "import load_file", "class FusionClassifier(Module)",
        "class Bank(Dataset)", ".shard_tensors", "string 'shard-00001.safetensors'",
    }  # fmt: skip
