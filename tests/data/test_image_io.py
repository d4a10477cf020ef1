"""Bit depth of image files: 16-bit PNGs scale by their real depth, never saturate at 255."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from satdifuser.data.eurosat import EuroSAT
from satdifuser.data.image_io import png_significant_bits, read_image, read_pixels, read_rgb
from satdifuser.errors import DataFormatError


def write_png16(path: Path, grey: np.ndarray, sbit: int | None = None) -> Path:
    """A 16-bit greyscale PNG written byte by byte (with an optional sBIT chunk)."""
    h, w = grey.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + grey[y].astype(">u2").tobytes() for y in range(h))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
    body += chunk(b"sBIT", bytes([sbit])) if sbit else b""
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_16bit_png_scales_by_65535_not_saturated(tmp_path: Path) -> None:
    grey = (np.arange(64 * 64).reshape(64, 64) * 15).astype(np.uint16)  # 0 .. 61425
    Image.fromarray(grey).save(tmp_path / "g.png")  # Pillow writes I;16
    img = read_image(tmp_path / "g.png")
    assert img.shape == (3, 64, 64) and img.dtype == torch.float32
    want = torch.from_numpy(grey.astype(np.float32) / 65535.0)
    torch.testing.assert_close(img[0], want)
    assert float((img == 1.0).float().mean()) == 0.0  # before the fix 99.6 % were 1.0
    pixels, full = read_pixels(tmp_path / "g.png")
    assert pixels.dtype == np.uint16 and full == 65535.0
    assert read_rgb(tmp_path / "g.png")[-1, -1, 0] == round(61425 * 255 / 65535)


def test_16bit_png_with_sbit_scales_by_significant_bits(tmp_path: Path) -> None:
    grey = np.array([[0, 1000], [2048, 4095]], dtype=np.uint16)  # 12-bit data
    path = write_png16(tmp_path / "s.png", grey, sbit=12)
    assert png_significant_bits(path) == 12
    img = read_image(path)
    torch.testing.assert_close(img[1], torch.from_numpy(grey / 4095.0).float())
    # an sBIT that understates the data falls back to the full 16-bit scale
    loud = write_png16(tmp_path / "l.png", np.array([[0, 60000]], np.uint16), sbit=8)
    assert float(read_image(loud)[0, 0, 1]) == pytest.approx(60000 / 65535)


def test_8bit_images_unchanged(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (5, 6, 3)).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    assert png_significant_bits(tmp_path / "a.png") is None
    torch.testing.assert_close(
        read_image(tmp_path / "a.png"), torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    )


def test_float_image_is_refused_with_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(DataFormatError, match=r"f\.tiff is a floating-point TIFF image.*GeoTiff"):
        read_pixels(tmp_path / "f.tiff")


def test_eurosat_folder_of_16bit_pngs(tmp_path: Path) -> None:
    for c, level in (("A", 20000), ("B", 40000)):
        (tmp_path / c).mkdir()
        for n in range(5):
            Image.fromarray(np.full((8, 8), level + n, np.uint16)).save(tmp_path / c / f"{n}.png")
    ds = EuroSAT(tmp_path, split="all")
    s = ds[len(ds) - 1]
    assert float(s["image"].max()) == pytest.approx(40004 / 65535)
