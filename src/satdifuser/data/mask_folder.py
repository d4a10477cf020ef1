"""Segmentation datasets from folders of images and masks (index or colour-coded masks)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from satdifuser._typing import PathLike, Sample
from satdifuser.data.image_io import (
    IMAGE_SUFFIXES,
    image_size,
    read_mask_pixels,
    read_rgb,
    to_chw_float,
)
from satdifuser.data.mask_codec import ColorTable, to_class_ids
from satdifuser.data.meta import make_meta
from satdifuser.data.plotting import plot_sample
from satdifuser.data.roots import resolve_data_root
from satdifuser.data.splits import natural_key
from satdifuser.data.tiling import crop_array, grid_windows, random_window
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TileMode = Literal["whole", "random", "grid"]


class MaskFolder(Dataset[Sample]):
    """Images with per-pixel masks, whole or as crops.

    Layout: ``<root>/<group>/<image_dir>/<name>.<jpg|png|...>`` with the mask at
    ``<root>/<group>/<mask_dir>/<name><mask_suffix>``; ``<group>`` is empty when ``root`` holds
    ``image_dir`` itself. Groups (e.g. Dubai's ``tile_1`` ... ``tile_8``) are the natural split
    unit: split by geography with ``groups``, or list images in a ``split_file``.

    Masks are either index masks (single channel, values = class ids, ``ignore_index`` for no
    label; palette PNGs give their indices) or colour-coded masks read with a colour table
    ``colors`` (palette PNGs converted to RGB). Colours not in the table become ``ignore_index``
    with one warning per dataset object (per worker process); ``ignore_colors`` are ignored
    silently.

    Modes: ``whole`` returns whole images (evaluation: predict with
    :func:`satdifuser.data.tiling.sliding_window_predict`, so metrics are per whole image);
    ``random`` returns ``crops_per_image`` random crops of ``crop_size`` per image per epoch
    (positions from :meth:`reseed`'s generator or torch's RNG, so seeded loaders repeat them);
    ``grid`` returns every crop of a regular grid (``stride``, default ``crop_size``). Images
    smaller than a crop are padded (image 0, mask ``ignore_index``).

    Samples: ``image`` (3, H, W) float32 RGB in [0, 1], ``mask`` (H, W) int64, ``meta`` (7,)
    (GSD from ``gsd``, NaN elsewhere), ``id`` (image path relative to root, ``@y,x`` for crops).

    Args:
        root: Folder holding the groups (subclasses with ``folder_name`` also accept the data
            root that holds ``folder_name``; None resolves it like every dataset).
        groups: Group folders to use (None: all groups with an ``image_dir``).
        split_file: JSON ``{split: [image paths relative to root]}`` or a text file with one
            image path per line; exclusive with ``groups``.
        split: Key of ``split_file`` (JSON only).
        classes: Class names (id order); default ``class_<k>`` per colour of ``colors``.
        colors: ``#RRGGBB`` per class id for colour-coded masks; None for index masks.
        ignore_colors: Colours meaning "no label", silently mapped to ``ignore_index``.
        ignore_index: Mask value for unlabelled pixels.
        mode: ``whole``, ``random`` or ``grid`` (see above).
        crop_size: Crop side in pixels (``random``/``grid``).
        crops_per_image: Random crops per image per epoch (``random``).
        stride: Grid step (``grid``; default ``crop_size``).
        image_dir: Image folder name inside a group.
        mask_dir: Mask folder name inside a group.
        mask_suffix: Mask file suffix (the mask has the image's stem).
        gsd: Ground sample distance in metres for ``meta`` (None: unknown).
        cache: Keep decoded images and masks in memory (fast epochs over few large images).
        transforms: Callable applied to each sample dict.

    Raises:
        DatasetNotFoundError: root, a group, a split file or a mask is missing.
        DataFormatError: empty selection, image/mask size mismatch, unreadable file, or an index
            mask value outside the classes (raised when the sample is read).
        ConfigError: inconsistent arguments.

    .. versionadded:: 0.1
    """

    folder_name: ClassVar[str] = ""

    def __init__(
        self,
        root: PathLike | None = None,
        groups: list[str] | None = None,
        split_file: PathLike | None = None,
        split: str | None = None,
        classes: list[str] | None = None,
        colors: list[str] | None = None,
        ignore_colors: list[str] | None = None,
        ignore_index: int = 255,
        mode: TileMode = "whole",
        crop_size: int | None = None,
        crops_per_image: int = 1,
        stride: int | None = None,
        image_dir: str = "images",
        mask_dir: str = "masks",
        mask_suffix: str = ".png",
        gsd: float | None = None,
        cache: bool = False,
        transforms: Callable[[Sample], Sample] | None = None,
    ) -> None:
        self.root = self._resolve_root(root)
        self.image_dir, self.mask_dir, self.mask_suffix = image_dir, mask_dir, mask_suffix
        self.table = ColorTable(colors, ignore_colors or ()) if colors else None
        if classes is None:
            if colors is None:
                raise ConfigError(
                    "index masks need classes=[...] (names of ids 0..K-1); colour masks need "
                    "colors=['#RRGGBB', ...]"
                )
            classes = [f"class_{k}" for k in range(len(colors))]
        if colors is not None and len(colors) != len(classes):
            raise ConfigError(f"{len(classes)} classes but {len(colors)} colors; give one each")
        self.classes: list[str] = list(classes)
        self.colors = list(colors) if colors else None
        self.ignore_index, self.gsd, self.transforms = ignore_index, gsd, transforms
        self.mode, self.crop_size, self.crops_per_image = mode, crop_size, crops_per_image
        if mode not in ("whole", "random", "grid"):
            raise ConfigError(f"mode={mode!r} is not one of 'whole', 'random', 'grid'")
        if mode != "whole" and (crop_size is None or crop_size < 1):
            raise ConfigError(f"mode={mode!r} needs crop_size >= 1 (got {crop_size})")
        if crops_per_image < 1:
            raise ConfigError(f"crops_per_image={crops_per_image} must be >= 1")
        self.stride = stride or crop_size
        if groups is not None and split_file is not None:
            raise ConfigError("give either groups= or split_file=, not both")
        self.images = (
            self._from_split_file(Path(split_file), split)
            if split_file is not None
            else self._from_groups(groups)
        )
        self.masks = [self._mask_of(p) for p in self.images]
        self.windows: list[tuple[int, int, int]] = []
        if mode == "grid":
            assert self.crop_size is not None and self.stride is not None
            for i, p in enumerate(self.images):
                h, w = image_size(p)
                self.windows += [
                    (i, y, x) for y, x in grid_windows(h, w, self.crop_size, self.stride)
                ]
        self.cache = cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._warned = False
        self.generator: torch.Generator | None = None

    def reseed(self, seed: int) -> None:
        """Draw crop positions (and reseed ``transforms``) from ``seed`` from now on.

        Without it, positions come from torch's global RNG (seeded per loader worker).
        """
        self.generator = torch.Generator().manual_seed(int(seed) % 2**63)
        if hasattr(self.transforms, "reseed"):
            self.transforms.reseed(int(seed) + 1)  # type: ignore[union-attr]

    # -- discovery ---------------------------------------------------------------------------
    def _resolve_root(self, root: PathLike | None) -> Path:
        if root is None and not self.folder_name:
            raise ConfigError(f"{type(self).__name__} needs root= (the folder of the groups)")
        base = resolve_data_root(root, self.folder_name)
        if self.folder_name and (base / self.folder_name).is_dir():
            base = base / self.folder_name
        if not base.is_dir():
            raise DatasetNotFoundError(
                f"no {type(self).__name__} folder at root={str(base)!r}; set root to the folder "
                f"holding the image/mask groups"
            )
        return base

    def _images_in(self, folder: Path) -> list[Path]:
        return sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=lambda p: natural_key(p.name),
        )

    def _from_groups(self, groups: list[str] | None) -> list[Path]:
        if groups is None:
            if (self.root / self.image_dir).is_dir():
                groups = [""]
            else:
                groups = sorted(
                    (d.name for d in self.root.iterdir() if (d / self.image_dir).is_dir()),
                    key=natural_key,
                )
        if not groups:
            raise DatasetNotFoundError(
                f"no {self.image_dir}/ folder in {self.root} or its subfolders; set root to the "
                f"folder holding {self.image_dir}/ and {self.mask_dir}/ (or groups of them)"
            )
        images: list[Path] = []
        for g in groups:
            folder = self.root / g / self.image_dir
            if not folder.is_dir():
                raise DatasetNotFoundError(
                    f"group {g!r} has no folder {folder}; choose groups among "
                    f"{sorted(d.name for d in self.root.iterdir() if d.is_dir())}"
                )
            images += self._images_in(folder)
        if not images:
            raise DataFormatError(
                f"groups {groups} of {self.root} hold no images ({'/'.join(IMAGE_SUFFIXES)}) "
                f"in {self.image_dir}/; the selection is empty"
            )
        return images

    def _from_split_file(self, path: Path, split: str | None) -> list[Path]:
        if not path.is_file():
            raise DatasetNotFoundError(
                f"split file {path} does not exist; pass an existing JSON or text file"
            )
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(f"split file {path} is not valid JSON: {exc}") from None
            if not isinstance(data, dict) or split not in data:
                keys = sorted(data) if isinstance(data, dict) else []
                raise DataFormatError(
                    f"split {split!r} is not a key of {path} (keys {keys}); pass split= one of them"
                )
            entries = data[split]
        else:
            entries = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        if not isinstance(entries, list) or not entries:
            raise DataFormatError(f"split {split!r} in {path} is empty; choose another split")
        images = [self.root / str(e) for e in entries]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"split file {path} lists {len(missing)} missing image(s) under {self.root} "
                f"(first: {missing[0]}); paths must be relative to root"
            )
        return images

    def _mask_of(self, image: Path) -> Path:
        mask = image.parent.parent / self.mask_dir / f"{image.stem}{self.mask_suffix}"
        if not mask.is_file():
            raise DatasetNotFoundError(
                f"image {image} has no mask (expected {mask}); add it or remove the image"
            )
        return mask

    # -- reading -----------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes (mask ids ``0 .. num_classes - 1`` plus ``ignore_index``)."""
        return len(self.classes)

    def rel_id(self, index: int) -> str:
        """Image path of image ``index`` relative to root."""
        return self.images[index].relative_to(self.root).as_posix()

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded image (H, W, 3) uint8 and class-id mask (H, W) of image ``index``."""
        if index in self._cache:
            return self._cache[index]
        image = read_rgb(self.images[index])
        mpath = self.masks[index]
        pixels = read_mask_pixels(mpath, palette_as_rgb=self.table is not None)
        if pixels.shape[:2] != image.shape[:2]:
            raise DataFormatError(
                f"mask {mpath} is {pixels.shape[1]}x{pixels.shape[0]} but image "
                f"{self.images[index]} is {image.shape[1]}x{image.shape[0]} (WxH); they must match"
            )
        mask, unknown = to_class_ids(
            pixels, self.table, self.num_classes, self.ignore_index, str(mpath)
        )
        if unknown and not self._warned:
            self._warned = True
            shown = ", ".join(f"{c} ({n} px)" for c, n in list(unknown.items())[:5])
            warnings.warn(
                f"mask {mpath} has colours not in the colour table: {shown}; they are set to "
                f"ignore_index={self.ignore_index} (add them to colors= or ignore_colors=; "
                "further unknown colours of this dataset are not reported)",
                stacklevel=2,
            )
        small = (
            mask.astype(np.uint8)
            if 0 <= self.ignore_index <= 255 and self.num_classes <= 255
            else mask
        )
        if self.cache:
            self._cache[index] = (image, small)
        return image, small

    def __len__(self) -> int:
        if self.mode == "grid":
            return len(self.windows)
        return len(self.images) * (self.crops_per_image if self.mode == "random" else 1)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if self.mode == "grid":
            i, y, x = self.windows[index]
        else:
            i = index // self.crops_per_image if self.mode == "random" else index
        image, mask = self.load(i)
        sid = self.rel_id(i)
        if self.mode != "whole":
            assert self.crop_size is not None
            if self.mode == "random":
                y, x = random_window(image.shape[0], image.shape[1], self.crop_size, self.generator)
            image = crop_array(image, y, x, self.crop_size, 0)
            mask = crop_array(mask, y, x, self.crop_size, self.ignore_index)
            sid = f"{sid}@{y},{x}"
        sample: Sample = {
            "image": to_chw_float(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).to(torch.int64),
            "meta": make_meta(gsd=self.gsd if self.gsd is not None else math.nan),
            "id": sid,
        }
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Figure of one sample: image, mask overlay and ``prediction`` overlay when present."""
        return plot_sample(
            sample, self.classes, self.colors, self.ignore_index, show_titles, suptitle
        )


__all__ = ["MaskFolder", "TileMode"]
