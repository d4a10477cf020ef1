"""Reading 8-bit image files (JPEG, PNG) with one-line errors, and converting them to tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from satdifuser._typing import PathLike
from satdifuser.errors import DataFormatError, DatasetNotFoundError

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""File suffixes read with Pillow (lower case)."""


def _open(path: PathLike) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(f"image file {p} does not exist; check the dataset folder")
    try:
        img = Image.open(p)
        img.load()  # decode now, so a truncated file fails here and not later
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(
            f"cannot read image {p}: {exc}; the file is truncated or not an image, "
            "re-download or remove it"
        ) from None
    return img


def read_rgb(path: PathLike) -> np.ndarray:
    """Decode an image file as RGB uint8 (H, W, 3); palette and grey images are converted."""
    img = _open(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_mask_pixels(path: PathLike, palette_as_rgb: bool = True) -> np.ndarray:
    """Decode a mask file: (H, W) for single-channel masks, (H, W, 3) uint8 for colour masks.

    Args:
        path: Mask file.
        palette_as_rgb: Convert palette (``P``) images to RGB (colour-coded masks); False keeps
            their palette indices as class ids.

    RGBA images are converted to RGB; 16-bit and 32-bit index masks keep their values (int64).
    """
    img = _open(path)
    if img.mode == "P" and not palette_as_rgb:
        return np.asarray(img, dtype=np.uint8)
    if img.mode in {"P", "PA", "RGBA", "RGB", "CMYK", "YCbCr"}:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    if img.mode == "LA":
        return np.asarray(img.convert("L"), dtype=np.uint8)
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataFormatError(f"mask {path} has shape {arr.shape}; expected (H, W) or RGB")
    return arr if arr.dtype == np.uint8 else arr.astype(np.int64)


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) of an image file from its header, without decoding the pixels."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            w, h = img.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(f"cannot read image header of {p}: {exc}") from None
    return h, w


def to_chw_float(array: np.ndarray, scale: float = 255.0) -> Tensor:
    """(H, W, C) or (H, W) array -> float32 tensor (C, H, W) divided by ``scale``."""
    if array.ndim == 2:
        array = array[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return t.to(torch.float32).div_(scale)


__all__ = ["IMAGE_SUFFIXES", "image_size", "read_mask_pixels", "read_rgb", "to_chw_float"]
