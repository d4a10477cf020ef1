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
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from satdifuser.data.loaders import seed_worker
from satdifuser.errors import ConfigError

_STREAM = 0x63726F70  # "crop": keeps the offsets apart from other streams drawn from the seed


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


class CropSampler(Sampler[tuple[int, int, int]]):
    """``(row, top, left)`` keys: rows in ``order``, each with its crop offset of the epoch.

    Args:
        order: Row order of one epoch (e.g. a seeded ``RandomSampler``).
        grid: Where crops lie.
        seed: Seed of the offsets.
        rows: Number of rows of the dataset.

    The epoch is the one Lightning passes to :meth:`set_epoch`; without it, each pass counts as
    the next epoch.
    """

    def __init__(self, order: Sampler[int], grid: CropGrid, seed: int, rows: int) -> None:
        self.order, self.grid, self.seed, self.rows = order, grid, int(seed), int(rows)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the offsets of ``epoch`` on the next pass."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.order)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        table = self.grid.offsets(self.seed, epoch, self.rows).tolist()
        for row in self.order:
            top, left = table[row]
            yield int(row), int(top), int(left)


class CroppedSamples(Dataset):
    """Rows of ``base`` cropped: indexed by the ``(row, top, left)`` keys of :class:`CropSampler`.

    Args:
        base: A :class:`~satdifuser.features.cache_dataset.CachedFeatureDataset` (one sample per
            key, collated by the loader) or an
            :class:`~satdifuser.features.cache_memory.InMemoryFeatures` (one batch dict per key
            list).
        grid: Where crops lie.
    """

    def __init__(self, base: Any, grid: CropGrid) -> None:
        self.base, self.grid = base, grid
        self.batched = callable(getattr(base, "__getitems__", None))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, Any]:
        row, top, left = key
        return self.grid.crop_sample(self.base[row], top, left)

    def __getitems__(self, keys: Sequence[tuple[int, int, int]]) -> Any:
        if not self.batched:
            return [self[k] for k in keys]
        batch = self.base.__getitems__([k[0] for k in keys])
        parts = [self.grid.crop_sample(_row_of(batch, i), top, left)
                 for i, (_, top, left) in enumerate(keys)]  # fmt: skip
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
    data: Any, grid: CropGrid, batch_size: int, seed: int, num_workers: int = 0
) -> DataLoader[Any]:
    """Shuffled training batches of random crops of ``data`` (see the module docstring).

    The row order is the one the uncropped seeded loader gives (same ``seed``, same generator
    use); offsets come from :meth:`CropGrid.offsets`. In-memory ``data`` is sliced a batch at a
    time in the main process; on-disk rows are read by ``num_workers`` workers.
    """
    generator = torch.Generator().manual_seed(int(seed))
    sampler = CropSampler(RandomSampler(data, generator=generator), grid, seed, len(data))
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
    "check_crop_step",
    "check_train_crop",
    "crop_at",
    "crop_grid",
    "crop_loader",
]
