"""One policy for non-finite pixel values and declared nodata, shared by every reader.

Policy (also in ``docs/data.md``):

- **Non-finite values are refused.** A pixel that is NaN, +Inf or -Inf in an image file, a
  GeoTIFF, a mask or a GEO-Bench band raises :class:`~satdifuser.errors.DataFormatError` naming
  the file, how many values are affected and where the first one is, and how to fix it. Nothing
  is replaced silently: a NaN read as 0 or an Inf clipped to 1 would be trained on as real
  reflectance.
- **Declared nodata is honoured.** A GeoTIFF may declare a nodata value with the GDAL_NODATA tag
  (``gdal_edit.py -a_nodata nan FILE``, or ``nodata=`` in rasterio). Pixels equal to it (NaN
  pixels when it is ``nan``) are nodata, not errors: they are excluded from percentile
  statistics, read as 0 in the scaled image, and in image/mask pairs their mask pixels become
  ``ignore_index``, so losses and metrics skip them. Infinite values are never nodata.
- Integer rasters (JPEG, PNG, integer GeoTIFFs) cannot hold NaN or Inf; for them the check costs
  nothing. GEO-Bench HDF5 bands declare no nodata, so any non-finite value there is refused.
"""

from __future__ import annotations

import math

import numpy as np

from satdifuser.errors import DataFormatError

FIX_HINT = (
    "replace them in the file, or declare them nodata (GeoTIFF GDAL_NODATA tag, e.g. "
    "`gdal_edit.py -a_nodata nan FILE`) so they are read as nodata; see docs/data.md"
)
"""The fix every non-finite error suggests."""


def parse_nodata(text: object) -> float | None:
    """The value of a GDAL_NODATA tag (``"nan"``, ``"-9999"``, ``"0"``), None when absent/bad."""
    if text is None:
        return None
    try:
        return float(str(text).strip().strip("\x00"))
    except ValueError:
        return None


def _where(mask: np.ndarray) -> str:
    first = np.argwhere(mask)[0].tolist()
    if mask.ndim == 3:
        return f"band {first[0]}, row {first[1]}, column {first[2]}"
    if mask.ndim == 2:
        return f"row {first[0]}, column {first[1]}"
    return f"index {first}"


def check_finite(
    array: np.ndarray,
    source: str,
    nodata: float | None = None,
    what: str = "pixel values",
    fix: str = FIX_HINT,
) -> None:
    """Refuse NaN / Inf in ``array`` unless declared nodata covers them.

    Args:
        array: Pixels as read, (C, H, W), (H, W) or (H, W, C); integer arrays pass at once.
        source: The file (and band) the pixels come from, for the message.
        nodata: The file's declared nodata value; ``nan`` makes NaN pixels nodata (allowed).
        what: What the values are, for the message (``pixel values``, ``mask values``).
        fix: How to fix it (default :data:`FIX_HINT`; formats without nodata say otherwise).

    Raises:
        DataFormatError: NaN (not declared nodata) or +/-Inf values; the message names the file,
            the counts, the first position and the fix.
    """
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(
        array.dtype, np.complexfloating
    ):
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    nan = np.isnan(array)
    bad = ~finite
    if nodata is not None and math.isnan(nodata):
        bad &= ~nan
        if not bad.any():
            return
    n_nan = int((nan & bad).sum())
    n_inf = int((bad & ~nan).sum())
    kinds = " and ".join(
        p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} infinite" if n_inf else "") if p
    )
    declared = f" (declared nodata: {nodata})" if nodata is not None else ""
    raise DataFormatError(
        f"{source} holds {kinds} {what}{declared}, first at {_where(bad)}; satdifuser refuses "
        f"non-finite values rather than guess what they mean: {fix}"
    )


def nodata_mask(array: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """(H, W) bool, True where any band of ``array`` (C, H, W) or (H, W) is nodata; None if
    the file declares no nodata or no pixel is nodata."""
    if nodata is None:
        return None
    hit = np.isnan(array) if math.isnan(nodata) else array == nodata
    if hit.ndim == 3:
        hit = hit.any(axis=0)
    return hit if hit.any() else None


__all__ = ["FIX_HINT", "check_finite", "nodata_mask", "parse_nodata"]
