"""Benchmark ``satdifuser predict`` on a large generated GeoTIFF scene; prints one JSON object.

    python benchmarks/predict_large.py --size 10000 --model runs/dubai/model
    python benchmarks/predict_large.py --size 1024 --fake            # quick check of the pipeline

Generates a georeferenced uint8 RGB GeoTIFF of ``size`` x ``size`` pixels (WGS84 / UTM 33N, 10 m,
tiled and deflate-compressed, written strip by strip) in a temporary folder, segments it with
:func:`satdifuser.predict.predict_segmentation` and reports:

- ``tiles_per_s``, ``mpx_per_s``, ``wall_s``: the whole streamed prediction (read, model,
  blend, write);
- ``model_s_in_run``: time inside ``model.predict_proba`` during that run;
- ``floor_s``: the "extraction floor", the time of only calling ``model.predict_proba`` on the
  same number of windows in the same batch sizes (real windows of the scene, already in memory);
  ``wall_over_floor`` = ``wall_s / floor_s`` is the cost of everything around the model;
- ``peak_rss_mb`` (``ru_maxrss``) and ``rss_before_predict_mb`` (peak before the run starts).

``--fake`` uses a per-pixel linear model (1x1 convolution + softmax) with ``--tile``/``--classes``,
which makes the floor tiny so the ratio shows the pipeline's own overhead.

A model that records ``input.resample`` (or ``--resample``) reads native windows of
``round(tile / resample)`` pixels, resized to ``tile``; the floor calls the model on those same
windows at its tile size, so it still counts only the model.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


class FakeSegmenter(nn.Module):
    """A 1x1 convolution + softmax with the predict protocol's members."""

    task_type = "segmentation"

    def __init__(self, tile_size: int = 64, classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(in_channels, classes, 1)
        self.tile_size, self.in_channels = tile_size, in_channels
        self.class_names = [f"class_{i}" for i in range(classes)]

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.conv(images), dim=1)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_scene(path: Path, size: int, strip: int = 256) -> float:
    """Write a size x size uint8 RGB GeoTIFF strip by strip; return the seconds it took."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    t0 = time.perf_counter()
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "crs": "EPSG:32633", "transform": from_origin(500_000, 5_100_000, 10, 10),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
        "BIGTIFF": "IF_SAFER", "nodata": 0,
    }  # fmt: skip
    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)[None, :]
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, strip):
            h = min(strip, size - row)
            y = np.arange(row, row + h, dtype=np.float32)[:, None]
            base = 0.5 + 0.25 * np.sin(x / 97.0) * np.cos(y / 131.0) + 0.2 * np.sin((x + y) / 53.0)
            bands = [base, np.roll(base, 7, axis=1), 1.0 - base]
            px = np.stack(bands) * 230 + rng.integers(0, 20, (3, h, size))
            dst.write(np.clip(px, 1, 255).astype(np.uint8), window=Window(0, row, size, h))
    return time.perf_counter() - t0


def batch_sizes(size: int, tile: int, overlap: int, batch: int) -> list[int]:
    """The batch sizes the streamed run uses: each strip's windows, split into ``batch``-chunks."""
    from satdifuser.data.tiling import window_starts

    starts = window_starts(size, tile, tile - overlap)
    per_strip = [min(batch, len(starts) - b) for b in range(0, len(starts), batch)]
    return per_strip * len(starts)


def extraction_floor(model: object, scene: Path, sizes: list[int], window: int) -> float:
    """Seconds of only ``predict_proba`` on real windows of the scene, in the run's batch sizes.

    ``window`` is the native window side (``tile`` unless the model resamples): windows of that
    side are read and resized to the model's tile size before timing, as the run does.
    """
    from satdifuser.model.resample import resize_images
    from satdifuser.predict.prepare import make_preparer
    from satdifuser.predict.protocol import predict_at_model_scale
    from satdifuser.predict.sources import GeoTiffSource

    tile, batch = int(model.tile_size), max(sizes)  # type: ignore[attr-defined]
    with GeoTiffSource(scene) as src:
        side = min(window, src.height, src.width)
        raw, _ = src.read(0, 0, side, min(src.width, side * batch))
    pixels = make_preparer(model)(raw, str(scene))
    tiles = [pixels[:, :, i * side : (i + 1) * side] for i in range(pixels.shape[-1] // side)]
    x = torch.stack([tiles[i % len(tiles)] for i in range(batch)])
    x = torch.nn.functional.pad(x, (0, window - side, 0, window - side), mode="replicate")
    x = resize_images(x, (tile, tile))
    batches = {n: x[:n].contiguous() for n in set(sizes)}
    with torch.inference_mode():
        predict_at_model_scale(model, x[:1])  # warm-up (lazy init, kernels)
        t0 = time.perf_counter()
        for n in sizes:
            predict_at_model_scale(model, batches[n]).float().cpu()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a saved SatDiFuserModel folder")
    src.add_argument("--fake", action="store_true", help="a 1x1-conv fake model")
    p.add_argument("--size", type=int, default=10_000, help="scene side in pixels")
    p.add_argument("--tile", type=int, default=64, help="--fake: window side")
    p.add_argument("--classes", type=int, default=10, help="--fake: number of classes")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows per model call (default: predict's, by window area)")  # fmt: skip
    p.add_argument("--overlap", type=int, default=None,
                   help="native pixels (default a quarter of the native window)")  # fmt: skip
    p.add_argument("--resample", type=float, default=None,
                   help="native -> model pixel factor (default: the model's, else 1)")  # fmt: skip
    p.add_argument("--probabilities", action="store_true", help="also write the K-band file")
    p.add_argument("--device", default=None, help="torch device for the model")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--workdir", type=Path, default=None, help="keep files here (default: temp)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from satdifuser.features.atomic_io import check_writable_folder
    from satdifuser.predict import predict_segmentation
    from satdifuser.predict.protocol import model_resample
    from satdifuser.predict.segmentation import auto_batch_size, native_window

    if args.workdir is not None:  # made first: a long run must not fail at its first write
        check_writable_folder(args.workdir, "--workdir", create=True)
    if args.fake:
        model: object = FakeSegmenter(args.tile, args.classes)
    else:
        from satdifuser.model import SatDiFuserModel

        model = SatDiFuserModel.from_pretrained(args.model)
    if args.device:
        model = model.to(args.device)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        scene, out = folder / "scene.tif", folder / "classes.tif"
        gen_s = make_scene(scene, args.size)
        rss_before = _rss_mb()
        proba = folder / "proba.tif" if args.probabilities else None
        stats = predict_segmentation(model, scene, out, probabilities_path=proba,
                                     overlap=args.overlap, batch_size=args.batch_size,
                                     resample=args.resample)  # fmt: skip
        peak = _rss_mb()
        tile = int(model.tile_size)  # type: ignore[attr-defined]
        factor = model_resample(model, args.resample)
        window = native_window(tile, factor)
        overlap = window // 4 if args.overlap is None else args.overlap
        batch = args.batch_size or auto_batch_size(tile)
        sizes = batch_sizes(args.size, window, overlap, batch)
        if sum(sizes) != stats.tiles - stats.skipped:  # the generated scene has no nodata
            raise RuntimeError(f"floor plan has {sum(sizes)} windows, the run {stats.tiles}")
        floor = extraction_floor(model, scene, sizes, window)
        report = {
            "size": args.size, "tile": tile, "resample": factor, "native_window": window,
            "overlap": overlap,
            "batch_size": batch, "classes": len(model.class_names),  # type: ignore[attr-defined]
            "model": "fake-1x1conv" if args.fake else str(args.model),
            "device": str(args.device or "cpu"), "torch_threads": torch.get_num_threads(),
            "tiles": stats.tiles, "skipped": stats.skipped,
            "tiles_per_s": round(stats.tiles_per_s, 2), "mpx_per_s": round(stats.mpx_per_s, 3),
            "wall_s": round(stats.seconds, 3), "model_s_in_run": round(stats.model_seconds, 3),
            "floor_s": round(floor, 3),
            "wall_over_floor": round(stats.seconds / floor, 3) if floor > 0 else math.inf,
            "peak_rss_mb": round(peak, 1), "rss_before_predict_mb": round(rss_before, 1),
            "scene_mb": round(scene.stat().st_size / 2**20, 1),
            "output_mb": round(out.stat().st_size / 2**20, 2), "generate_s": round(gen_s, 2),
        }  # fmt: skip
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
