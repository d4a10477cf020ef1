"""Low-level GEO-Bench v1 files: task folders, specs, partitions, stats, label map, HDF5 samples.

Format facts: ``shared/docs/geobench.md`` §2-§6. Nothing here imports the ``geobench`` package;
pickles go through :mod:`satdifuser.data.safe_pickle`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from satdifuser.data.geobench_tasks import infer_task_name
from satdifuser.data.nodata import check_finite
from satdifuser.data.safe_pickle import decode_pickle_attr, safe_load, to_plain
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

BENCHMARKS: tuple[str, ...] = ("classification_v1.0", "segmentation_v1.0")
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "val": ("valid", "val", "validation"),
    "valid": ("valid", "val", "validation"),
    "validation": ("valid", "val", "validation"),
    "test": ("test",),
}


def is_task_dir(path: Path) -> bool:
    """True when ``path`` is a GEO-Bench task dir (``task_specs.pkl``, or partitions + HDF5)."""
    if not path.is_dir():
        return False
    if (path / "task_specs.pkl").is_file():
        return True
    has_partition = any(path.glob("*_partition.json"))
    return has_partition and any(path.glob("*.hdf5"))


def find_task_dir(root: Path, task: str, benchmark: str) -> Path:
    """Locate the task folder under ``root`` (the task dir itself, a benchmark dir or its parent).

    Raises:
        DatasetNotFoundError: nothing matches; the message names the paths tried.
    """
    if is_task_dir(root):
        return root
    candidates = [root / benchmark / task, root / task, root / "geobench" / benchmark / task]
    for cand in candidates:
        if is_task_dir(cand):
            return cand
    for parent in (root / benchmark, root):  # e.g. root/m-eurosat-sample
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if infer_task_name(child.name) == task and is_task_dir(child):
                    return child
    if not root.exists():
        raise DatasetNotFoundError(
            f"GEO-Bench root {str(root)!r} does not exist; set root to the folder that holds "
            f"{benchmark}/ (or to a task folder such as {benchmark}/{task})"
        )
    raise DatasetNotFoundError(
        f"no {task} task under root={str(root)!r} (looked for "
        f"{benchmark}/{task}/task_specs.pkl and {task}/task_specs.pkl); set root to the folder "
        f"that holds {benchmark}/ or download the task (geobench-download)"
    )


def load_task_specs(task_dir: Path) -> dict[str, Any]:
    """``task_specs.pkl`` as a plain dict (``{}`` when the file is absent)."""
    path = task_dir / "task_specs.pkl"
    if not path.is_file():
        return {}
    specs = to_plain(safe_load(path))
    if not isinstance(specs, dict):
        raise DataFormatError(
            f"{path}: expected a pickled TaskSpecifications, got {type(specs).__name__}"
        )
    return specs


def list_partitions(task_dir: Path) -> list[str]:
    """Names of the partitions in a task dir (``default``, ``0.01x_train`` ...), sorted."""
    return sorted(p.name[: -len("_partition.json")] for p in task_dir.glob("*_partition.json"))


def load_partition(task_dir: Path, partition: str) -> tuple[Path, dict[str, list[str]]]:
    """Read ``<partition>_partition.json`` (symlinks resolved).

    Raises:
        DatasetNotFoundError: the file (or a symlink's target) is missing.
        DataFormatError: the file is not a JSON object of id lists.
    """
    path = task_dir / f"{partition}_partition.json"
    if not path.exists():  # also False for a dangling symlink
        available = list_partitions(task_dir)
        link = f" (a symlink to the missing {str(path.readlink())!r})" if path.is_symlink() else ""
        raise DatasetNotFoundError(
            f"{path}: partition file not found{link}; available partitions: "
            f"{', '.join(available) or 'none'}; choose one of them or restore the file"
        )
    try:
        data = json.loads(path.resolve().read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc}); re-extract the task") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in data.values()
    ):
        raise DataFormatError(
            f"{path}: expected {{'train': [ids], 'valid': [ids], 'test': [ids]}}; "
            "re-extract the task"
        )
    return path, data


def split_ids(path: Path, data: dict[str, list[str]], split: str) -> list[str]:
    """Ids of ``split`` (``val``/``valid``/``validation`` are aliases) from a partition dict.

    Raises:
        ConfigError: unknown split name.
        DataFormatError: the split is missing from the file or empty.
    """
    if split not in SPLIT_ALIASES:
        raise ConfigError(f"split={split!r} is not one of train, val, valid, validation, test")
    key = next((k for k in SPLIT_ALIASES[split] if k in data), None)
    if key is None:
        raise DataFormatError(
            f"{path}: no {split!r} split (keys: {', '.join(data) or 'none'}); expected train, "
            "valid and test"
        )
    ids = data[key]
    if not ids:
        raise DataFormatError(
            f"{path}: split {key!r} is empty; choose another partition or split"
        )
    return list(ids)


def load_band_stats(task_dir: Path) -> dict[str, dict[str, float]]:
    """``band_stats.json`` (``{}`` when absent)."""
    path = task_dir / "band_stats.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc}); re-extract the task") from exc
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected an object of per-band statistics")
    return data


@dataclass
class SampleRecord:
    """One HDF5 sample: attribute dict (plain), dataset shapes and the file path."""

    path: Path
    attrs: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]


def load_label_map(task_dir: Path) -> dict[int, list[str]] | None:
    """``label_map.json`` keyed by the integer value of each key (not its position), or None."""
    path = task_dir / "label_map.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return {int(k): list(v) for k, v in data.items()}
    except (OSError, json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise DataFormatError(
            f"{path}: expected {{'<int label>': [sample ids]}} ({exc}); re-extract the task"
        ) from exc


def open_record(path: Path) -> SampleRecord:
    """Read the attribute dict and the dataset shapes of one sample file.

    Raises:
        DatasetNotFoundError: the file is missing.
        DataFormatError: not an HDF5 file, truncated, or without the ``pickle`` attribute.
    """
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path}: sample file listed in the partition is missing; re-extract the task"
        )
    try:
        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("pickle")
            shapes = {k: tuple(h5[k].shape) for k in h5.keys() if isinstance(h5[k], h5py.Dataset)}
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise DataFormatError(
            f"{path}: not a readable HDF5 file ({exc}); it is corrupt or truncated: re-extract it"
        ) from exc
    return _record(path, raw, shapes)


def _record(path: Path, raw: Any, shapes: dict[str, tuple[int, ...]]) -> SampleRecord:
    if raw is None:
        raise DataFormatError(
            f"{path}: HDF5 root attribute 'pickle' is missing; not a GEO-Bench sample file"
        )
    attrs = to_plain(decode_pickle_attr(raw, str(path)))
    if not isinstance(attrs, dict):
        raise DataFormatError(f"{path}: attribute 'pickle' does not hold a dict")
    return SampleRecord(path=path, attrs=attrs, shapes=shapes)


_NONFINITE_FIX = "GEO-Bench declares no nodata: re-extract the file or drop it from the partition"


def read_sample(path: Path, names: list[str]) -> tuple[SampleRecord, dict[str, np.ndarray]]:
    """Attributes, dataset shapes and the named datasets of one sample file (one open).

    Raises:
        DatasetNotFoundError: the file is missing.
        DataFormatError: a dataset or the ``pickle`` attribute is missing, the file is
            corrupt or truncated, or a dataset holds NaN / Inf (GEO-Bench declares no nodata).
    """
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path}: sample file listed in the partition is missing; re-extract the task"
        )
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("pickle")
            shapes = {k: tuple(h5[k].shape) for k in h5.keys() if isinstance(h5[k], h5py.Dataset)}
            for name in names:
                if name not in h5:
                    raise DataFormatError(
                        f"{path}: dataset {name!r} is missing (present: {', '.join(h5.keys())}); "
                        "all samples of a task must have the same bands"
                    )
                out[name] = np.asarray(h5[name][()])
    except DataFormatError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise DataFormatError(
            f"{path}: could not read the HDF5 data ({exc}); it is corrupt or truncated: "
            "re-extract it"
        ) from exc
    for name, arr in out.items():  # the readers' shared NaN/Inf policy (data/nodata.py)
        check_finite(arr, f"{path}: band {name!r}", fix=_NONFINITE_FIX)
    return _record(path, raw, shapes), out


__all__ = [
    "BENCHMARKS",
    "SPLIT_ALIASES",
    "SampleRecord",
    "find_task_dir",
    "is_task_dir",
    "list_partitions",
    "load_band_stats",
    "load_label_map",
    "load_partition",
    "load_task_specs",
    "open_record",
    "read_sample",
    "split_ids",
]
