"""Folders of GeoTIFFs (multispectral): class folders or image/mask pairs."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from satdifuser._typing import PathLike, Sample
from satdifuser.data.bands import (
    band_indices,
    band_table,
    default_band_names,
    default_range,
    default_rgb,
    scale_bands,
)
from satdifuser.data.geotiff_io import TIFF_SUFFIXES, band_count, read_geotiff
from satdifuser.data.image_io import read_mask_pixels
from satdifuser.data.mask_codec import check_index_mask
from satdifuser.data.nodata import nodata_mask
from satdifuser.data.plotting import plot_sample
from satdifuser.data.splits import (
    apply_budget,
    class_of,
    has_class_images,
    load_split_file,
    natural_key,
    resolve_class_split,
    select_split,
)
from satdifuser.data.transforms import UniformSizeCheck
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class GeoTiffFolder(Dataset[Sample]):
    """GeoTIFF rasters (any band count and dtype, e.g. EuroSAT-MS: 13 bands uint16).

    Layouts:

    - ``classes``: ``<root>/<Class>/<name>.tif`` or ``<root>/{train,val,test}/<Class>/<name>.tif``
      (classification). Splits as for :class:`~satdifuser.data.eurosat.EuroSAT`: a JSON split
      file (paths relative to root), else the split folders (they are the splits), else the
      deterministic :func:`~satdifuser.data.splits.default_split` (announced by one warning
      line), plus a label budget. All images must share the first image's size (so they can
      be batched) unless ``transforms`` resize them.
    - ``pairs``: ``<root>/<image_dir>/<name>.tif`` with the index mask
      ``<root>/<mask_dir>/<name>.tif`` (or ``.png``) (segmentation), whole images; the split file
      is JSON ``{split: [image paths relative to root]}``, without one every pair is used.

    Bands: names from the file's GDAL band descriptions, else ``band_names`` (a list, or the
    name of a table of :data:`~satdifuser.data.bands.BAND_TABLES`: ``eurosat_ms``,
    ``sentinel2_l1c``, ...), else assumed by count (13: the EuroSAT-MS order, B8A last;
    Sentinel-2 stacks in wavelength order need ``band_names="sentinel2_l1c"``).
    ``view="rgb"`` keeps the ``rgb`` bands (names or 0-based
    indices; default B04, B03, B02 or the first three), ``view="all"`` keeps every band.
    Scaling to [0, 1]: ``fixed`` (``value_range``, default by dtype: uint8 /255, other integers
    /4095 like S2 DN, floats as is) or per-image ``percentile`` stretch.
    ``meta`` comes from the GeoTIFF tags (see :mod:`satdifuser.data.geotiff_io`).

    Non-finite pixels (NaN, Inf) are refused with the file name, unless the file declares them
    nodata (GDAL_NODATA tag). Nodata pixels (of the kept bands) are left out of percentile
    statistics and read as 0; in the pairs layout their mask pixels become ``ignore_index``
    (see :mod:`satdifuser.data.nodata`).

    Args:
        root: Folder holding the layout.
        layout: ``auto`` (class folders if any, else pairs), ``classes`` or ``pairs``.
        split: ``train``, ``val``, ``test``, ``unlabeled`` or ``all``.
        split_file: JSON split file (None: default split for classes, all pairs for pairs).
        budget: Label budget per class (classes layout).
        classes: Class names; required for ``pairs`` (ids of the masks); for ``classes`` the
            default is the split file's ``classes`` or the sorted folder names.
        view: ``rgb`` or ``all``.
        rgb: Three band names or indices for the RGB view.
        band_names: Names of the file's bands when it has no descriptions, or a band table
            name (``"eurosat_ms"``, ``"sentinel2_l1c"``, ``"sentinel2_l2a"``, ...).
        scale: ``fixed`` or ``percentile``.
        value_range: (low, high) raw values mapped to 0 and 1 by ``fixed``.
        percentiles: (low, high) percentiles of ``percentile``.
        ignore_index: Mask value for unlabelled pixels (pairs).
        image_dir: Image folder of the pairs layout.
        mask_dir: Mask folder of the pairs layout.
        transforms: Callable applied to each sample dict.
        check_sizes: Refuse an image whose size differs from the first image's (they could
            not be batched); False keeps every image's own size (batch size 1, inspection).

    Raises:
        DatasetNotFoundError: root, split file or a mask missing.
        DataFormatError: empty split, unreadable file, mask/image size mismatch, mask label out
            of range, NaN/Inf pixels not declared nodata, an image of another size than the
            first (classes layout, without resizing ``transforms``) (when read).
        ConfigError: unknown band, bad arguments.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        root: PathLike,
        layout: Literal["auto", "classes", "pairs"] = "auto",
        split: Literal["train", "val", "test", "unlabeled", "all"] = "all",
        split_file: PathLike | None = None,
        budget: int | None = None,
        classes: list[str] | None = None,
        view: Literal["rgb", "all"] = "rgb",
        rgb: list[str | int] | None = None,
        band_names: Sequence[str] | str | None = None,
        scale: Literal["fixed", "percentile"] = "fixed",
        value_range: tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (2.0, 98.0),
        ignore_index: int = 255,
        image_dir: str = "images",
        mask_dir: str = "masks",
        transforms: Callable[[Sample], Sample] | None = None,
        check_sizes: bool = True,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"no GeoTIFF folder at root={str(self.root)!r}; set root to the folder holding "
                "<Class>/*.tif or images/ + masks/"
            )
        if view not in ("rgb", "all") or scale not in ("fixed", "percentile"):
            raise ConfigError(
                f"view={view!r}/scale={scale!r}: expected rgb|all and fixed|percentile"
            )
        self.split, self.view, self.scale = split, view, scale
        self.value_range, self.percentiles = value_range, percentiles
        self.ignore_index, self.transforms = ignore_index, transforms
        self.check_sizes = check_sizes
        self.image_dir, self.mask_dir = image_dir, mask_dir
        if layout == "auto":
            pairs = (self.root / image_dir).is_dir() and (self.root / mask_dir).is_dir()
            layout = "pairs" if pairs else "classes"
            if not pairs and not has_class_images(self.root, TIFF_SUFFIXES):
                raise DatasetNotFoundError(
                    f"{self.root} holds neither <Class>/*.tif folders (or train/<Class>/*.tif) "
                    f"nor {image_dir}/*.tif; set root to a GeoTIFF folder"
                )
        self.layout = layout
        if layout == "classes":
            self._init_classes(split_file, budget, classes)
        elif layout == "pairs":
            self._init_pairs(split_file, classes)
        else:
            raise ConfigError(f"layout={layout!r} is not one of 'auto', 'classes', 'pairs'")
        c, _, _, self.dtype = band_count(self.files[0])
        _, info = read_geotiff(self.files[0], with_pixels=False)
        if info.band_names and len(info.band_names) == c:
            self.band_names, self.band_names_source = info.band_names, "GDAL band descriptions"
        elif band_names is not None:
            table = isinstance(band_names, str)
            names = list(band_table(band_names) if isinstance(band_names, str) else band_names)
            if len(names) != c:
                what = f"band table {band_names!r}" if table else "band_names"
                raise ConfigError(
                    f"{what} has {len(names)} names but {self.files[0]} has {c} bands; "
                    "give one name per band"
                )
            self.band_names = names
            self.band_names_source = f"band table {band_names!r}" if table else "band_names"
        else:
            self.band_names, self.band_names_source = default_band_names(c)
        where = f"{self.files[0]} ({self.band_names_source})"
        if view == "rgb":
            self.bands = (
                band_indices(rgb, self.band_names, where)
                if rgb
                else default_rgb(self.band_names, where)
            )
            if len(self.bands) != 3:
                raise ConfigError(f"rgb={rgb} must name exactly 3 bands")
        else:
            self.bands = list(range(c))
        self._noted = False
        self._size_check = UniformSizeCheck(self.files[0], lambda p: band_count(p)[1:3])

    def _init_classes(
        self,
        split_file: PathLike | None,
        budget: int | None,
        classes: list[str] | None,
    ) -> None:
        found = resolve_class_split(
            self.root, TIFF_SUFFIXES, split_file, self.split, type(self).__name__, stacklevel=4
        )
        if not found.all_files:
            raise DatasetNotFoundError(
                f"no <Class>/*.tif or train/<Class>/*.tif folders in {self.root}"
            )
        all_files, data, source = found.all_files, found.data, found.source
        self.split_source, self.split_kind, self.split_counts = source, found.kind, found.counts()
        self.classes = list(
            classes or data.get("classes") or sorted({class_of(f) for f in all_files})
        )
        rel = select_split(data, self.split, source, all_files if self.split == "all" else ())
        if budget is not None:
            rel = apply_budget(rel, budget, f"split {self.split!r} of {source}")
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({class_of(f) for f in rel} - set(index))
        if unknown:
            raise DataFormatError(
                f"{source} lists images of class {unknown[0]!r}, which is not among the "
                f"{len(index)} classes {self.classes}; fix classes or the split file"
            )
        self.files = [self.root / f for f in rel]
        missing = [f for f in self.files if not f.is_file()]
        if missing:
            raise DatasetNotFoundError(f"{source} lists missing file {missing[0]}")
        self.targets: list[int] = [index[class_of(f)] for f in rel]
        self.masks: list[Path] = []

    def _init_pairs(self, split_file: PathLike | None, classes: list[str] | None) -> None:
        if not classes:
            raise ConfigError("the pairs layout needs classes=[...] (names of mask ids 0..K-1)")
        self.classes = list(classes)
        folder = self.root / self.image_dir
        if split_file is not None:
            data = load_split_file(split_file)
            rel = select_split(data, self.split, str(split_file))
            self.files = [self.root / r for r in rel]
        elif folder.is_dir():
            self.files = sorted(
                (p for p in folder.iterdir() if p.suffix.lower() in TIFF_SUFFIXES),
                key=lambda p: natural_key(p.name),
            )
        else:
            raise DatasetNotFoundError(f"no {folder} folder of GeoTIFF images")
        if not self.files:
            raise DataFormatError(f"{folder} holds no .tif images; the selection is empty")
        self.masks = []
        for f in self.files:
            cands = [
                f.parent.parent / self.mask_dir / f"{f.stem}{s}" for s in (".tif", ".tiff", ".png")
            ]
            hit = next((m for m in cands if m.is_file()), None)
            if hit is None:
                raise DatasetNotFoundError(f"image {f} has no mask (expected {cands[0]})")
            self.masks.append(hit)
        self.targets = []

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def task_type(self) -> str:
        """``classification`` (class folders) or ``segmentation`` (pairs)."""
        return "classification" if self.layout == "classes" else "segmentation"

    def __len__(self) -> int:
        return len(self.files)

    def read_raw(self, index: int) -> np.ndarray:
        """Raw pixels (C, H, W) of image ``index``, all bands, stored dtype."""
        arr, _ = read_geotiff(self.files[index])
        assert arr is not None
        return arr

    def __getitem__(self, index: int) -> Sample:
        path = self.files[index]
        kept, info = read_geotiff(path, bands=self.bands)  # only the kept bands are read
        assert kept is not None
        if info.notes and not self._noted:
            self._noted = True
            warnings.warn(f"{path}: {'; '.join(info.notes)}", stacklevel=2)
        if self.layout == "classes" and self.check_sizes:
            self._size_check(kept.shape[1:], path, self.transforms)
        stored = kept.dtype
        hole = nodata_mask(kept, info.nodata)
        if hole is not None:  # nodata -> NaN: out of the percentiles, 0 after scaling
            kept = kept.astype(np.float32)
            kept[:, hole] = np.nan
        vr = self.value_range if self.value_range is not None else default_range(stored)
        img = scale_bands(kept, self.scale, vr, self.percentiles)
        sample: Sample = {
            "image": torch.from_numpy(np.ascontiguousarray(img)),
            "meta": torch.tensor(info.meta_values(), dtype=torch.float32),
            "id": path.relative_to(self.root).as_posix(),
        }
        if self.layout == "classes":
            sample["label"] = torch.tensor(self.targets[index], dtype=torch.int64)
        else:
            sample["mask"] = self._mask(index, kept.shape[1:])
            if hole is not None:
                sample["mask"][torch.from_numpy(hole)] = self.ignore_index
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _mask(self, index: int, hw: tuple[int, ...]) -> torch.Tensor:
        mpath = self.masks[index]
        if mpath.suffix.lower() == ".png":
            pixels = read_mask_pixels(mpath, palette_as_rgb=False)
        else:
            raw, minfo = read_geotiff(mpath)
            assert raw is not None
            pixels = raw[0] if raw.shape[0] == 1 else raw
            hole = nodata_mask(pixels, minfo.nodata) if pixels.ndim == 2 else None
            if hole is not None:  # declared nodata in the mask -> ignore_index
                pixels = np.where(hole, self.ignore_index, np.nan_to_num(pixels))
        if pixels.ndim != 2:
            raise DataFormatError(
                f"mask {mpath} has {pixels.shape[0]} bands; expected 1 (class ids)"
            )
        if tuple(pixels.shape) != tuple(hw):
            raise DataFormatError(
                f"mask {mpath} is {pixels.shape[1]}x{pixels.shape[0]} but image "
                f"{self.files[index]} is {hw[1]}x{hw[0]} (WxH); they must match"
            )
        m = check_index_mask(pixels, self.num_classes, self.ignore_index, str(mpath))
        return torch.from_numpy(m)

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Figure of one sample (first three bands of the view as RGB)."""
        return plot_sample(sample, self.classes, None, self.ignore_index, show_titles, suptitle)


__all__ = ["GeoTiffFolder"]
