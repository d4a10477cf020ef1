"""Raw raster arrays read from files -> a model's input (``SatDiFuserModel.prepare_raster``).

Three routes, by what the input contract records: an input spec of ``kind='raw'``/``'zscore'``
(raw bands, scaled by the model's adapter), the training reader's ``raster`` band selection and
scaling, or the default rules (uint8 / 255, floats in [0, 1], or ``raster_scale``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from satdifuser.errors import InputError
from satdifuser.model.inputs import InputAdapter


def prepare_raster(
    array: np.ndarray,
    contract: dict[str, Any],
    adapter: InputAdapter | None,
    source: str = "input",
) -> Tensor:
    """Map a raw ``(C, H, W)`` (or ``(H, W)``) array to the model's input.

    uint8 is divided by 255 and floats must already lie in [0, 1], unless ``contract`` records
    a ``raster_scale`` (raw value that maps to 1.0, e.g. 10000 for Sentinel-2 L2A) or the
    training reader's ``raster`` scaling. A spec of ``kind='unit'`` takes files by these rules.

    With a spec of ``kind='raw'`` or ``'zscore'`` the values come back as the model's forward
    takes them (its adapter scales them): ``raw`` bands as they are, ``zscore`` bands as
    ``(raw - mean) / std`` with the spec's mean/std. Both are checked against the spec and come
    back as float32, except ``kind='raw'`` without ``scale`` (uint8 / 255): those stay uint8 up
    to the adapter.

    Args:
        array: Pixels as read from the file.
        contract: The model's input contract (``channels``, ``raster``, ``raster_scale``...).
        adapter: The model's input adapter, or None without an input spec.
        source: Name of the file, for error messages.

    Raises:
        InputError: wrong band count, non-finite values, or a dtype/range the model was not
            trained for (naming ``source``).
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if adapter is not None and adapter.spec.kind != "unit":  # raw values: adapter scales
        return _prepare_for_spec(arr, adapter, int(contract["channels"]), source)
    raster = contract.get("raster")
    if raster:  # the training reader's own band selection and scaling
        return _prepare_like_reader(arr, raster, contract.get("band_names"), source)
    _check_bands(arr, int(contract["channels"]), source)
    scale = contract.get("raster_scale")
    x = arr.astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{source}: holds NaN or Inf pixels; fill or mask them first")
    if scale is not None:
        x = x / float(scale)
    elif arr.dtype == np.uint8:
        x = x / 255.0
    elif np.issubdtype(arr.dtype, np.integer):
        top = f" values up to {int(arr.max())}" if arr.size else ""
        raise InputError(
            f"{source}: {arr.dtype}{top}, but the model takes [0, 1] and records no "
            f"raster_scale (only 8-bit is divided by 255); {_SCALE_FIX}"
        )
    elif x.size and (x.min() < -1e-3 or x.max() > 1 + 1e-3):
        raise InputError(
            f"{source}: float pixels in [{x.min():.3g}, {x.max():.3g}] but the model takes "
            f"[0, 1]; {_SCALE_FIX}"
        )
    return torch.from_numpy(np.clip(x, 0.0, 1.0))


_SCALE_FIX = (
    "pass --scale with the raw value that maps to 1.0 so values fall in [0, 1] (--scale 10000 "
    "for Sentinel-2 reflectance, 4095 for 12-bit, 65535 for full 16-bit), or save the model "
    "with input_contract raster_scale"
)


def _check_bands(arr: np.ndarray, channels: int, source: str) -> None:
    if arr.ndim != 3 or arr.shape[0] != channels:
        raise InputError(
            f"{source}: has {arr.shape[0] if arr.ndim == 3 else arr.ndim} bands/dims but the "
            f"model takes {channels} bands; pass images with those bands"
        )


def _prepare_for_spec(arr: np.ndarray, adapter: InputAdapter, channels: int, source: str) -> Tensor:
    """Raw bands for a ``kind='raw'``/``'zscore'`` spec, checked by its adapter."""
    spec = adapter.spec
    _check_bands(arr, channels, source)
    if spec.kind == "zscore":
        mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
        arr = (arr.astype(np.float32) - mean) / std
    x = torch.from_numpy(np.ascontiguousarray(arr))
    try:
        adapter.check(x[None])
    except InputError as err:
        raise InputError(f"{source}: {err}") from None
    return x if spec.kind == "raw" and spec.scale is None else x.float()


def _prepare_like_reader(
    arr: np.ndarray, raster: dict[str, Any], band_names: Any, source: str
) -> Tensor:
    """The training reader's band selection and scaling (``contract["raster"]``)."""
    from satdifuser.data.bands import scale_bands

    want = int(raster.get("file_bands") or arr.shape[0])
    if arr.ndim != 3 or arr.shape[0] != want:
        raise InputError(
            f"{source}: has {arr.shape[0] if arr.ndim == 3 else arr.ndim} bands but the model "
            f"was trained on files with {want} bands ({band_names} "
            "selected from them); pass rasters of the same product"
        )
    x = arr[list(raster["bands"])].astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{source}: holds NaN or Inf pixels; fill or mask them first")
    lo_hi = tuple(raster.get("value_range") or (0.0, 1.0))
    pct = tuple(raster.get("percentiles") or (2.0, 98.0))
    return torch.from_numpy(scale_bands(x, str(raster.get("scale", "fixed")), lo_hi, pct))


__all__ = ["prepare_raster"]
