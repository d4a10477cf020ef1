"""Splits of class-folder datasets: split files, a deterministic default split, label budgets.

A split file is JSON with ``classes`` (sorted class names = label ids) and one list of paths per
split (``train``, ``val``, ``test``, ``unlabeled``), relative to the image folder, each list in
per-class blocks (the layout of ``eurosat_rgb_split.json``). A label budget of ``k`` per class
keeps the first ``k`` entries of each class's block of ``train``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from satdifuser._typing import PathLike
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

SPLITS: tuple[str, ...] = ("train", "val", "test", "unlabeled")
"""Split names of a split file; ``all`` means every file."""


def natural_key(text: str) -> list[object]:
    """Sort key ordering ``x_2`` before ``x_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def scan_class_folders(image_dir: Path, suffixes: Iterable[str]) -> dict[str, list[str]]:
    """Map class folder name -> naturally sorted ``Class/file`` paths of files with ``suffixes``."""
    suf = {s.lower() for s in suffixes}
    out: dict[str, list[str]] = {}
    for cls_dir in sorted(p for p in image_dir.iterdir() if p.is_dir()):
        if cls_dir.name.startswith("."):
            continue
        files = [f.name for f in cls_dir.iterdir() if f.suffix.lower() in suf and f.is_file()]
        if files:
            out[cls_dir.name] = [f"{cls_dir.name}/{f}" for f in sorted(files, key=natural_key)]
    return out


def load_split_file(path: PathLike) -> dict[str, list[str]]:
    """Read and check a split file.

    Raises:
        DatasetNotFoundError: the file does not exist.
        DataFormatError: it is not JSON, or ``classes``/split lists are not lists of strings.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(
            f"split file {p} does not exist; pass split_file= an existing JSON file "
            "(keys classes/train/val/test/unlabeled) or split_file=None for the default split"
        )
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"split file {p} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"split file {p} holds a {type(data).__name__}; expected an object")
    for key, value in data.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataFormatError(f"split file {p}: key {key!r} must be a list of strings")
    return data


def select_split(
    data: dict[str, list[str]], split: str, source: str, all_files: Sequence[str] = ()
) -> list[str]:
    """Entries of one split (``all``: ``all_files``, or the union of the split lists).

    Raises:
        ConfigError: unknown split name.
        DataFormatError: the split is missing or empty in ``source``.
    """
    if split == "all":
        files = list(all_files) or [f for s in SPLITS for f in data.get(s, [])]
    elif split in SPLITS:
        if split not in data:
            raise DataFormatError(
                f"split {split!r} is missing in {source} (it has {sorted(data)}); "
                "choose one of those splits"
            )
        files = list(data[split])
    else:
        raise ConfigError(f"split={split!r} is unknown; expected one of {[*SPLITS, 'all']}")
    if not files:
        raise DataFormatError(f"split {split!r} in {source} is empty; choose another split")
    return files


def default_split(files_by_class: dict[str, list[str]], seed: int = 0) -> dict[str, list[str]]:
    """The deterministic split used when no split file is given.

    Per class, files are sorted naturally and shuffled with ``random.Random(f"{seed}:{class}")``;
    then ``test`` takes ``min(200, n // 5)``, ``val`` ``min(100, n // 10)``, ``train``
    ``min(200, n // 5)`` and ``unlabeled`` the rest (for EuroSAT: 200/100/200 per class like
    ``eurosat_rgb_split.json``, but other images). Lists are in per-class blocks.
    """
    out: dict[str, list[str]] = {"classes": sorted(files_by_class)}
    for s in SPLITS:
        out[s] = []
    for cls in out["classes"]:
        files = sorted(files_by_class[cls], key=natural_key)
        random.Random(f"{seed}:{cls}").shuffle(files)
        n = len(files)
        n_test, n_val, n_train = min(200, n // 5), min(100, n // 10), min(200, n // 5)
        out["test"] += files[:n_test]
        out["val"] += files[n_test : n_test + n_val]
        out["train"] += files[n_test + n_val : n_test + n_val + n_train]
        out["unlabeled"] += files[n_test + n_val + n_train :]
    return out


def class_of(rel_path: str) -> str:
    """Class name of a ``Class/file`` path (its first component)."""
    return Path(rel_path).parts[0]


def apply_budget(files: Sequence[str], budget: int, source: str) -> list[str]:
    """Keep the first ``budget`` files of each class's block, in order.

    Raises:
        ConfigError: ``budget`` < 1, or a class has fewer than ``budget`` files.
    """
    if budget < 1:
        raise ConfigError(f"budget={budget} must be >= 1 (images per class) or None for all")
    counts: dict[str, int] = {}
    kept: list[str] = []
    for f in files:
        c = class_of(f)
        if counts.get(c, 0) < budget:
            kept.append(f)
        counts[c] = counts.get(c, 0) + 1
    short = {c: n for c, n in counts.items() if n < budget}
    if short:
        raise ConfigError(
            f"budget={budget} per class but {source} has fewer for {short}; "
            "lower the budget or use a larger split"
        )
    return kept


__all__ = [
    "SPLITS",
    "apply_budget",
    "class_of",
    "default_split",
    "load_split_file",
    "natural_key",
    "scan_class_folders",
    "select_split",
]
