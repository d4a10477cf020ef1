"""Reading image files (JPEG, PNG, BMP, WebP) with one-line errors, and converting them to tensors.

Bit depth: 8-bit files scale by 255. 16-bit greyscale PNGs keep their 16-bit values and scale
by their real depth: ``2**sBIT - 1`` when the file has an sBIT chunk (e.g. 4095 for 12-bit
data), else 65535; they are never clipped to 255. 16-bit RGB PNGs are decoded by Pillow to
their 8 most significant bits (same scale, less precision). Pixels pass the shared non-finite
check of :mod:`satdifuser.data.nodata` (integer files always do).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from satdifuser._typing import PathLike
from satdifuser.data.nodata import check_finite
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


_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_significant_bits(path: PathLike) -> int | None:
    """Significant bits of a PNG from its sBIT chunk (largest colour channel), None without one.

    Reads chunk headers only, up to the first IDAT chunk.
    """
    try:
        with open(path, "rb") as f:
            if f.read(8) != _PNG_SIGNATURE:
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind == b"sBIT":
                    data = f.read(length)
                    return max(data[:3]) if data else None
                if kind in (b"IDAT", b"IEND"):
                    return None
                f.seek(length + 4, 1)  # data + CRC
    except OSError:
        return None


def read_pixels(path: PathLike) -> tuple[np.ndarray, float]:
    """Decode an image file as RGB (H, W, 3) in its stored depth, with its full-scale value.

    Returns:
        ``(pixels, full_scale)``: uint8 pixels and 255 for 8-bit files (palette, grey, alpha
        and CMYK images converted to RGB); uint16 pixels and ``2**sBIT - 1`` (default 65535)
        for 16-bit greyscale PNGs, the grey channel repeated three times.

    Raises:
        DatasetNotFoundError: the file does not exist.
        DataFormatError: the file is unreadable, or a 32-bit / float image (convert it to a
            GeoTIFF and read it with :class:`~satdifuser.data.geotiff_folder.GeoTiffFolder`).
    """
    img = _open(path)
    if img.mode in _SIXTEEN_BIT or (img.mode == "I" and img.format == "PNG"):
        grey = np.asarray(img).astype(np.uint16)  # PNG 16-bit grey: values 0..65535
        bits = png_significant_bits(path) if img.format == "PNG" else None
        full = float(2**bits - 1) if bits and 0 < bits < 16 else 65535.0
        if int(grey.max(initial=0)) > full:
            full = 65535.0  # sBIT understates the data: fall back to the file's depth
        return np.repeat(grey[:, :, None], 3, axis=2), full
    if img.mode in ("I", "F"):
        raise DataFormatError(
            f"image {path} is a {'32-bit integer' if img.mode == 'I' else 'floating-point'} "
            f"{img.format} image; only 8-bit and 16-bit files are read as images: save it as a "
            "GeoTIFF and read it with GeoTiffFolder"
        )
    if img.mode != "RGB":
        img = img.convert("RGB")
    pixels = np.asarray(img, dtype=np.uint8)
    check_finite(pixels, f"image {path}")  # integers: always passes (one policy, every reader)
    return pixels, 255.0


def read_rgb(path: PathLike) -> np.ndarray:
    """Decode an image file as RGB uint8 (H, W, 3); 16-bit images are rescaled by their real
    depth (see :func:`read_pixels`), never clipped."""
    pixels, full = read_pixels(path)
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(pixels.astype(np.float32) * (255.0 / full)).clip(0, 255).astype(np.uint8)


def read_image(path: PathLike) -> Tensor:
    """Decode an image file as float32 (3, H, W) in [0, 1], scaled by its real bit depth."""
    pixels, full = read_pixels(path)
    return to_chw_float(pixels, full)


def read_mask_pixels(path: PathLike, palette_as_rgb: bool = True) -> np.ndarray:
    """Decode a mask file: (H, W) for single-channel masks, (H, W, 3) uint8 for colour masks.

    Args:
        path: Mask file.
        palette_as_rgb: Convert palette (``P``) images to RGB (colour-coded masks); False keeps
            their palette indices as class ids.

    RGBA images are converted to RGB; 16-bit and 32-bit index masks keep their values (int64).

    Raises:
        DataFormatError: unreadable file, a multi-channel non-RGB mask, or non-finite values in
            a floating-point mask (the policy of :mod:`satdifuser.data.nodata`).
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
    check_finite(arr, f"mask {path}", what="mask values")
    if np.issubdtype(arr.dtype, np.floating) and not np.array_equal(arr, np.round(arr)):
        raise DataFormatError(
            f"mask {path} holds fractional values; class-id masks hold whole numbers: save the "
            "mask as an 8- or 16-bit integer PNG"
        )
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
    chw = np.array(array.transpose(2, 0, 1), dtype=np.float32, order="C")  # own, writable copy
    return torch.from_numpy(chw).div_(scale)


__all__ = [
    "IMAGE_SUFFIXES",
    "image_size",
    "png_significant_bits",
    "read_image",
    "read_mask_pixels",
    "read_pixels",
    "read_rgb",
    "to_chw_float",
]
