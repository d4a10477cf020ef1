"""Segmentation of scenes of any size: windowed reads, batched sliding windows, weighted blending.

The scene is processed one strip (a row of windows) at a time, left to right in batches:

1. read the pixels of the batch's windows with one bounded windowed read (at most
   ``tile`` x ``(batch_size - 1) * stride + tile`` pixels), never the whole raster;
2. run ``model.predict_proba`` on the batch of (``in_channels``, tile, tile) windows;
3. add ``probabilities x weight window`` and the weights into accumulators that span only the
   strip's ``tile`` rows and the scene width;
4. when the next strip starts ``stride`` rows lower, the rows above it are final: normalise them
   (divide by the summed weights), take the arg-max, mark invalid pixels nodata, hand them to
   the writer, and shift the accumulators up.

Peak memory therefore grows with the scene *width* (about ``tile x width x (4 K + 5)`` bytes for
the accumulators plus one 256-row tile row of output) and not with its height. Windows whose
pixels are all nodata are skipped.

A model that records ``resample`` (native pixels x factor = model pixels, e.g. 0.25) is run on
native windows of ``round(tile / resample)`` pixels: each is resized to ``tile`` (antialiased
bilinear, as in training), predicted, and its probabilities are resized back (bilinear) to the
native window before blending, so everything above holds with that native window in place of
``tile`` and the output stays on the input's grid.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from satdifuser.data.tiling import window_starts
from satdifuser.errors import ConfigError, InputShapeError
from satdifuser.model.resample import resize_images, resize_probabilities
from satdifuser.predict.blending import BlendMode, weight_window
from satdifuser.predict.prepare import Preparer, make_preparer
from satdifuser.predict.protocol import (
    model_class_colors,
    model_resample,
    predict_at_model_scale,
)
from satdifuser.predict.sources import GeoTiffSource, PixelSource, open_source
from satdifuser.predict.stats import PredictStats, ProgressFn
from satdifuser.predict.writers import GeoTiffWriter, PngWriter, RowWriter


def model_device(model: object) -> torch.device:
    """``model.device`` if it has one, else the device of its first parameter, else CPU."""
    device = getattr(model, "device", None)
    if device is not None:
        return torch.device(device)
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


AUTO_BATCH_PIXELS = 2 * 256 * 256
"""Model pixels per call when no batch size is given: the activations of a diffusion UNet at
several timesteps grow with batch x tile area (on a 10,000 px scene, 256 px windows at 3 timesteps
peaked at 4.5 GB with 32 windows per call, 2.2 GB with 4, 1.7 GB with 2)."""


def auto_batch_size(tile: int) -> int:
    """Windows per call for ``tile`` px windows: 32 up to 64 px, 8 at 128, 2 at 256, 1 above."""
    return max(1, min(32, AUTO_BATCH_PIXELS // (tile * tile)))


def native_window(tile: int, factor: float) -> int:
    """Side in native pixels of a window that is ``tile`` pixels at the model's scale."""
    return tile if factor == 1.0 else max(1, round(tile / factor))


def _pad_to(tiles: Tensor, size: int) -> Tensor:
    """Pad (B, C, h, w) windows at the bottom/right to (B, C, size, size), mirroring the edge."""
    ph, pw = size - tiles.shape[-2], size - tiles.shape[-1]
    if ph == 0 and pw == 0:
        return tiles
    mode = "reflect" if ph < tiles.shape[-2] and pw < tiles.shape[-1] else "replicate"
    return F.pad(tiles, (0, pw, 0, ph), mode=mode)


class _Strip:
    """Accumulators for the ``rows`` scene rows of the current strip, full width."""

    def __init__(self, k: int, rows: int, width: int) -> None:
        self.acc = np.zeros((k, rows, width), dtype=np.float32)
        self.wsum = np.zeros((rows, width), dtype=np.float32)
        self.valid = np.ones((rows, width), dtype=bool)

    def finish(
        self, n: int, nodata: int, dtype: np.dtype, keep_probs: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Class ids (and probabilities) of the top ``n`` rows; then shift everything up."""
        num, den = self.acc[:, :n], self.wsum[:n]
        ok = (den > 0) & self.valid[:n]
        classes = np.zeros(den.shape, dtype=dtype)
        best = num[0].copy()
        for c in range(1, num.shape[0]):  # class by class: faster than a strided argmax(axis=0)
            better = num[c] > best  # strict: ties keep the first class, like argmax
            classes[better] = c
            np.maximum(best, num[c], out=best)
        classes[~ok] = nodata
        probs = None
        if keep_probs:
            probs = np.full(num.shape, np.nan, dtype=np.float32)
            np.divide(num, den, out=probs, where=np.broadcast_to(ok, num.shape))
        for a in (self.acc, self.wsum, self.valid):
            a[..., : a.shape[-2] - n, :] = a[..., n:, :]
            a[..., a.shape[-2] - n :, :] = a.dtype.type(1) if a.dtype == bool else 0
        return classes, probs


def segment(
    model: Any,
    source: PixelSource,
    writer: RowWriter,
    *,
    preparer: Preparer | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    blend: BlendMode = "triangular",
    keep_probs: bool = False,
    progress: ProgressFn | None = None,
    resample: float | None = None,
) -> PredictStats:
    """Predict ``source`` window by window and stream the blended class map into ``writer``.

    Args:
        model: A segmentation model (see :class:`~satdifuser.predict.protocol.PredictModel`).
        source: The scene.
        writer: Receives finished rows top to bottom.
        preparer: Raw pixels -> [0, 1] (default: :func:`make_preparer` of the model).
        overlap: Native pixels shared by neighbouring windows, in [0, window) (default:
            window // 4; window = ``round(tile / resample)``, the tile without resampling).
        batch_size: Windows per ``predict_proba`` call (default: :func:`auto_batch_size`).
        blend: Weight window (``triangular``, ``hann``; ``uniform`` = plain averaging).
        keep_probs: Also hand blended probabilities (K, h, W) to the writer.
        progress: Called with ``(tiles done, tiles total)`` after each batch.
        resample: Factor from native to model pixels, overriding ``model.resample`` (default:
            the model's, else 1.0).

    Returns:
        Counters and timings.

    Raises:
        ConfigError: ``overlap``, ``batch_size`` or ``resample`` out of range.
        InputError: Band count or scaling the model cannot take (before anything is written).
        InputShapeError: The model returns probabilities of the wrong shape.
    """
    t_start = time.perf_counter()
    tile, k = int(model.tile_size), len(model.class_names)
    factor = model_resample(model, resample)
    win = native_window(tile, factor)
    overlap = win // 4 if overlap is None else int(overlap)
    if not 0 <= overlap < win:
        at = f"tile_size={tile}" + (f" / resample={factor:g}" if factor != 1.0 else "")
        raise ConfigError(f"overlap={overlap} must be in [0, {win}) native pixels ({at})")
    batch_size = auto_batch_size(tile) if batch_size is None else batch_size
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be >= 1")
    prepare = preparer or make_preparer(model)
    h, w = source.height, source.width
    th, tw = min(win, h), min(win, w)
    ys, xs = window_starts(h, win, win - overlap), window_starts(w, win, win - overlap)
    weights = weight_window(win, blend)[:th, :tw]
    strip = _Strip(k, th, w)
    device = model_device(model)
    stats = PredictStats(tiles=len(ys) * len(xs), pixels=h * w)
    done, top = 0, 0
    for y in ys:
        if y > top:
            writer.write_rows(*strip.finish(y - top, writer.nodata, writer.dtype, keep_probs))
            top = y
        for b in range(0, len(xs), batch_size):
            run = xs[b : b + batch_size]
            x0, x1 = run[0], run[-1] + tw
            raw, mask = source.read(y, x0, th, x1 - x0)
            if mask is not None:
                strip.valid[:, x0:x1] = mask
                run = [x for x in run if mask[:, x - x0 : x - x0 + tw].any()]
                raw = np.where(mask, raw, np.zeros((), dtype=raw.dtype))
            done += len(xs[b : b + batch_size])
            stats.skipped += len(xs[b : b + batch_size]) - len(run)
            if run:
                pixels = prepare(raw, source.name)
                if win == tile:
                    tiles = _pad_to(torch.stack([pixels[:, :, x - x0 : x - x0 + tw] for x in run]),
                                    tile)  # fmt: skip
                else:  # native window -> model scale, one at a time (memory: one window)
                    tiles = torch.cat([
                        resize_images(_pad_to(pixels[None, :, :, x - x0 : x - x0 + tw], win),
                                      (tile, tile))
                        for x in run
                    ])  # fmt: skip
                t0 = time.perf_counter()
                with torch.inference_mode():
                    probs = predict_at_model_scale(model, tiles.to(device))
                probs = probs.float().cpu()
                stats.model_seconds += time.perf_counter() - t0
                if tuple(probs.shape) != (len(run), k, tile, tile):
                    raise InputShapeError(
                        f"model.predict_proba returned shape {tuple(probs.shape)} for "
                        f"{len(run)} windows of {tile}x{tile}; expected "
                        f"({len(run)}, {k}, {tile}, {tile}) for a segmentation model"
                    )
                if win == tile:
                    weighted = probs[:, :, :th, :tw].numpy() * weights  # one op for the batch
                else:  # model scale -> native window, one at a time
                    weighted = (resize_probabilities(p[None], (win, win))[0, :, :th, :tw].numpy()
                                * weights for p in probs)  # fmt: skip
                for x, px in zip(run, weighted, strict=True):
                    strip.acc[:, :, x : x + tw] += px
                    strip.wsum[:, x : x + tw] += weights
            if progress is not None:
                progress(done, stats.tiles)
    writer.write_rows(*strip.finish(h - top, writer.nodata, writer.dtype, keep_probs))
    stats.seconds = time.perf_counter() - t_start
    return stats


def predict_segmentation(
    model: Any,
    input_path: Path,
    output_path: Path,
    *,
    probabilities_path: Path | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    blend: BlendMode = "triangular",
    bands: list[int] | None = None,
    scale: float | None = None,
    progress: ProgressFn | None = None,
    resample: float | None = None,
) -> PredictStats:
    """Segment one image or scene into ``output_path`` (``.tif``: GeoTIFF, ``.png``: colour PNG).

    The output has the input's size whatever the model's ``resample`` (or ``resample`` given
    here, overriding it; see :func:`segment`). A GeoTIFF output carries the input's CRS,
    transform and nodata areas (class-id nodata: the
    input's integer nodata when it is not a class id, else 255, or 65535 above 255 classes), is
    tiled (256 x 256) and deflate-compressed, and has a colour table and the class names as the
    ``class_names`` tag. ``probabilities_path`` adds K float32 bands (NaN nodata). Colours
    (colour table, PNG palette) are the model's ``class_colors`` when it has them, else tab20.

    Raises:
        ConfigError: Unknown output suffix, a probability file for a PNG output, a
            ``resample`` out of (0, 4] or bad ``model.class_colors``.
        InputError: Band count or scaling the model was not trained for (nothing written).
    """
    suffix = output_path.suffix.lower()
    if suffix not in {".tif", ".tiff", ".png"}:
        raise ConfigError(f"output {output_path} must end in .tif (GeoTIFF) or .png (colour PNG)")
    if suffix == ".png" and probabilities_path is not None:
        raise ConfigError(
            f"probabilities go into a GeoTIFF but the output {output_path} is a PNG; "
            "write a .tif output or drop the probabilities"
        )
    model_resample(model, resample)  # fails before anything is opened or written
    colors = model_class_colors(model)
    prepare = make_preparer(model, scale)
    with open_source(input_path, bands) as source:
        raw, _ = source.read(0, 0, min(1, source.height), min(1, source.width))
        prepare(raw, source.name)  # band count and scaling fail here, before any output exists
        output_path.parent.mkdir(parents=True, exist_ok=True)
        writer: RowWriter
        if suffix == ".png":
            writer = PngWriter(output_path, source.height, source.width, model.class_names,
                               colors)  # fmt: skip
        else:
            geo = isinstance(source, GeoTiffSource)
            ds = source.dataset if geo else None
            writer = GeoTiffWriter(
                output_path, source.height, source.width, model.class_names,
                crs=ds.crs if ds is not None else None,
                transform=ds.transform if ds is not None and source.georeferenced else None,
                nodata=ds.nodata if ds is not None else None,
                probabilities_path=probabilities_path, colors=colors,
            )  # fmt: skip
        try:
            stats = segment(
                model, source, writer, preparer=prepare, overlap=overlap,
                batch_size=batch_size, blend=blend, keep_probs=probabilities_path is not None,
                progress=progress, resample=resample,
            )  # fmt: skip
            writer.finish()
        except BaseException:
            writer.abort()
            raise
    return stats


__all__ = ["model_device", "native_window", "predict_segmentation", "segment"]
