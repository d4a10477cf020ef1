"""``satdifuser list [backbones|fusions|heads|datasets]``: registered names with one-line docs."""

from __future__ import annotations

import importlib
from typing import Any

from satdifuser.errors import NotAvailableError

# kind -> (package, registry attribute); the package import registers its entries.
KINDS: dict[str, tuple[str, str]] = {
    "backbones": ("satdifuser.backbones", "BACKBONES"),
    "fusions": ("satdifuser.fusion", "FUSIONS"),
    "heads": ("satdifuser.heads", "HEADS"),
    "datasets": ("satdifuser.data", "DATASETS"),
}


def _registry(kind: str) -> Any | None:
    package, attr = KINDS[kind]
    for module_name in (package, f"{package}.base"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, attr):
            return getattr(module, attr)
    return None


def _summary(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def run(argv: list[str]) -> int:
    """Print the registered names of one kind, or of all kinds."""
    if argv and argv[0] in {"-h", "--help"}:
        print(f"usage: satdifuser list [{'|'.join(KINDS)}]")
        return 0
    kinds = argv or list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise NotAvailableError(f"cannot list {unknown[0]!r}; choose from {', '.join(KINDS)}")
    for kind in kinds:
        registry = _registry(kind)
        print(f"{kind}:")
        if registry is None:
            print("  (none in this version)")
            continue
        for name in registry.names():
            print(f"  {name:<26} {_summary(registry.get(name))}")
    return 0


__all__ = ["KINDS", "run"]
