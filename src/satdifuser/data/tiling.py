"""Tiles of large images: crop windows for training, sliding-window prediction for evaluation.

Training reads random or regular (grid) crops of ``window`` pixels; evaluation predicts whole
images with :func:`sliding_window_predict`, which averages the logits of overlapping windows,
so metrics are computed per whole image, not per crop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from satdifuser.errors import ConfigError, InputShapeError


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets along one axis so windows cover ``[0, size)``; the last is flush with the end.

    A ``size`` smaller than ``window`` gives ``[0]`` (the window is padded).
    """
    if window < 1 or stride < 1:
        raise ConfigError(f"window={window} and stride={stride} must be >= 1")
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def grid_windows(height: int, width: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of a regular grid of windows covering the image."""
    return [
        (y, x)
        for y in window_starts(height, window, stride)
        for x in window_starts(width, window, stride)
    ]


def random_window(
    height: int, width: int, window: int, generator: torch.Generator | None = None
) -> tuple[int, int]:
    """A uniformly random top-left corner ``(y, x)`` of a window inside the image (0 if smaller)."""
    y = int(torch.randint(0, max(1, height - window + 1), (1,), generator=generator))
    x = int(torch.randint(0, max(1, width - window + 1), (1,), generator=generator))
    return y, x


def crop_array(array: np.ndarray, y: int, x: int, window: int, fill: float | int) -> np.ndarray:
    """Crop a square of side ``window`` at ``(y, x)`` from (H, W, ...) ``array``; pad with fill."""
    out = array[y : y + window, x : x + window]
    h, w = out.shape[:2]
    if h == window and w == window:
        return out
    padded = np.full((window, window, *array.shape[2:]), fill, dtype=array.dtype)
    padded[:h, :w] = out
    return padded


def sliding_window_predict(
    fn: Callable[[Tensor], Tensor],
    image: Tensor,
    window: int,
    overlap: float = 0.5,
    num_classes: int | None = None,
    batch_size: int = 8,
) -> Tensor:
    """Predict a whole image window by window and average the logits where windows overlap.

    Args:
        fn: Maps a batch of windows (B, C, window, window) to logits (B, K, h, w); logits of
            another size than the window are resized bilinearly.
        image: (C, H, W) or (N, C, H, W) image of any size; images smaller than ``window`` are
            zero-padded and the padding is cut from the result.
        window: Window side in pixels.
        overlap: Fraction of the window shared by neighbouring windows, in [0, 1)
            (stride = ``round(window * (1 - overlap))``).
        num_classes: Expected K; checked against ``fn``'s output (None: taken from it).
        batch_size: Windows per call of ``fn``.

    Returns:
        Logits (K, H, W) or (N, K, H, W), float32 on the image's device.

    Raises:
        ConfigError: ``overlap`` outside [0, 1) or ``window``/``batch_size`` < 1.
        InputShapeError: ``image`` is not 3-D/4-D, or ``fn`` returns the wrong shape.
    """
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap={overlap} must be in [0, 1) (fraction of the window)")
    if window < 1 or batch_size < 1:
        raise ConfigError(f"window={window} and batch_size={batch_size} must be >= 1")
    if image.ndim not in (3, 4):
        raise InputShapeError(f"image has shape {tuple(image.shape)}; expected (C, H, W) or 4-D")
    single = image.ndim == 3
    x = image[None] if single else image
    n, _, h, w = x.shape
    ph, pw = max(h, window), max(w, window)
    if (ph, pw) != (h, w):
        x = F.pad(x, (0, pw - w, 0, ph - h))
    stride = max(1, round(window * (1.0 - overlap)))
    corners = grid_windows(ph, pw, window, stride)
    out: Tensor | None = None
    count = torch.zeros((1, 1, ph, pw), dtype=torch.float32, device=x.device)
    for b in range(0, len(corners), batch_size):
        chunk = corners[b : b + batch_size]
        tiles = torch.cat([x[:, :, y : y + window, xx : xx + window] for y, xx in chunk], dim=0)
        logits = fn(tiles)
        if logits.ndim != 4 or logits.shape[0] != tiles.shape[0]:
            raise InputShapeError(
                f"fn returned shape {tuple(logits.shape)} for {tiles.shape[0]} windows; "
                "expected (B, K, h, w) logits"
            )
        if num_classes is not None and logits.shape[1] != num_classes:
            raise InputShapeError(
                f"fn returned {logits.shape[1]} channels but num_classes={num_classes}"
            )
        if logits.shape[-2:] != (window, window):
            logits = F.interpolate(
                logits.float(), size=(window, window), mode="bilinear", align_corners=False
            )
        logits = logits.float().reshape(len(chunk), n, -1, window, window)
        if out is None:
            out = torch.zeros((n, logits.shape[2], ph, pw), dtype=torch.float32, device=x.device)
        for (y, xx), lg in zip(chunk, logits, strict=True):
            out[:, :, y : y + window, xx : xx + window] += lg
            count[:, :, y : y + window, xx : xx + window] += 1
    assert out is not None  # at least one window always exists
    out = (out / count)[:, :, :h, :w]
    return out[0] if single else out


__all__ = [
    "crop_array",
    "grid_windows",
    "random_window",
    "sliding_window_predict",
    "window_starts",
]
