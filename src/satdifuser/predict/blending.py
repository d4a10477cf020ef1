"""Weight windows for blending overlapping sliding-window predictions without seams.

Plain averaging of overlapping windows leaves a step wherever a window starts or ends: the pixel
just inside the overlap suddenly gets a second opinion at full weight. A weight that falls to
(almost) zero at the window's border and peaks in its centre makes every window fade in and out,
so the blended map is continuous across window borders (the separable-window blending used for
large-image inference in e.g. MONAI's ``sliding_window_inference`` ``mode="gaussian"`` and the
"smoothly blend patches" recipe of Chevalier). The weights stay strictly positive, so a pixel
that only one window covers (a scene edge) is still predicted, and sums are normalised by the
summed weights, so a constant prediction stays exactly constant.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from satdifuser.errors import ConfigError

BlendMode = Literal["triangular", "hann", "uniform"]
BLEND_MODES: tuple[str, ...] = ("triangular", "hann", "uniform")


def weight_1d(size: int, mode: BlendMode = "triangular") -> np.ndarray:
    """A strictly positive (size,) float32 weight profile, peaking at 1 in the centre.

    ``triangular``: ``1 - |2 (i + 0.5) / size - 1|`` (from ``1/size`` at the ends to 1);
    ``hann``: ``sin^2(pi (i + 0.5) / size)``; ``uniform``: all ones (plain averaging).
    """
    if size < 1:
        raise ConfigError(f"window size={size} must be >= 1")
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    if mode == "triangular":
        w = 1.0 - np.abs(2.0 * centres - 1.0)
    elif mode == "hann":
        w = np.sin(np.pi * centres) ** 2
    elif mode == "uniform":
        w = np.ones(size)
    else:
        raise ConfigError(f"blend={mode!r}; choose one of {', '.join(BLEND_MODES)}")
    return (w / w.max()).astype(np.float32)


def weight_window(size: int, mode: BlendMode = "triangular") -> np.ndarray:
    """The separable (size, size) float32 window: the outer product of :func:`weight_1d`."""
    w = weight_1d(size, mode)
    return np.outer(w, w)


__all__ = ["BLEND_MODES", "BlendMode", "weight_1d", "weight_window"]
