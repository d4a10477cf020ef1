"""Low-level GEO-Bench v1 reading: task folders, specs, partitions, band layout, one HDF5 sample.

Format facts: ``shared/docs/geobench.md`` §2-§6. Nothing here imports the ``geobench`` package;
pickles go through :mod:`satdifuser.data.safe_pickle`.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

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
_DATE_SUFFIX = re.compile(r"_(\d{4}-\d{2}-\d{2})$")

#: m-eurosat: what each stored descriptor really holds (geobench.md §8, "band shift").
EUROSAT_SHIFT: dict[str, str] = {
    "08A - Vegetation Red Edge": "09 - Water vapour",
    "09 - Water vapour": "10 - SWIR - Cirrus",
    "10 - SWIR - Cirrus": "11 - SWIR",
    "11 - SWIR": "12 - SWIR",
    "12 - SWIR": "08A - Vegetation Red Edge",
}
_S2_ORDER = (
    "01 - Coastal aerosol", "02 - Blue", "03 - Green", "04 - Red", "05 - Vegetation Red Edge",
    "06 - Vegetation Red Edge", "07 - Vegetation Red Edge", "08 - NIR",
    "08A - Vegetation Red Edge", "09 - Water vapour", "10 - SWIR - Cirrus", "11 - SWIR",
    "12 - SWIR",
)  # fmt: skip


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
    from satdifuser.data.geobench_tasks import infer_task_name

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


def eurosat_is_shifted(band_stats: dict[str, dict[str, float]]) -> bool:
    """Whether band stats show the m-eurosat shift (``09`` ≈ cirrus, ``10`` ≈ SWIR).

    True when the stats are absent (the released m-eurosat has the shift).
    """
    try:
        wv = float(band_stats["09 - Water vapour"]["mean"])
        ci = float(band_stats["10 - SWIR - Cirrus"]["mean"])
    except (KeyError, TypeError, ValueError):
        return True
    return wv * 10 < ci


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


def read_sample(path: Path, names: list[str]) -> tuple[SampleRecord, dict[str, np.ndarray]]:
    """Attributes, dataset shapes and the named datasets of one sample file (one open).

    Raises:
        DatasetNotFoundError: the file is missing.
        DataFormatError: a dataset or the ``pickle`` attribute is missing, or the file is
            corrupt or truncated.
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
    return _record(path, raw, shapes), out


@dataclass(frozen=True)
class BandEntry:
    """One output channel: its physical name, the dataset (and channel) holding it, metadata."""

    name: str
    dataset: str
    channel: int | None = None
    alt_names: tuple[str, ...] = ()
    resolution: float | None = None
    date: str | None = None

    @property
    def label(self) -> str:
        """Display name: ``name`` plus ``[channel]`` for a channel of a 3-D dataset."""
        return self.name if self.channel is None else f"{self.name}[{self.channel}]"


@dataclass
class BandLayout:
    """All channels of a task in canonical order, with the rule used to order them."""

    entries: list[BandEntry]
    order_source: str
    shifted: bool = False
    notes: list[str] = field(default_factory=list)


def _base_name(descriptor: str) -> tuple[str, str | None]:
    m = _DATE_SUFFIX.search(descriptor)
    return (descriptor[: m.start()], m.group(1)) if m else (descriptor, None)


def _band_meta(attrs: dict[str, Any], specs_bands: dict[str, dict[str, Any]], desc: str) -> dict:
    meta = attrs.get(desc)
    meta = meta if isinstance(meta, dict) else {}
    info = meta.get("band_info")
    if not isinstance(info, dict):
        info = specs_bands.get(_base_name(desc)[0], {})
    return {"meta": meta, "info": info}


def build_layout(
    record: SampleRecord, specs: dict[str, Any], fix_eurosat_shift: bool = False
) -> BandLayout:
    """Canonical channel list of a task from its first sample and its specs.

    Order: ``bands_order`` (minus ``label``), else ``task_specs.bands_info`` names matched to the
    datasets (date suffixes allowed), else sorted dataset names. 3-D datasets ``(H, W, n)``
    contribute ``n`` channels. With ``fix_eurosat_shift`` the m-eurosat descriptors are renamed to
    the bands they really hold and sorted into Sentinel-2 order.
    """
    datasets = [k for k in record.shapes if k != "label"]
    specs_bands = {
        str(b.get("name")): b for b in specs.get("bands_info") or [] if isinstance(b, dict)
    }
    order = record.attrs.get("bands_order")
    if isinstance(order, (list, tuple)) and order:
        descs, source = [str(d) for d in order if d != "label"], "bands_order"
    elif specs_bands:
        descs = []
        for name in specs_bands:
            descs += [d for d in datasets if d == name or _base_name(d)[0] == name]
        descs += [d for d in sorted(datasets) if d not in descs]
        source = "task_specs.bands_info"
    else:
        descs, source = sorted(datasets), "sorted dataset names"
    missing = [d for d in descs if d not in record.shapes]
    if missing:
        raise DataFormatError(
            f"{record.path}: bands {missing} are listed in {source} but have no dataset; the file "
            "is incomplete: re-extract it"
        )
    entries: list[BandEntry] = []
    for desc in descs:
        bm = _band_meta(record.attrs, specs_bands, desc)
        base, date = _base_name(desc)
        res = bm["meta"].get("spatial_resolution") or bm["info"].get("spatial_resolution")
        kw = {
            "alt_names": tuple(str(a) for a in bm["info"].get("alt_names") or ()),
            "resolution": float(res) if res else None,
            "date": date,
        }
        shape = record.shapes[desc]
        if len(shape) == 3:
            entries += [BandEntry(base, desc, c, **kw) for c in range(shape[2])]
        elif len(shape) == 2:
            entries.append(BandEntry(base, desc, None, **kw))
        else:
            raise DataFormatError(
                f"{record.path}: band {desc!r} has shape {shape}; expected (H, W) or (H, W, n)"
            )
    layout = BandLayout(entries, source)
    if fix_eurosat_shift:
        by_name = {e.name: e for e in entries}
        fixed = []
        for e in entries:
            true = EUROSAT_SHIFT.get(e.name, e.name)
            spec_alt = specs_bands.get(true, {}).get("alt_names")
            alt = tuple(spec_alt or by_name.get(true, e).alt_names)
            fixed.append(BandEntry(true, e.dataset, e.channel, alt, e.resolution, e.date))
        rank = {n: i for i, n in enumerate(_S2_ORDER)}
        fixed.sort(key=lambda e: rank.get(e.name, len(rank)))
        layout = BandLayout(fixed, source + " + m-eurosat shift fix", shifted=True)
    return layout


def select_bands(layout: BandLayout, queries: list[str], where: str) -> list[BandEntry]:
    """Channels matching each query: exact name, case-insensitive name or alt name, date prefix.

    A query naming a 3-D dataset selects all its channels; ``Name[i]`` selects one channel.

    Raises:
        ConfigError: a query matches nothing; the message lists the available bands.
    """
    out: list[BandEntry] = []
    for q in queries:
        ql = q.lower()
        tests = (
            lambda e, q=q: e.label == q,
            lambda e, ql=ql: e.label.lower() == ql or e.name.lower() == ql,
            lambda e, ql=ql: ql in (a.lower() for a in e.alt_names),
            lambda e, ql=ql: e.dataset.lower().startswith(ql),
        )
        hits: list[BandEntry] = []
        for test in tests:
            hits = [e for e in layout.entries if test(e)]
            if hits:
                break
        if not hits:
            names = list(dict.fromkeys(e.name for e in layout.entries))
            close = difflib.get_close_matches(q, names, n=2, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ConfigError(
                f"unknown band {q!r} in {where}; {hint}available: {', '.join(names)}"
            )
        out += hits
    return out


def as_date(value: Any) -> datetime.date | None:
    """A band's ``date`` field as a date (accepts date, datetime, ISO string), else None."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def lonlat_from_georef(meta: dict[str, Any], shape: tuple[int, int]) -> tuple[float, float]:
    """Centre (lon, lat) from a band's pickled ``transform``/``crs`` when the CRS is geographic.

    Only EPSG:4326 / WGS 84 geographic CRSs are understood (no pyproj); otherwise (nan, nan).
    """
    crs, tr = meta.get("crs"), meta.get("transform")
    crs_text = json.dumps(crs, default=str) if crs is not None else ""
    geographic = "4326" in crs_text or crs_text.lstrip('"{').upper().find("GEOGCS") >= 0
    coeffs = None
    if isinstance(tr, dict):
        coeffs = tr.get("_args") or tr.get("_state")
    elif isinstance(tr, (list, tuple)):
        coeffs = tr
    if not geographic or not isinstance(coeffs, (list, tuple)) or len(coeffs) < 6:
        return math.nan, math.nan
    a, b, c, d, e, f = (float(v) for v in coeffs[:6])
    h, w = shape
    return c + a * w / 2 + b * h / 2, f + d * w / 2 + e * h / 2


__all__ = [
    "BENCHMARKS",
    "EUROSAT_SHIFT",
    "SPLIT_ALIASES",
    "BandEntry",
    "BandLayout",
    "SampleRecord",
    "as_date",
    "build_layout",
    "eurosat_is_shifted",
    "find_task_dir",
    "is_task_dir",
    "list_partitions",
    "load_band_stats",
    "load_label_map",
    "load_partition",
    "load_task_specs",
    "lonlat_from_georef",
    "open_record",
    "read_sample",
    "select_bands",
]
