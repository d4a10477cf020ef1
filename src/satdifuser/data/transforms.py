"""Sample transforms: consistent flips/rotations of image and mask, image resizing, and the
one-size check of datasets whose images are batched.

Random transforms draw from their own ``torch.Generator`` once :meth:`reseed` is called (the
data modules' loaders do that before every sample, from the seed, epoch and index:
:mod:`satdifuser.data.loaders`), else from torch's global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from satdifuser._typing import Sample
from satdifuser.errors import ConfigError, DataFormatError


class RandomFlipRotate:
    """Random horizontal/vertical flips and 90-degree rotations, applied alike to ``image``
    (C, H, W) and ``mask``/``prediction`` (H, W); the dihedral group of the square, which
    keeps overhead imagery plausible.

    Args:
        rotate: Also rotate by a random multiple of 90 degrees (square crops only).
    """

    def __init__(self, rotate: bool = True) -> None:
        self.rotate = rotate
        self.generator: torch.Generator | None = None

    def reseed(self, seed: int) -> None:
        """Draw from a private generator seeded with ``seed`` from now on."""
        self.generator = torch.Generator().manual_seed(int(seed) % 2**63)

    def __call__(self, sample: Sample) -> Sample:
        r = torch.randint(0, 2, (3,), generator=self.generator).tolist()
        k = int(torch.randint(0, 4, (1,), generator=self.generator)) if self.rotate else 0
        for key in ("image", "mask", "prediction"):
            t = sample.get(key)
            if not isinstance(t, torch.Tensor) or t.ndim < 2:
                continue
            if r[0]:
                t = t.flip(-1)
            if r[1]:
                t = t.flip(-2)
            if k and t.shape[-1] == t.shape[-2]:
                t = torch.rot90(t, k, dims=(-2, -1))
            sample[key] = t.contiguous()
        return sample


class Resize:
    """Resize ``image`` to ``size`` x ``size`` (bilinear, antialiased); masks stay as they are
    (segmentation logits are upsampled to the mask instead)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ConfigError(f"image_size={size} must be >= 1")
        self.size = size

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of every image after this transform."""
        return self.size, self.size

    def __call__(self, sample: Sample) -> Sample:
        img = sample["image"]
        if tuple(img.shape[-2:]) != (self.size, self.size):
            sample["image"] = F.interpolate(
                img[None], size=(self.size, self.size), mode="bilinear", antialias=True
            )[0].clamp_(0.0, 1.0)
        return sample


class Compose:
    """Apply transforms in order; :meth:`reseed` reseeds those that can be reseeded."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(H, W) fixed by the last member that resizes, None when no member does."""
        sizes = [output_size(t) for t in self.transforms]
        return next((s for s in reversed(sizes) if s is not None), None)

    def reseed(self, seed: int) -> None:
        """Reseed every member with a ``reseed`` method (``seed + position``)."""
        for i, t in enumerate(self.transforms):
            if hasattr(t, "reseed"):
                t.reseed(seed + i)

    def __call__(self, sample: Sample) -> Sample:
        for t in self.transforms:
            sample = t(sample)
        return sample


def compose(*transforms: Callable[[Sample], Sample] | None) -> Compose | None:
    """Compose the given transforms, skipping None; None when nothing is left."""
    kept = [t for t in transforms if t is not None]
    return Compose(kept) if kept else None


def output_size(transform: Any) -> tuple[int, int] | None:
    """The (H, W) ``transform`` gives every image (:class:`Resize`, a :class:`Compose` holding
    one, or any object with an ``output_size``), None when it keeps image sizes."""
    size = getattr(transform, "output_size", None)
    return (int(size[0]), int(size[1])) if size is not None else None


class UniformSizeCheck:
    """Refuses an image whose size differs from the dataset's first image, so a batch of them
    never fails in ``torch.stack`` ("stack expects each tensor to be equal size") without
    saying which file is off.

    The reference size is read lazily from the first file's header (no I/O at construction).
    Datasets skip the check when their ``transforms`` resize every image (:func:`output_size`).

    Args:
        first: The dataset's first image file.
        header_size: Reads (H, W) of a file from its header.
    """

    def __init__(self, first: Path, header_size: Callable[[Path], tuple[int, int]]) -> None:
        self.first, self.header_size = first, header_size
        self.size: tuple[int, int] | None = None

    def __call__(self, hw: Sequence[int], path: Path, transforms: Any = None) -> None:
        """Check an image of (H, W) ``hw`` read from ``path``.

        Raises:
            DataFormatError: the size differs from the first image's and ``transforms`` do not
                resize; the message names both files and the fix.
        """
        if output_size(transforms) is not None:
            return
        if self.size is None:
            fh, fw = self.header_size(self.first)
            self.size = (int(fh), int(fw))
        (h, w), (rh, rw) = (int(hw[0]), int(hw[1])), self.size
        if (h, w) != (rh, rw):
            raise DataFormatError(
                f"image {path} is {w}x{h} (WxH) but the dataset's first image {self.first} is "
                f"{rw}x{rh}; images of one dataset must share a size to be batched: resize them "
                f"all (image_size: {max(rh, rw)} in the data module, or transforms=Resize("
                f"{max(rh, rw)}) on the dataset) or remove the odd file"
            )


__all__ = [
    "Compose",
    "RandomFlipRotate",
    "Resize",
    "UniformSizeCheck",
    "compose",
    "output_size",
]
