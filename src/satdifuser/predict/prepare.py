"""Raw raster pixels -> model input in [0, 1], refusing band counts and scalings it cannot know.

Rules of :func:`default_prepare_raster` (used when the model has no ``prepare_raster``):

- the band count must equal ``model.in_channels`` (select bands with ``bands=[...]``);
- ``uint8`` is divided by 255;
- floats must already lie in [0, 1] (a 1e-3 tolerance, then clipped);
- every other type (``uint16`` reflectances, signed integers) is refused unless a ``scale`` is
  given: 12-bit, 14-bit and 16-bit sensors and reflectance products (x 10,000) all store uint16,
  so guessing 65,535 would silently darken or saturate the input.

With ``scale`` the array is divided by it and clipped to [0, 1], for any type.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from satdifuser.errors import ConfigError, InputError

Preparer = Callable[[np.ndarray, str], Tensor]
"""``(raw (C, H, W) array, source name) -> (C, H, W) model input``: float32 (in [0, 1], or raw
values the model's input spec scales), or integer raw pixels the model scales by their dtype."""

_FLOAT_TOLERANCE = 1e-3


def _check_bands(array: np.ndarray, source: str, in_channels: int) -> None:
    if array.ndim != 3:
        raise InputError(f"{source}: pixels have shape {array.shape}; expected (C, H, W)")
    if array.shape[0] != in_channels:
        raise InputError(
            f"{source} has {array.shape[0]} band(s) but the model takes {in_channels}; "
            f"choose {in_channels} bands (--bands, 1-based) or use a model trained on "
            f"{array.shape[0]}-band input"
        )


def default_prepare_raster(
    array: np.ndarray, source: str, in_channels: int, scale: float | None = None
) -> Tensor:
    """Map raw (C, H, W) pixels to float32 in [0, 1] by the module's rules.

    Args:
        array: Raw pixels (C, H, W), any numeric dtype.
        source: File name used in error messages.
        in_channels: Bands the model takes.
        scale: Divide by this value and clip to [0, 1] (e.g. 10000 for reflectance x 10,000);
            None applies the per-dtype rules.

    Returns:
        (C, H, W) float32 tensor in [0, 1].

    Raises:
        InputError: Wrong band count, an integer type other than uint8 without ``scale``, or
            floats outside [0, 1].
        ConfigError: ``scale`` is not positive.
    """
    _check_bands(array, source, in_channels)
    if scale is not None:
        if not scale > 0:
            raise ConfigError(f"scale={scale} must be > 0 (the raw value that maps to 1.0)")
        out = np.clip(array.astype(np.float32) / np.float32(scale), 0.0, 1.0)
        return torch.from_numpy(out)
    if array.dtype == np.uint8:
        return torch.from_numpy(array.astype(np.float32) / np.float32(255.0))
    if np.issubdtype(array.dtype, np.floating):
        out = array.astype(np.float32, copy=False)
        if out.size:
            lo, hi = float(np.nanmin(out)), float(np.nanmax(out))
            if lo < -_FLOAT_TOLERANCE or hi > 1 + _FLOAT_TOLERANCE or np.isnan(lo):
                raise InputError(
                    f"{source} holds float values in [{lo:g}, {hi:g}] but the model takes "
                    "[0, 1]; give the value that maps to 1.0 (--scale, e.g. 10000 for "
                    "reflectance x 10,000)"
                )
        return torch.from_numpy(np.clip(out, 0.0, 1.0))
    raise InputError(
        f"{source} is {array.dtype} and the model declares no scale for it; 8-bit input is "
        "divided by 255, anything else needs the value that maps to 1.0 (--scale, e.g. 10000 "
        "for Sentinel-2 reflectance, 4095 for 12-bit, 65535 for full 16-bit)"
    )


def _check_scale_against_spec(model: object, scale: float | None) -> float | None:
    """The ``scale`` to divide raw pixels by, None where the model's input spec scales them.

    ``scale`` maps raw pixels into [0, 1], the input of a model without an input spec (or with
    ``kind='unit'``). A ``raw``/``zscore`` spec scales raw pixels itself (in the model's forward):
    dividing first would scale twice, so ``scale`` must be the spec's own value (then it changes
    nothing) or is refused.
    """
    spec = getattr(model, "input_spec", None)
    kind = getattr(spec, "kind", "unit")
    if scale is None or kind == "unit":
        return scale
    own = getattr(spec, "scale", None)
    if own is not None and float(scale) == float(own):
        return None
    if own is None:
        scaling = "uint8 / 255"
    else:
        scaling = f"(x * std + mean) / {own:g}" if kind == "zscore" else f"raw / {own:g}"
    raise ConfigError(
        f"--scale {scale:g} does not fit the model: its input spec scales raw file pixels "
        f"itself (kind={kind!r}, {scaling}); drop --scale"
    )


def make_preparer(model: object, scale: float | None = None) -> Preparer:
    """The function that turns raw pixels into ``model``'s input.

    An explicit ``scale`` wins (the user declared it); else ``model.prepare_raster`` when the model
    has one; else :func:`default_prepare_raster`. A model whose input spec (``model.input_spec``)
    scales raw pixels itself (``kind='raw'``/``'zscore'``) takes them from ``prepare_raster``
    whatever ``scale``: a ``scale`` equal to the spec's changes nothing, another is refused. The
    result is always checked to be (``in_channels``, H, W). Floats come back as float32; integer
    pixels from ``model.prepare_raster`` keep their dtype (raw values whose scaling the model's
    input spec derives from the dtype: uint8 / 255), as ``model.predict`` would take them.

    Raises:
        ConfigError: ``scale`` differs from the scale of the model's input spec.
    """
    in_channels = int(model.in_channels)  # type: ignore[attr-defined]
    custom = getattr(model, "prepare_raster", None)
    scale = _check_scale_against_spec(model, scale)

    def prepare(array: np.ndarray, source: str) -> Tensor:
        if scale is None and callable(custom):
            out = custom(array, source)
            if isinstance(out, Tensor) and out.ndim == 3 and out.shape[0] != in_channels:
                _check_bands(array, source, in_channels)  # names the raw band count
        else:
            out = default_prepare_raster(array, source, in_channels, scale)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(np.asarray(out))
        if out.ndim != 3 or out.shape[0] != in_channels or out.shape[1:] != array.shape[1:]:
            raise InputError(
                f"{source}: prepared input has shape {tuple(out.shape)}; expected "
                f"({in_channels}, {array.shape[1]}, {array.shape[2]})"
            )
        return out.float() if out.is_floating_point() else out

    return prepare


__all__ = ["Preparer", "default_prepare_raster", "make_preparer"]
