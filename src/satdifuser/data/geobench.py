"""GEO-Bench v1 dataset (all 12 tasks), read directly with h5py and a restricted unpickler.

Data card:
    Source: GEO-Bench v1 (Lacoste et al., NeurIPS 2023 Datasets & Benchmarks, arXiv 2306.03831),
    Hugging Face dataset ``recursix/geo-bench-1.0``; licence CC-BY-SA-4.0.
    Format: ``<root>/{classification,segmentation}_v1.0/<task>/`` with ``task_specs.pkl``,
    ``*_partition.json``, ``band_stats.json`` and one HDF5 file per sample (one dataset per band,
    a ``label`` dataset for segmentation, the root attribute ``pickle``). Facts and pitfalls:
    ``shared/docs/geobench.md``. The ``geobench`` package is never imported.
    Tasks: see :data:`~satdifuser.data.geobench_tasks.GEOBENCH_TASKS`.

Sample dict (TorchGeo keys): ``image`` (C, H, W) float32; ``label`` (int64 scalar, or float32
multi-hot (K,) for m-bigearthnet) or ``mask`` (H, W) int64; ``meta`` (7,) float32 DiffusionSat
metadata in physical units ``[lon, lat, gsd_m, cloud_fraction, year, month, day]``, NaN where
unknown (GEO-Bench files carry no position unless a geographic CRS is pickled; the GSD is the
native one of the returned grid, before any resize; cloud fraction is never known), the backbone
normalises it; ``id`` str.

Views: ``rgb`` gives the task's red, green, blue bands scaled to [0, 1] by the task rule
(``/4095`` S2 DN, ``×10000/4095`` m-so2sat reflectance, ``/255`` 8-bit, none for m-chesapeake;
clipped). ``multispectral`` gives all (or the chosen) bands as float32, ``ms_scaling="raw"``
(values as stored) or ``"standardize"`` ((x - mean) / std from ``band_stats.json``).

m-eurosat band shift: GEO-Bench's converter names the TorchGeo EuroSAT bands positionally, so the
datasets ``08A, 09, 10, 11, 12`` hold B09, B10, B11, B12, B8A (geobench.md §8; the sample files'
``09`` averages ≈14 and ``10`` ≈2,887). With ``fix_band_shift=True`` (default) band names mean
the physical band and channels come in Sentinel-2 order; with ``False`` the stored names are
used and a warning is issued. RGB (02-04) is unaffected either way.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from satdifuser._typing import PathLike, Sample
from satdifuser.data import geobench_bands as bands_mod
from satdifuser.data import geobench_format as fmt
from satdifuser.data.geobench_tasks import (
    GEOBENCH_TASKS,
    GeoBenchTaskInfo,
    class_table,
    infer_task_name,
)
from satdifuser.data.meta import make_meta
from satdifuser.errors import (
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    UnknownNameError,
)

IGNORE_INDEX = -100


def _resolve_root(root: PathLike | None) -> Path:
    """Explicit root, else the project's data root (``$SATDIFUSER_DATA``, ``shared/data``)
    holding ``geobench/``, else ``$GEO_BENCH_DIR`` (GEO-Bench's own variable)."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    from satdifuser.data.roots import resolve_data_root

    try:
        return resolve_data_root(None, "geobench")
    except DatasetNotFoundError:
        env = os.environ.get("GEO_BENCH_DIR", "")
        if env:
            return Path(env).expanduser()
        raise


def detect_geobench(path: PathLike) -> bool:
    """True when ``path`` is a GEO-Bench task dir, a benchmark dir or a root holding benchmarks."""
    p = Path(path)
    if fmt.is_task_dir(p):
        return True
    if not p.is_dir():
        return False
    dirs = [p / b for b in fmt.BENCHMARKS if (p / b).is_dir()] or [p]
    return any(fmt.is_task_dir(d / c.name) for d in dirs for c in d.iterdir() if c.is_dir())


def find_tasks(path: PathLike) -> dict[str, Path]:
    """Task name -> task folder for every GEO-Bench task at or below ``path`` (two levels).

    Folders whose task cannot be recognised (by name or specs ``dataset_name``) are listed
    under their folder name.
    """
    p = Path(path)
    if fmt.is_task_dir(p):
        dirs = [p]
    else:
        parents = [p / b for b in fmt.BENCHMARKS if (p / b).is_dir()] or [p]
        dirs = [c for d in parents for c in sorted(d.iterdir()) if fmt.is_task_dir(c)]
    out: dict[str, Path] = {}
    for d in dirs:
        name = infer_task_name(d.name)
        if name is None:
            specs = fmt.load_task_specs(d)
            name = infer_task_name(d.name, str(specs.get("dataset_name") or ""))
        out[name or d.name] = d
    return out


class GeoBench(Dataset[Sample]):
    """One split of one GEO-Bench v1 task.

    Args:
        root: Folder holding ``classification_v1.0/`` and ``segmentation_v1.0/``, a benchmark
            folder, a folder of task folders (``m-eurosat-sample/`` ...), or a task folder
            itself (then the task is inferred from its name or specs, else ``task`` is used).
            None: ``$SATDIFUSER_DATA`` (or ``shared/data``) holding ``geobench/``, else
            ``$GEO_BENCH_DIR``.
        task: Task name as published (``m-eurosat`` ... ``m-chesapeake``).
        split: ``train``, ``val`` (= ``valid``/``validation`` on disk) or ``test``.
        partition: ``default`` or a train-size partition (``0.01x_train`` ... ``1.00x_train``).
        view: ``rgb`` (3 bands in [0, 1]) or ``multispectral`` (all or ``bands``).
        bands: Band names (descriptor, alt name such as ``red``/``8A``, or prefix of a dated
            descriptor); default: the task's RGB bands (rgb) or all bands (multispectral).
        transforms: Callable applied to each sample dict.
        ms_scaling: Multispectral scaling, ``raw`` or ``standardize`` (band_stats.json).
        fix_band_shift: Correct m-eurosat's band names (see module docstring).
        ignore_nodata: Map the task's "no data" class to ``ignore_index`` in masks (PANGAEA style);
            GEO-Bench and SatDiFuser ignore nothing (default).

    Raises:
        DatasetNotFoundError: root, task folder, partition or a sample file is missing.
        DataFormatError: malformed specs, partition or sample files; empty split.
        ConfigError: unknown split or band.
        UnknownNameError: unknown task.
    """

    def __init__(
        self,
        root: PathLike | None = None,
        task: str = "m-eurosat",
        split: Literal["train", "val", "test"] = "train",
        partition: str = "default",
        view: Literal["rgb", "multispectral"] = "rgb",
        bands: list[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        ms_scaling: Literal["raw", "standardize"] = "standardize",
        fix_band_shift: bool = True,
        ignore_nodata: bool = False,
    ) -> None:
        if view not in ("rgb", "multispectral"):
            raise ConfigError(f"view={view!r} is not one of 'rgb', 'multispectral'")
        if ms_scaling not in ("raw", "standardize"):
            raise ConfigError(f"ms_scaling={ms_scaling!r} is not one of 'raw', 'standardize'")
        root_path = _resolve_root(root)
        if fmt.is_task_dir(root_path):
            inferred = infer_task_name(root_path.name) or infer_task_name(
                "", str(fmt.load_task_specs(root_path).get("dataset_name") or "")
            )
            task_dir = root_path
        else:
            inferred = None
        name = inferred or task
        if name not in GEOBENCH_TASKS:
            close = [t for t in GEOBENCH_TASKS if t.lower() == name.lower()]
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UnknownNameError(
                f"unknown GEO-Bench task {name!r}; {hint}known: {', '.join(GEOBENCH_TASKS)}"
            )
        info: GeoBenchTaskInfo = GEOBENCH_TASKS[name]
        if inferred is None:
            task_dir = fmt.find_task_dir(root_path, name, info.benchmark)
        self.root, self.task_dir, self.task, self.info = root_path, task_dir, name, info
        self.split, self.partition, self.view = split, partition, view
        self.transforms, self.ms_scaling, self.ignore_nodata = transforms, ms_scaling, ignore_nodata

        self.specs = fmt.load_task_specs(task_dir)
        self.partition_file, part = fmt.load_partition(task_dir, partition)
        self.ids = fmt.split_ids(self.partition_file, part, split)
        self._warn_overlap(part)
        self.files = [task_dir / f"{i}.hdf5" for i in self.ids]
        missing = [f for f in self.files if not f.is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"{missing[0]}: sample listed in {self.partition_file.name} ({split}) is missing "
                f"({len(missing)} of {len(self.files)} missing); re-extract the task"
            )
        self.band_stats = fmt.load_band_stats(task_dir)
        self._init_labels()
        first = fmt.open_record(self.files[0])
        shifted = name == "m-eurosat" and bands_mod.eurosat_is_shifted(self.band_stats)
        self.layout = bands_mod.build_layout(
            first, self.specs, fix_eurosat_shift=shifted and fix_band_shift
        )
        where = f"{task_dir} ({self.layout.order_source})"
        if bands is None and view == "rgb":
            bands = list(info.rgb_bands)
        self.selected = self.layout.entries
        if bands:
            self.selected = bands_mod.select_bands(self.layout, list(bands), where)
        if shifted and not fix_band_shift:
            hit = [e.name for e in self.selected if e.name in bands_mod.EUROSAT_SHIFT]
            if hit:
                warnings.warn(
                    f"m-eurosat bands {hit} hold other bands than their names say (08A..12 hold "
                    "B09, B10, B11, B12, B8A); pass fix_band_shift=True for the corrected mapping",
                    stacklevel=2,
                )
        self.band_names: list[str] = [e.label for e in self.selected]
        self._mean_std = self._stats() if view == "multispectral" else None

    # -- init helpers -------------------------------------------------------------------------
    def _warn_overlap(self, part: dict[str, list[str]]) -> None:
        mine = set(self.ids)
        own_keys = fmt.SPLIT_ALIASES[self.split]
        shared = {k: len(mine & set(v)) for k, v in part.items() if k not in own_keys}
        shared = {k: n for k, n in shared.items() if n}
        if shared:
            warnings.warn(
                f"{self.partition_file}: split {self.split!r} shares ids with "
                f"{', '.join(f'{k} ({n})' for k, n in shared.items())}; results on these splits "
                "are not independent",
                stacklevel=3,
            )

    def _init_labels(self) -> None:
        lt = self.specs.get("label_type")
        lt = lt if isinstance(lt, dict) else {}
        cls = str(lt.get("_class", ""))
        if cls.endswith("MultiLabelClassification"):
            self.task_type = "multilabel"
        elif cls.endswith(("SegmentationClasses", "SemanticSegmentation")):
            self.task_type = "segmentation"
        elif cls.endswith("Classification"):
            self.task_type = "classification"
        else:
            self.task_type = self.info.task_type
        n = lt.get("n_classes")
        self.num_classes = int(n) if isinstance(n, (int, np.integer)) else self.info.num_classes
        names = next(
            (lt[k] for k in ("_class_names", "class_names", "class_name") if lt.get(k)), None
        )
        self.classes, self.classes_source = class_table(self.info, names, self.num_classes)
        self.ignore_index = IGNORE_INDEX
        self.nodata_class = self.info.nodata_class

    def _stats(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.ms_scaling == "raw":
            return None
        path = self.task_dir / "band_stats.json"
        mean, std = [], []
        for e in self.selected:
            st = self.band_stats.get(e.dataset)
            if not isinstance(st, dict) or "mean" not in st or "std" not in st:
                raise DatasetNotFoundError(
                    f"{path}: no mean/std for band {e.dataset!r} (file missing or incomplete); "
                    "use ms_scaling='raw' or restore band_stats.json"
                )
            s = float(st["std"])
            mean.append(float(st["mean"]))
            std.append(s if s > 0 else 1.0)
        return np.asarray(mean, np.float32), np.asarray(std, np.float32)

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        path = self.files[index]
        names = list(dict.fromkeys(e.dataset for e in self.selected))
        seg = self.task_type == "segmentation"
        rec, arrays = fmt.read_sample(path, names + (["label"] if seg else []))
        sample: Sample = {"id": self.ids[index]}
        if seg:
            mask = self._mask(path, arrays.pop("label"))
            target = tuple(mask.shape)
            if not any(s[:2] == target for k, s in rec.shapes.items() if k != "label"):
                shapes = sorted({s[:2] for k, s in rec.shapes.items() if k != "label"})
                raise DataFormatError(
                    f"{path}: label mask is {target[0]}x{target[1]} but no band has that size "
                    f"(band sizes {shapes}); mask and image do not match: re-extract the file"
                )
            sample["mask"] = torch.from_numpy(mask)
        else:
            target = max((a.shape[:2] for a in arrays.values()), key=lambda s: s[0] * s[1])
            sample["label"] = self._label(path, rec.attrs.get("label"))
        sample["image"] = self._image(arrays, target)
        sample["meta"] = self._meta(rec, target)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _image(self, arrays: dict[str, np.ndarray], target: tuple[int, ...]) -> torch.Tensor:
        chans = []
        for e in self.selected:
            a = arrays[e.dataset]
            a = a[..., e.channel] if e.channel is not None else a
            t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
            if tuple(t.shape) != tuple(target):  # mixed resolutions: resample to the target grid
                t = F.interpolate(t[None, None], size=tuple(target), mode="bilinear")[0, 0]
            chans.append(t)
        img = torch.stack(chans)
        if self.view == "rgb":
            return (img * self.info.scale).clamp_(0.0, 1.0)
        if self._mean_std is not None:
            mean, std = (torch.from_numpy(x)[:, None, None] for x in self._mean_std)
            img = (img - mean) / std
        return img

    def _label(self, path: Path, value: Any) -> torch.Tensor:
        if self.task_type == "multilabel":
            arr = np.asarray(value if value is not None else [], dtype=np.float64).reshape(-1)
            if arr.shape != (self.num_classes,) or not np.isin(arr, (0, 1)).all():
                raise DataFormatError(
                    f"{path}: multi-label target has shape {arr.shape} / values "
                    f"{np.unique(arr)[:5].tolist()}; expected a 0/1 vector of {self.num_classes}"
                )
            return torch.from_numpy(arr.astype(np.float32))
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise DataFormatError(
                f"{path}: classification label is {type(value).__name__} {value!r:.60}; expected "
                "an int class index in the 'pickle' attribute"
            )
        if not 0 <= int(value) < self.num_classes:
            raise DataFormatError(
                f"{path}: label {int(value)} is out of range for {self.num_classes} classes "
                f"(0..{self.num_classes - 1}); the file does not belong to {self.task}"
            )
        return torch.tensor(int(value), dtype=torch.int64)

    def _mask(self, path: Path, raw: np.ndarray) -> np.ndarray:
        m = raw[..., 0] if raw.ndim == 3 and raw.shape[-1] == 1 else raw
        if m.ndim != 2:
            raise DataFormatError(f"{path}: label dataset has shape {raw.shape}; expected (H, W)")
        m = m.astype(np.int64)
        bad = (m < 0) | (m >= self.num_classes)
        if bad.any():
            vals = np.unique(m[bad])[:5].tolist()
            raise DataFormatError(
                f"{path}: mask holds values {vals} outside 0..{self.num_classes - 1} "
                f"({int(bad.sum())} pixels); the file does not belong to {self.task} or is corrupt"
            )
        if self.ignore_nodata and self.nodata_class is not None:
            m[m == self.nodata_class] = self.ignore_index
        return m

    def _meta(self, rec: fmt.SampleRecord, target: tuple[int, ...]) -> torch.Tensor:
        lon = lat = math.nan
        gsd = math.nan
        date = None
        lab = rec.attrs.get("label")
        if self.task_type == "segmentation" and isinstance(lab, dict):
            gsd = float(lab.get("spatial_resolution") or math.nan)
        for e in self.selected:
            meta = rec.attrs.get(e.dataset)
            meta = meta if isinstance(meta, dict) else {}
            if math.isnan(lon):
                lon, lat = bands_mod.lonlat_from_georef(meta, tuple(target[:2]))  # type: ignore[arg-type]
            if math.isnan(gsd) and rec.shapes.get(e.dataset, ())[:2] == tuple(target):
                gsd = float(meta.get("spatial_resolution") or e.resolution or math.nan)
            date = date or bands_mod.as_date(meta.get("date")) or bands_mod.as_date(e.date)
        if math.isnan(gsd):
            gsd = float(self.specs.get("spatial_resolution") or self.info.gsd)
        if date is None:
            return make_meta(lon=lon, lat=lat, gsd=gsd)
        return make_meta(lon=lon, lat=lat, gsd=gsd, year=date.year, month=date.month, day=date.day)

    # -- display ------------------------------------------------------------------------------
    def rgb_indices(self) -> list[int] | None:
        """Positions of red, green, blue in ``band_names`` (None when not all are selected)."""
        if self.view == "rgb":
            return [0, 1, 2] if len(self.selected) >= 3 else None
        try:
            layout = bands_mod.BandLayout(self.selected, "")
            want = bands_mod.select_bands(layout, list(self.info.rgb_bands), "")
        except ConfigError:
            return None
        return [self.selected.index(e) for e in want[:3]]

    def plot(self, sample: Sample, suptitle: str | None = None) -> Any:
        """Figure of a sample: RGB image, plus the mask (overlaid) for segmentation.

        Returns:
            A ``matplotlib.figure.Figure``.
        """
        from satdifuser.data.geobench_plot import plot_sample

        return plot_sample(self, sample, suptitle)

    def __repr__(self) -> str:
        return (
            f"GeoBench(task={self.task!r}, split={self.split!r}, partition={self.partition!r}, "
            f"view={self.view!r}, n={len(self)}, bands={len(self.band_names)}, "
            f"dir={str(self.task_dir)!r})"
        )


__all__ = ["IGNORE_INDEX", "GeoBench", "detect_geobench", "find_tasks"]
