"""Random training crops of cached segmentation samples: the same window of every map and the mask.

A feature cache stores one fixed view of each training window; cropping the cached maps is the
augmentation left that needs no re-extraction. A crop of ``crop`` input pixels at ``(top, left)``
takes rows ``top / s : (top + crop) / s`` (and the same columns) of a map at stride ``s``
(``s = H / h`` for an ``h``-row map of an ``H``-pixel window: 2, 4, 8 ..., or 1/2 for features
extracted at twice the window's size), and the same pixels of the mask, so features and labels
stay aligned. Offsets and the crop side lie on the grid of the coarsest stride (the least common
multiple of the strides), so every map's crop is whole.

Offsets are a pure function of ``(seed, epoch, row)`` (:meth:`CropGrid.offsets`): the same seed
gives the same crops for any number of workers and after a resume, another epoch gives other
crops. :class:`CropSampler` draws them in the main process (Lightning calls its ``set_epoch``;
plain iteration counts epochs itself) and :class:`CroppedSamples` cuts them out, from memory (one
batch per index list) or from the memory-mapped cache. Only the training split is cropped.

Dihedral turns (``train_flips``): each served training sample may also be turned by one of the
8 elements of the dihedral group (:func:`dihedral`: 0 to 3 quarter turns, then a left-right flip
or not), the same element for every map, the mask and the kept image, so they stay aligned. A
sample that is not square (a whole non-square window) only gets the 4 elements that keep its
shape (identity, half turn, left-right and up-down flips). The element is a pure function of
``(seed, epoch, row)`` too, drawn from a stream of its own (:func:`dihedral_codes`), so the
crop offsets are the same with or without turns. :class:`TrainTransform` combines both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from satdifuser.data.loaders import SeededOrder, seed_worker
from satdifuser.errors import ConfigError

_STREAM = 0x63726F70  # "crop": keeps the offsets apart from other streams drawn from the seed
_FLIP_STREAM = 0x666C6970  # "flip": the dihedral elements, independent of the crop offsets


def check_train_crop(crop: Any) -> int | None:
    """``crop`` as an int, or None.

    Raises:
        ConfigError: When it is not a positive integer.
    """
    if crop is None:
        return None
    if isinstance(crop, bool) or not isinstance(crop, int | np.integer) or crop < 1:
        raise ConfigError(
            f"train_crop={crop!r} must be a positive number of input pixels (e.g. 128) or null "
            "for whole windows"
        )
    return int(crop)


def check_train_flips(flips: Any) -> bool:
    """``flips`` as a bool.

    Raises:
        ConfigError: When it is not a boolean.
    """
    if not isinstance(flips, bool | np.bool_):
        raise ConfigError(
            f"train_flips={flips!r} must be true (random flips and quarter turns of the cached "
            "training samples) or false"
        )
    return bool(flips)


def dihedral(t: Tensor, k: int) -> Tensor:
    """Element ``k`` (0 to 7) of the dihedral group on the last two dimensions of ``t``:
    ``k % 4`` counter-clockwise quarter turns, then a left-right flip when ``k >= 4``.

    Quarter turns (odd ``k % 4``) swap the last two dimensions; 0, 2, 4 and 6 (identity, half
    turn, left-right flip, up-down flip) keep the shape.
    """
    k = int(k)
    if k % 4:
        t = torch.rot90(t, k % 4, dims=(-2, -1))
    return t.flip(-1) if k >= 4 else t


def dihedral_codes(seed: int, epoch: int, rows: int, rotations: bool = True) -> Tensor:
    """``(rows,)`` dihedral elements (see :func:`dihedral`) of rows ``0..rows-1`` at ``epoch``.

    A pure function of ``(seed, epoch, row)``, uniform over the 8 elements, or over the 4 that
    keep a non-square shape (0, 2, 4, 6) when not ``rotations``; drawn from a stream of its own.
    """
    rng = np.random.default_rng([_FLIP_STREAM, int(seed) % 2**63, int(epoch) % 2**63])
    codes = rng.integers(0, 8, rows) if rotations else rng.integers(0, 4, rows) * 2
    return torch.from_numpy(codes.astype(np.int64))


def check_crop_step(crop: int, step: int) -> None:
    """Refuse a crop that is not a multiple of ``step``, the coarsest feature stride.

    Raises:
        ConfigError: Naming the nearest multiple to use.
    """
    if crop % step:
        raise ConfigError(
            f"train_crop={crop} is not a multiple of {step}, the coarsest feature stride; use e.g. "
            f"{max(step, crop // step * step)}"
        )


def crop_at(t: Tensor, size: tuple[int, int], window: tuple[int, int], top: int, left: int,
            crop: int) -> Tensor:  # fmt: skip
    """The ``crop`` x ``crop`` input-pixel window at ``(top, left)`` of ``t``, a ``(..., h, w)``
    map (``size = (h, w)``) covering a ``window = (H, W)`` pixel window.

    Offsets and ``crop`` must be multiples of ``H / h`` and ``W / w`` (see :class:`CropGrid`).
    """
    (h, w), (hh, ww) = size, window
    return t[..., top * h // hh : (top + crop) * h // hh, left * w // ww : (left + crop) * w // ww]


def _step(pixels: int, cells: int) -> int:
    """Smallest pixel count that is a whole number of ``cells``-per-``pixels`` map elements."""
    return pixels // math.gcd(pixels, cells)


@dataclass(frozen=True)
class CropGrid:
    """Where crops of ``crop`` pixels may lie in ``height`` x ``width`` windows.

    Args:
        crop: Crop side in input pixels (a multiple of :attr:`step`).
        height: Window height in input pixels (the mask's).
        width: Window width in input pixels.
        sizes: ``(h, w)`` of each feature map, in ``features`` order.
    """

    crop: int
    height: int
    width: int
    sizes: tuple[tuple[int, int], ...]

    @property
    def step(self) -> int:
        """Offset grid: the coarsest stride (smallest pixel count that is whole in every map)."""
        steps = [_step(self.height, h) for h, _ in self.sizes]
        steps += [_step(self.width, w) for _, w in self.sizes]
        return math.lcm(1, *steps)

    def offsets(self, seed: int, epoch: int, rows: int) -> Tensor:
        """``(rows, 2)`` crop offsets ``(top, left)`` in pixels of rows ``0..rows-1`` at ``epoch``.

        A pure function of ``(seed, epoch, row)``; uniform over the positions on the grid.
        """
        rng = np.random.default_rng([_STREAM, int(seed) % 2**63, int(epoch) % 2**63])
        ny = (self.height - self.crop) // self.step + 1
        nx = (self.width - self.crop) // self.step + 1
        tops = rng.integers(0, ny, rows) * self.step
        lefts = rng.integers(0, nx, rows) * self.step
        return torch.from_numpy(np.stack([tops, lefts], axis=1).astype(np.int64))

    def crop_sample(self, sample: dict[str, Any], top: int, left: int) -> dict[str, Any]:
        """``sample`` with every map and every window-sized tensor (mask, image) cropped.

        Works on one sample (maps ``(C, h, w)``, mask ``(H, W)``) and on a batch sliced from
        memory (``(B, C, h, w)``, ``(B, H, W)``) alike: only the last two dimensions are cut.
        """
        window = (self.height, self.width)
        out = dict(sample)
        maps = zip(sample["features"], self.sizes, strict=True)
        out["features"] = [crop_at(f, size, window, top, left, self.crop) for f, size in maps]
        for key, value in sample.items():
            if key != "features" and self._window_sized(value):
                out[key] = crop_at(value, window, window, top, left, self.crop)
        return out

    def _window_sized(self, value: Any) -> bool:
        return (
            isinstance(value, Tensor)
            and value.ndim >= 2
            and (tuple(value.shape[-2:]) == (self.height, self.width))
        )


def crop_grid(
    crop: int, map_shapes: Sequence[Sequence[int]], window: Sequence[int], where: str = "train"
) -> CropGrid:
    """The :class:`CropGrid` of ``crop`` for maps whose last two dimensions are ``map_shapes``
    over masks whose last two are ``window`` (``(H, W)`` pixels).

    Raises:
        ConfigError: When ``crop`` is not a multiple of the coarsest stride, or is larger than
            the window.
    """
    height, width = (int(v) for v in window[-2:])
    sizes = tuple((int(s[-2]), int(s[-1])) for s in map_shapes)
    grid = CropGrid(int(crop), height, width, sizes)
    check_crop_step(crop, grid.step)
    if crop > min(height, width):
        raise ConfigError(
            f"train_crop={crop} is larger than the {height}x{width} px {where} windows; use at "
            f"most {min(height, width) // grid.step * grid.step} (or null for whole windows)"
        )
    return grid


@dataclass(frozen=True)
class TrainTransform:
    """Random crop and/or dihedral turn of each training sample (see the module docstring).

    Args:
        height: Window height in input pixels (the mask's).
        width: Window width in input pixels.
        sizes: ``(h, w)`` of each feature map, in ``features`` order.
        grid: Where crops lie (None: whole windows).
        flips: Also turn each sample by a random element of the dihedral group.
    """

    height: int
    width: int
    sizes: tuple[tuple[int, int], ...]
    grid: CropGrid | None = None
    flips: bool = False

    @classmethod
    def of(cls, grid: CropGrid | TrainTransform) -> TrainTransform:
        """``grid`` as a crop-only transform (a transform as is)."""
        if isinstance(grid, TrainTransform):
            return grid
        return cls(grid.height, grid.width, grid.sizes, grid)

    @property
    def rotations(self) -> bool:
        """Whether quarter turns keep the served sample's shapes: the mask (or crop) and every
        map are square."""
        if self.grid is None:
            shapes = [(self.height, self.width), *self.sizes]
        else:
            c = self.grid.crop
            shapes = [(c * h // self.height, c * w // self.width) for h, w in self.sizes]
        return all(a == b for a, b in shapes)

    def draws(self, seed: int, epoch: int, rows: int) -> Tensor:
        """``(rows, 3)`` ``(top, left, element)`` of rows ``0..rows-1`` at ``epoch``: the crop
        offsets of :meth:`CropGrid.offsets` (zeros without crops) and the dihedral elements of
        :func:`dihedral_codes` (zeros without flips); a pure function of ``(seed, epoch, row)``.
        """
        offsets = (self.grid.offsets(seed, epoch, rows) if self.grid is not None
                   else torch.zeros(rows, 2, dtype=torch.int64))  # fmt: skip
        codes = (dihedral_codes(seed, epoch, rows, self.rotations) if self.flips
                 else torch.zeros(rows, dtype=torch.int64))  # fmt: skip
        return torch.cat([offsets, codes[:, None]], dim=1)

    def apply(self, sample: dict[str, Any], top: int, left: int, k: int) -> dict[str, Any]:
        """``sample`` cropped at ``(top, left)`` (with a grid) and turned by element ``k``: every
        map and every window-sized tensor (mask, image) alike. One sample or a batch slice."""
        window = (self.height, self.width)
        keys = [key for key, value in sample.items()
                if key != "features" and _window_sized(value, window)]  # fmt: skip
        out = self.grid.crop_sample(sample, top, left) if self.grid is not None else dict(sample)
        if k:
            out["features"] = [dihedral(f, k) for f in out["features"]]
            for key in keys:
                out[key] = dihedral(out[key], k)
        return out


def _window_sized(value: Any, window: tuple[int, int]) -> bool:
    return isinstance(value, Tensor) and value.ndim >= 2 and tuple(value.shape[-2:]) == window


def train_transform(
    crop: int | None,
    flips: bool,
    map_shapes: Sequence[Sequence[int]],
    window: Sequence[int],
    where: str = "train",
) -> TrainTransform | None:
    """The :class:`TrainTransform` of ``crop`` (None: whole windows) and ``flips`` for maps whose
    last two dimensions are ``map_shapes`` over masks whose last two are ``window``; None when
    there is neither.

    Raises:
        ConfigError: As :func:`crop_grid`.
    """
    if crop is None and not flips:
        return None
    height, width = (int(v) for v in window[-2:])
    sizes = tuple((int(s[-2]), int(s[-1])) for s in map_shapes)
    grid = crop_grid(crop, map_shapes, window, where) if crop is not None else None
    return TrainTransform(height, width, sizes, grid, bool(flips))


class CropSampler(Sampler[tuple[int, int, int, int]]):
    """``(row, top, left, element)`` keys: rows in ``order``, each with its crop offset and
    dihedral element of the epoch (:meth:`TrainTransform.draws`).

    Args:
        order: Row order of one epoch (e.g. a :class:`~satdifuser.data.loaders.SeededOrder`,
            whose epoch :meth:`set_epoch` sets too).
        grid: Where crops lie, or the whole :class:`TrainTransform`.
        seed: Seed of the draws.
        rows: Number of rows of the dataset.

    The epoch is the one Lightning passes to :meth:`set_epoch`; without it, each pass counts as
    the next epoch.
    """

    def __init__(
        self, order: Sampler[int], grid: CropGrid | TrainTransform, seed: int, rows: int
    ) -> None:
        self.order, self.seed, self.rows = order, int(seed), int(rows)
        self.transform = TrainTransform.of(grid)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the offsets (and the order) of ``epoch`` on the next pass."""
        self.epoch = int(epoch)
        if hasattr(self.order, "set_epoch"):
            self.order.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.order)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        table = self.transform.draws(self.seed, epoch, self.rows).tolist()
        for row in self.order:
            top, left, k = table[row]
            yield int(row), int(top), int(left), int(k)


class CroppedSamples(Dataset):
    """Rows of ``base`` cropped and turned: indexed by the ``(row, top, left, element)`` keys of
    :class:`CropSampler` (``(row, top, left)``: no turn).

    Args:
        base: A :class:`~satdifuser.features.cache_dataset.CachedFeatureDataset` (one sample per
            key, collated by the loader) or an
            :class:`~satdifuser.features.cache_memory.InMemoryFeatures` (one batch dict per key
            list).
        grid: Where crops lie, or the whole :class:`TrainTransform`.
    """

    def __init__(self, base: Any, grid: CropGrid | TrainTransform) -> None:
        self.base, self.transform = base, TrainTransform.of(grid)
        self.batched = callable(getattr(base, "__getitems__", None))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: Sequence[int]) -> dict[str, Any]:
        row, top, left, k = (*key, 0)[:4]
        return self.transform.apply(self.base[row], top, left, k)

    def __getitems__(self, keys: Sequence[Sequence[int]]) -> Any:
        if not self.batched:
            return [self[k] for k in keys]
        batch = self.base.__getitems__([k[0] for k in keys])
        parts = [self.transform.apply(_row_of(batch, i), *(*key, 0)[1:4])
                 for i, key in enumerate(keys)]  # fmt: skip
        out = dict(batch)
        out["features"] = [torch.stack([p["features"][j] for p in parts])
                           for j in range(len(batch["features"]))]  # fmt: skip
        for key, value in batch.items():
            if key != "features" and isinstance(value, Tensor):
                out[key] = torch.stack([p[key] for p in parts])
        return out


def _row_of(batch: dict[str, Any], i: int) -> dict[str, Any]:
    row = {k: v[i] for k, v in batch.items() if k != "features" and isinstance(v, Tensor)}
    row["features"] = [f[i] for f in batch["features"]]
    return row


def _batch_as_is(batch: Any) -> Any:
    return batch


def crop_loader(
    data: Any, grid: CropGrid | TrainTransform, batch_size: int, seed: int, num_workers: int = 0
) -> DataLoader[Any]:
    """Shuffled training batches of random crops and/or turns of ``data`` (see the module
    docstring).

    The row order is the one the untransformed seeded loader gives (same ``seed``, same
    :class:`~satdifuser.data.loaders.SeededOrder`, whatever ``num_workers`` is); offsets and
    elements come from :meth:`TrainTransform.draws`. In-memory ``data`` is sliced a batch at a
    time in the main process; on-disk rows are read by ``num_workers`` workers.
    """
    generator = torch.Generator().manual_seed(int(seed))
    order = SeededOrder(len(data), seed, drains=len(data) % batch_size != 0)
    sampler = CropSampler(order, grid, seed, len(data))
    dataset = CroppedSamples(data, grid)
    if dataset.batched:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, generator=generator,
                          collate_fn=_batch_as_is)  # fmt: skip
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        generator=generator, worker_init_fn=seed_worker, persistent_workers=num_workers > 0,
    )  # fmt: skip


__all__ = [
    "CropGrid",
    "CropSampler",
    "CroppedSamples",
    "TrainTransform",
    "check_crop_step",
    "check_train_crop",
    "check_train_flips",
    "crop_at",
    "crop_grid",
    "crop_loader",
    "dihedral",
    "dihedral_codes",
    "train_transform",
]
