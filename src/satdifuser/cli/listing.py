"""``satdifuser list [backbones|fusions|heads|datasets]``: registered names with one-line docs.

Backbones, fusions and heads are the registries of their packages. Datasets are the dataset
and data-module classes that :mod:`satdifuser.data` exports (a YAML ``data.class_path`` takes
``satdifuser.data.<Name>``), plus the GEO-Bench tasks that ``GeoBenchDataModule`` reads.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from satdifuser.errors import UnknownNameError

# kind -> (package, registry attribute); the package import registers its entries.
REGISTRIES: dict[str, tuple[str, str]] = {
    "backbones": ("satdifuser.backbones", "BACKBONES"),
    "fusions": ("satdifuser.fusion", "FUSIONS"),
    "heads": ("satdifuser.heads", "HEADS"),
}
KINDS: tuple[str, ...] = (*REGISTRIES, "datasets")
_WIDTH = 26


def summary(obj: Any, limit: int = 100) -> str:
    """The first sentence of ``obj``'s docstring on one line (its first paragraph, cut there)."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    sentence = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z`:])", paragraph, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 3] + "..."


def _registry_lines(kind: str) -> list[str]:
    package, attr = REGISTRIES[kind]
    registry = getattr(importlib.import_module(package), attr)
    return [f"  {name:<{_WIDTH}} {summary(registry.get(name))}" for name in registry.names()]


def dataset_entries() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """``(datasets, data_modules)``: ``(name, class)`` pairs exported by :mod:`satdifuser.data`."""
    from lightning.pytorch import LightningDataModule
    from torch.utils.data import Dataset

    import satdifuser.data as data

    datasets, modules = [], []
    for name in sorted(data.__all__):
        obj = getattr(data, name)
        if isinstance(obj, type) and issubclass(obj, LightningDataModule):
            modules.append((name, obj))
        elif isinstance(obj, type) and issubclass(obj, Dataset) and hasattr(obj, "__len__"):
            datasets.append((name, obj))
    return datasets, modules


def _dataset_lines() -> list[str]:
    from satdifuser.data.geobench_tasks import GEOBENCH_TASKS

    datasets, modules = dataset_entries()
    lines = [f"  {name:<{_WIDTH}} {summary(cls)}" for name, cls in datasets]
    lines.append("data modules (YAML data.class_path: satdifuser.data.<name>):")
    lines += [f"  {name:<{_WIDTH}} {summary(cls)}" for name, cls in modules]
    lines.append("GEO-Bench tasks (GeoBenchDataModule task=<name>):")
    for name, info in GEOBENCH_TASKS.items():
        what = f"{info.task_type}, {info.num_classes} classes, {info.sensor}"
        lines.append(f"  {name:<{_WIDTH}} {what}")
    return lines


def run(argv: list[str]) -> int:
    """Print the registered names of one kind, or of all kinds.

    Raises:
        UnknownNameError: a kind that is not one of :data:`KINDS`.
    """
    if argv and argv[0] in {"-h", "--help"}:
        print(f"usage: satdifuser list [{'|'.join(KINDS)}]")
        return 0
    kinds = argv or list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UnknownNameError(f"cannot list {unknown[0]!r}; choose from {', '.join(KINDS)}")
    for kind in kinds:
        print(f"{kind}:")
        print("\n".join(_dataset_lines() if kind == "datasets" else _registry_lines(kind)))
    return 0


__all__ = ["KINDS", "REGISTRIES", "dataset_entries", "run", "summary"]
