"""Turning mask files into class-id masks: colour tables and index checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from satdifuser.data.plotting import hex_to_rgb
from satdifuser.errors import ConfigError, DataFormatError


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) int32 ``r << 16 | g << 8 | b``."""
    c = rgb.astype(np.int32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def _packed(color: str, what: str) -> int:
    try:
        r, g, b = hex_to_rgb(color)
    except ValueError:
        raise ConfigError(f"{what} {color!r} is not of the form #RRGGBB") from None
    return (r << 16) | (g << 8) | b


class ColorTable:
    """Class colours of colour-coded masks.

    Args:
        colors: ``#RRGGBB`` per class id (entry ``k`` is class ``k``).
        ignore_colors: Colours that mean "no label" (mapped to ``ignore_index`` silently).
    """

    def __init__(self, colors: Sequence[str], ignore_colors: Sequence[str] = ()) -> None:
        self.colors = [c.upper() for c in colors]
        self.codes = [_packed(c, "colour") for c in colors]
        self.ignore_codes = [_packed(c, "ignore colour") for c in ignore_colors]
        if len(set(self.codes)) != len(self.codes):
            raise ConfigError(f"colors={list(colors)} lists a colour twice; each class needs one")
        clash = set(self.codes) & set(self.ignore_codes)
        if clash:
            raise ConfigError("a colour is both a class colour and in ignore_colors")

    def encode(self, rgb: np.ndarray, ignore_index: int) -> tuple[np.ndarray, dict[str, int]]:
        """(H, W, 3) colours -> (H, W) int64 class ids, and ``{#RRGGBB: pixels}`` of unknowns.

        Unknown colours become ``ignore_index``; the caller decides how to report them.
        """
        packed = pack_rgb(rgb)
        out = np.full(packed.shape, ignore_index, dtype=np.int64)
        matched = np.zeros(packed.shape, dtype=bool)
        for k, code in enumerate(self.codes):
            hit = packed == code
            out[hit] = k
            matched |= hit
        for code in self.ignore_codes:
            matched |= packed == code
        unknown: dict[str, int] = {}
        if not matched.all():
            vals, counts = np.unique(packed[~matched], return_counts=True)
            order = np.argsort(-counts)
            unknown = {f"#{int(vals[i]):06X}": int(counts[i]) for i in order}
        return out, unknown


def check_index_mask(
    mask: np.ndarray, num_classes: int, ignore_index: int, source: str
) -> np.ndarray:
    """Return ``mask`` as int64 after checking every value is a class id or ``ignore_index``.

    Raises:
        DataFormatError: a value is outside ``0 .. num_classes - 1`` and not ``ignore_index``.
    """
    m = mask.astype(np.int64, copy=False)
    bad = (m < 0) | (m >= num_classes)
    bad &= m != ignore_index
    if bad.any():
        vals = np.unique(m[bad])
        raise DataFormatError(
            f"mask {source} holds label {int(vals[0])} ({int(bad.sum())} pixels, values "
            f"{vals[:5].tolist()}) outside 0..{num_classes - 1} and not ignore_index="
            f"{ignore_index}; fix the mask or pass the right classes/ignore_index"
        )
    return m


def to_class_ids(
    pixels: np.ndarray,
    table: ColorTable | None,
    num_classes: int,
    ignore_index: int,
    source: str,
) -> tuple[np.ndarray, dict[str, int]]:
    """Mask pixels as read from the file -> (H, W) int64 class ids and unknown colours.

    Colour masks need a ``table``; a 3-channel mask without one is accepted only when it is
    grey (all channels equal), and then read as an index mask.
    """
    if pixels.ndim == 3:
        if table is not None:
            return table.encode(pixels, ignore_index)
        if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and
                np.array_equal(pixels[..., 0], pixels[..., 2])):  # fmt: skip
            raise DataFormatError(
                f"mask {source} is a colour image but no colour table was given; pass "
                "colors=['#RRGGBB', ...] (one per class) or use single-channel index masks"
            )
        pixels = pixels[..., 0]
    elif table is not None:
        raise DataFormatError(
            f"mask {source} is single-channel but a colour table (colors=) was given; drop "
            "colors= to read it as an index mask"
        )
    return check_index_mask(pixels, num_classes, ignore_index, source), {}


__all__ = ["ColorTable", "check_index_mask", "pack_rgb", "to_class_ids"]
