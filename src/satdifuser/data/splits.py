"""Splits of class-folder datasets: split files, split folders, a default split, label budgets.

Where a split comes from (:func:`resolve_class_split`), in order: a split file given or found;
split folders (``<root>/train/<Class>/*``, ``val/``, ``test/``: the release's own splits, as
many datasets ship); else the deterministic :func:`default_split`, which says on stderr (one
warning line) how many images it puts in each split and how to change it.

A split file is JSON with ``classes`` (sorted class names = label ids) and one list of paths per
split (``train``, ``val``, ``test``, ``unlabeled``), relative to the image folder, each list in
per-class blocks (the layout of ``eurosat_rgb_split.json``). A label budget of ``k`` per class
keeps the first ``k`` entries of each class's block of ``train``.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from satdifuser._typing import PathLike
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

SPLITS: tuple[str, ...] = ("train", "val", "test", "unlabeled")
"""Split names of a split file; ``all`` means every file."""

SPLIT_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
"""Folder names read as a split when a root holds split folders of class folders."""


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


def scan_split_folders(root: Path, suffixes: Iterable[str]) -> dict[str, list[str]] | None:
    """Splits given by folders: ``<root>/<split>/<Class>/<file>`` for the names of
    :data:`SPLIT_DIRS` (case-insensitive).

    Returns:
        A split dict like a split file's (``classes``: sorted union of the class folders; one
        list per split folder found, paths ``<split dir>/<Class>/<file>`` relative to ``root``),
        or None when ``root`` holds no split folder with class folders of such files.
    """
    if not root.is_dir():
        return None
    dirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    out: dict[str, list[str]] = {}
    classes: set[str] = set()
    for split, names in SPLIT_DIRS.items():
        d = next((dirs[n] for n in names if n in dirs), None)
        if d is None:
            continue
        by_class = scan_class_folders(d, suffixes)
        if by_class:
            classes |= set(by_class)
            out[split] = [f"{d.name}/{f}" for fs in by_class.values() for f in fs]
    if not out:
        return None
    return {"classes": sorted(classes), **out}


def _any_class_folder(folder: Path, suf: set[str]) -> bool:
    return any(
        p.is_dir() and any(f.suffix.lower() in suf for f in p.iterdir())
        for p in folder.iterdir()
        if not p.name.startswith(".")
    )


def has_class_images(folder: Path, suffixes: Iterable[str]) -> bool:
    """Whether ``folder`` holds class folders of such files, directly or in split folders
    (stops at the first hit; no full scan)."""
    if not folder.is_dir():
        return False
    suf = {s.lower() for s in suffixes}
    if _any_class_folder(folder, suf):
        return True
    names = {n for ns in SPLIT_DIRS.values() for n in ns}
    return any(
        p.is_dir() and p.name.lower() in names and _any_class_folder(p, suf)
        for p in folder.iterdir()
    )


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
    """Class name of a ``Class/file`` or ``split/Class/file`` path (the folder holding it)."""
    parts = Path(rel_path).parts
    return parts[-2] if len(parts) >= 2 else parts[0]


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


@dataclass
class ClassSplit:
    """The split of a class-folder dataset and where it comes from.

    Attributes:
        data: Split dict (``classes`` and one path list per split, relative to the root).
        source: Where it comes from, for messages (a file, the split folders, the default).
        all_files: Every image found (paths relative to the root), for ``split="all"``.
        kind: ``file``, ``folders`` or ``default``.
    """

    data: dict[str, list[str]]
    source: str
    all_files: list[str]
    kind: str

    def counts(self) -> dict[str, int]:
        """Images per split (splits present in :attr:`data` only)."""
        return {s: len(self.data[s]) for s in SPLITS if s in self.data}


def resolve_class_split(
    root: Path,
    suffixes: Iterable[str],
    split_file: PathLike | None,
    split: str,
    what: str = "dataset",
    stacklevel: int = 3,
) -> ClassSplit:
    """The split of a class-folder dataset: split file, else split folders, else default split.

    With the default split, asking for ``train``/``val``/``test`` warns once (one line) how many
    images go to which split, that the rest is set aside, and how to change it.

    Args:
        root: The image folder (holding ``<Class>/`` or ``train/<Class>/`` ...).
        suffixes: Image file suffixes.
        split_file: JSON split file (None: folders or default).
        split: The split asked for (decides whether the default-split note is relevant).
        what: Dataset name for messages.
        stacklevel: Passed to :func:`warnings.warn` (the caller of the dataset constructor).

    Raises:
        DatasetNotFoundError: the split file does not exist.
        DataFormatError: the split file is malformed.
    """
    suffixes = tuple(suffixes)
    folders = scan_split_folders(root, suffixes)
    if folders is not None:
        all_files = [f for s in SPLITS for f in folders.get(s, [])]
    else:
        all_files = [f for fs in scan_class_folders(root, suffixes).values() for f in fs]
    if split_file is not None:
        return ClassSplit(load_split_file(split_file), str(split_file), all_files, "file")
    if folders is not None:
        found = [s for s in SPLITS if s in folders]
        return ClassSplit(folders, f"the split folders of {root} ({'/'.join(found)})",
                          all_files, "folders")  # fmt: skip
    data = default_split(scan_class_folders(root, suffixes))
    cs = ClassSplit(data, f"the default split of {root}", all_files, "default")
    aside = len(data["unlabeled"])
    if split in ("train", "val", "test") and aside:
        n = cs.counts()
        warnings.warn(
            f"{what} {root}: no split file or train/val/test folders, so the default split is "
            f"used: {n['train']} train, {n['val']} val, {n['test']} test images, {aside} set "
            "aside as 'unlabeled' (train/val/test take at most 200/100/200 per class); to change "
            "it pass split_file= a JSON split or arrange the images as train/, val/, test/ "
            "class folders",
            stacklevel=stacklevel,
        )
    return cs


__all__ = [
    "SPLITS",
    "SPLIT_DIRS",
    "ClassSplit",
    "apply_budget",
    "class_of",
    "default_split",
    "has_class_images",
    "load_split_file",
    "natural_key",
    "resolve_class_split",
    "scan_class_folders",
    "scan_split_folders",
    "select_split",
]
