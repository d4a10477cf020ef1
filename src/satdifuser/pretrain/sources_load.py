"""Opening and loading the pre-training sources (:mod:`satdifuser.pretrain.sources`) into memory.

Opening a source is cheap (file lists, band checks, refusals) and happens before a run folder is
created; loading decodes every image as uint8 RGB, resizes it by ``scale``, then either resizes
it whole to ``sample_size`` (no ``crops``, or an image no larger than ``sample_size``) or keeps it
whole for random crops (:class:`~satdifuser.pretrain.sources_sampling.MixedOrder`).

Held-out images are never read: ``eurosat`` reads only ``unlabeled``; ``geobench`` only
``train``; a folder with ``train/`` ``val/`` ``test/`` subfolders only ``train/`` (said on
stderr), a ``val``/``test`` folder itself is refused; a ``dubai_aerial`` root never reads the
validation tile of ``satdifuser bench dubai`` (:data:`DUBAI_VAL_TILES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from satdifuser.data.splits import SPLIT_DIRS, natural_key
from satdifuser.errors import ConfigError, DatasetNotFoundError
from satdifuser.pretrain.image_pool import SPLIT_FILE, load_images, pretrain_paths
from satdifuser.pretrain.sources import SourceSpec

DUBAI_VAL_TILES: tuple[int, ...] = (8,)
"""Tiles ``satdifuser bench dubai`` validates on by default (``--val-tiles 8``): never read."""
HELD_OUT_DIRS = (*SPLIT_DIRS["val"], *SPLIT_DIRS["test"])
LABEL_DIRS = ("masks", "mask", "labels", "label")
Note = Callable[[str], None]


@dataclass
class OpenedSource:
    """A checked source: how many images, and how to read image ``i`` as uint8 (H, W, 3)."""

    spec: SourceSpec
    count: int
    read: Callable[[int], np.ndarray]
    paths: list[Path] = field(default_factory=list)


def _fail(spec: SourceSpec, message: str) -> ConfigError:
    return ConfigError(f"source {spec.label}: {message}")


def _root(spec: SourceSpec) -> Path:
    root = Path(str(spec.root)).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"source {spec.label}: folder {root} does not exist; fix the path after {spec.kind}:"
        )
    return root


def train_folder(spec: SourceSpec, root: Path, note: Note) -> Path:
    """``root``, or its ``train/`` when it holds split folders; a val/test folder is refused."""
    if root.name.lower() in HELD_OUT_DIRS:
        raise _fail(
            spec,
            f"{root} is a validation/test folder, never used for pre-training; "
            "point ROOT at the dataset folder (only its train/ is read)",
        )
    dirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    held = sorted(dirs[n].name for n in HELD_OUT_DIRS if n in dirs)
    if not held:
        return root
    train = next((dirs[n] for n in SPLIT_DIRS["train"] if n in dirs), None)
    if train is None:
        raise _fail(
            spec,
            f"{root} holds {'/, '.join(held)}/ but no train/ folder; "
            "pre-training reads only train/: add one or point ROOT at the images",
        )
    note(f"source {spec.label}: reading only {train.name}/ ({'/, '.join(held)}/ are held out)")
    return train


def _files(spec: SourceSpec, root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    found = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in suffixes
        and p.is_file()
        and not any(
            part.startswith(".") or part.lower() in LABEL_DIRS
            for part in p.relative_to(root).parts[:-1]
        )
    ]
    if not found:
        raise DatasetNotFoundError(
            f"source {spec.label}: no {'/'.join(suffixes)} files under {root}; fix ROOT"
        )
    return sorted(found, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def _to_uint8(chw01: Any) -> np.ndarray:
    arr = np.asarray(chw01, dtype=np.float32)
    return np.ascontiguousarray(np.round(arr.clip(0, 1) * 255).astype(np.uint8).transpose(1, 2, 0))


def _open_eurosat(spec: SourceSpec, note: Note) -> OpenedSource:
    from PIL import Image

    paths = pretrain_paths(Path(str(spec.root)), spec.split or "unlabeled")

    def read(i: int) -> np.ndarray:
        with Image.open(paths[i]) as img:
            return np.asarray(img.convert("RGB"))

    return OpenedSource(spec, len(paths), read, paths)


def _open_images(spec: SourceSpec, note: Note) -> OpenedSource:
    from satdifuser.data.image_io import IMAGE_SUFFIXES, read_rgb

    root = _root(spec)
    if (root / SPLIT_FILE).is_file() or (root.parent / SPLIT_FILE).is_file():
        raise _fail(
            spec,
            f"{root} is a EuroSAT folder (it has {SPLIT_FILE}) whose val/test "
            "images would be read; use --source eurosat (only the unlabeled pool)",
        )
    paths = _files(spec, train_folder(spec, root, note), IMAGE_SUFFIXES)
    return OpenedSource(spec, len(paths), lambda i: read_rgb(paths[i]), paths)


def _open_geotiffs(spec: SourceSpec, note: Note) -> OpenedSource:
    from satdifuser.data.bands import (
        band_indices,
        default_band_names,
        default_range,
        default_rgb,
        scale_bands,
    )
    from satdifuser.data.geotiff_io import TIFF_SUFFIXES, band_count, read_geotiff

    root = train_folder(spec, _root(spec), note)
    if (root / "images").is_dir():
        root = root / "images"
    paths = _files(spec, root, tuple(TIFF_SUFFIXES))
    count, _, _, dtype = band_count(paths[0])
    _, info = read_geotiff(paths[0], with_pixels=False)
    names = info.band_names if info.band_names and len(info.band_names) == count else None
    names = names or default_band_names(count)[0]
    where = f"{paths[0]} (source {spec.label})"
    idx = band_indices(list(spec.bands), names, where) if spec.bands else default_rgb(names, where)
    value_range = spec.range or default_range(np.dtype(dtype))

    def read(i: int) -> np.ndarray:
        arr, _ = read_geotiff(paths[i], bands=idx)
        assert arr is not None
        return _to_uint8(scale_bands(arr, "fixed", value_range))

    return OpenedSource(spec, len(paths), read, paths)


def _dubai_root(root: Path) -> Path | None:
    if root.name == "dubai_aerial":
        return root
    return root / "dubai_aerial" if (root / "dubai_aerial").is_dir() else None


def _open_masks(spec: SourceSpec, note: Note) -> OpenedSource:
    from satdifuser.data.dubai_aerial import DubaiAerial
    from satdifuser.data.image_io import read_rgb
    from satdifuser.data.mask_folder import MaskFolder

    root = _root(spec)
    dubai = _dubai_root(root)
    if dubai is not None:
        present = sorted(
            int(d.name[5:]) for d in dubai.glob("tile_*") if d.name[5:].isdigit() and d.is_dir()
        )
        tiles = list(spec.tiles) if spec.tiles else [t for t in present if t not in DUBAI_VAL_TILES]
        val = sorted(set(tiles) & set(DUBAI_VAL_TILES))
        if val:
            raise _fail(
                spec,
                f"tile {val[0]} is the validation tile of `satdifuser bench dubai` "
                "and is never used for pre-training; drop it from tiles= (e.g. "
                "tiles=1+2+3+4+7)",
            )
        if not tiles:
            raise _fail(
                spec,
                f"{dubai} has no tile_N folder besides the validation tile(s) "
                f"{list(DUBAI_VAL_TILES)}; fix ROOT",
            )
        note(
            f"source {spec.label}: Dubai tiles {tiles} (validation tile(s) "
            f"{list(DUBAI_VAL_TILES)} of `satdifuser bench dubai` are never read)"
        )
        paths = list(DubaiAerial(dubai, tiles=tiles).images)
    else:
        if spec.tiles:
            raise _fail(spec, "tiles= applies only to a dubai_aerial root; drop it")
        folder = train_folder(spec, root, note)
        paths = list(MaskFolder(folder, classes=["label"]).images)
    return OpenedSource(spec, len(paths), lambda i: read_rgb(paths[i]), paths)


def _open_geobench(spec: SourceSpec, note: Note) -> OpenedSource:
    from satdifuser.data import geobench_format as fmt
    from satdifuser.data.geobench import GeoBench

    root = _root(spec)
    if spec.task is None and not fmt.is_task_dir(root):
        raise _fail(
            spec,
            "name the GEO-Bench task with task=..., e.g. task=m-eurosat "
            "(or point ROOT at a task folder)",
        )
    ds = GeoBench(
        root,
        task=spec.task or "m-eurosat",
        split="train",
        partition=spec.partition or "default",
        view="rgb",
        bands=list(spec.bands) if spec.bands else None,
    )
    note(f"source {spec.label}: GEO-Bench {ds.task} train split only ({len(ds)} images)")
    return OpenedSource(spec, len(ds), lambda i: _to_uint8(ds[i]["image"]), list(ds.files))


_OPENERS: dict[str, Callable[[SourceSpec, Note], OpenedSource]] = {
    "eurosat": _open_eurosat,
    "image_folder": _open_images,
    "geotiff_folder": _open_geotiffs,
    "mask_folder": _open_masks,
    "geobench": _open_geobench,
}


def open_source(spec: SourceSpec, note: Note = lambda _m: None) -> OpenedSource:
    """Check a source (paths, bands, refusals) and list its images; reads no pixels but headers."""
    return _OPENERS[spec.kind](spec, note)


def _resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if arr.shape[:2] == (height, width):
        return arr
    return np.asarray(Image.fromarray(arr).resize((width, height), Image.BILINEAR))


@dataclass
class LoadedSource:
    """A source in memory: ``whole`` images at sample size, ``large`` images kept for crops."""

    spec: SourceSpec
    whole: np.ndarray
    large: list[np.ndarray]

    @property
    def count(self) -> int:
        """Number of images."""
        return len(self.whole) + len(self.large)

    def record(self) -> dict[str, Any]:
        """The spec's record with the image count (``sources.json``, history, model card)."""
        return {**self.spec.record(), "count": self.count}


def load_source(opened: OpenedSource, sample_size: int) -> LoadedSource:
    """Decode every image of ``opened`` (see the module docstring)."""
    spec, size = opened.spec, sample_size
    if spec.kind == "eurosat" and spec.is_default:  # exactly what pretrain always did
        return LoadedSource(spec, load_images(opened.paths, size), [])
    whole, large = [], []
    for i in range(opened.count):
        arr = opened.read(i)
        if spec.scale != 1.0:
            h, w = arr.shape[:2]
            arr = _resize(arr, max(1, round(h * spec.scale)), max(1, round(w * spec.scale)))
        if spec.crops is None or max(arr.shape[:2]) <= size:
            whole.append(_resize(arr, size, size))
        else:
            large.append(np.ascontiguousarray(arr))
    stack = np.stack(whole) if whole else np.empty((0, size, size, 3), np.uint8)
    return LoadedSource(spec, stack, large)


@dataclass
class ImagePool:
    """The loaded sources of a run."""

    sources: list[LoadedSource]

    @property
    def n(self) -> int:
        """Images in all sources."""
        return sum(s.count for s in self.sources)

    @property
    def uniform(self) -> np.ndarray | None:
        """The ``(N, S, S, 3)`` array of a single source of whole images (walked in epochs by
        :class:`~satdifuser.pretrain.image_pool.BatchOrder`), else None (mixed sampling)."""
        if len(self.sources) == 1 and not self.sources[0].large:
            return self.sources[0].whole
        return None

    def records(self) -> list[dict[str, Any]]:
        """One record per source, with its image count."""
        return [s.record() for s in self.sources]


def load_pool(specs: list[SourceSpec], sample_size: int, note: Note) -> ImagePool:
    """Open every source first (all checks before any decoding), then load them."""
    opened = [open_source(s, note) for s in specs]
    for o in opened:
        note(f"source {o.spec.label}: {o.count} images, weight {o.spec.weight:g}; loading")
    return ImagePool([load_source(o, sample_size) for o in opened])


__all__ = [
    "DUBAI_VAL_TILES",
    "ImagePool",
    "LoadedSource",
    "OpenedSource",
    "load_pool",
    "load_source",
    "open_source",
    "train_folder",
]
