"""``satdifuser predict``: apply a trained model to images, folders and GeoTIFF scenes.

Examples::

    satdifuser predict --model runs/eurosat/model images/ scene.tif --out predictions.csv \\
        --footprints footprints.geojson
    satdifuser predict --model runs/dubai/model scene.tif --out scene_classes.tif --probabilities
    satdifuser predict --model runs/dubai/model tiles/ --out maps/ --overlap 32 --batch-size 64

Classification writes one CSV; segmentation writes one class map per input (GeoTIFF with the
input's CRS/transform/nodata, or a colour PNG for plain images). A model trained on resampled
imagery (``input.resample`` in its config, e.g. 0.25) gets native pixels resized by that factor;
``--resample`` overrides it. See ``docs/predict.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from satdifuser.cli import validate
from satdifuser.errors import ConfigError


def _bands(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bands {text!r}: expected e.g. 4,3,2") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``satdifuser predict``."""
    p = argparse.ArgumentParser(
        prog="satdifuser predict",
        description="Predict classes for images (CSV) or class maps for scenes of any size.",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="image files, GeoTIFFs or folders")
    p.add_argument("--model", required=True, type=Path, help="a saved model folder")
    p.add_argument("--out", required=True, type=Path,
                   help="classification: a .csv (or a folder for predictions.csv); "
                   "segmentation: a .tif/.png for one input, else a folder")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows/images per model call (default: 32 images; segmentation: "
                   "by window area, 32 windows up to 64 px, 8 at 128 px, 2 at 256 px, "
                   "1 above)")  # fmt: skip
    p.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="segmentation window overlap in input pixels (default a quarter of the window: "
        "tile_size // 4, or round(tile_size / resample) // 4 for a resampling model)",
    )
    p.add_argument(
        "--blend",
        choices=["triangular", "hann", "uniform"],
        default="triangular",
        help="weight window for overlapping windows (uniform = plain averaging)",
    )
    p.add_argument("--probabilities", action="store_true",
                   help="segmentation: also write <name>_proba.tif (K float32 bands)")  # fmt: skip
    p.add_argument(
        "--footprints",
        type=Path,
        default=None,
        help="classification: .geojson or .csv footprints of georeferenced inputs",
    )
    p.add_argument("--bands", type=_bands, default=None, help="1-based bands to read, e.g. 4,3,2")
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="raw value that maps to 1.0 (e.g. 10000 for reflectance x 10,000), for models that "
        "take [0, 1]; a model whose input spec scales raw pixels itself refuses another value",
    )
    p.add_argument(
        "--resample",
        type=float,
        default=None,
        help="factor applied to input pixels before the model, in (0, 4] (default: the model's "
        "input.resample, the factor it was trained at; 0.25 = 4x coarser)",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="multilabel decision threshold")
    p.add_argument("--device", default=None, help="torch device for the model (default: as loaded)")
    p.add_argument("--threads", type=validate.positive_int, default=None,
                   help="torch CPU threads (default: all)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def load_model(path: Path, device: str | None = None) -> Any:
    """Load a saved model folder (``SatDiFuserModel.from_pretrained``), optionally moving it."""
    from satdifuser.model import SatDiFuserModel

    model = SatDiFuserModel.from_pretrained(path)
    if device is not None and hasattr(model, "to"):
        model = model.to(device) or model
    return model


class _Progress:
    """A tqdm bar counting tiles (or images); a new bar per input."""

    def __init__(self, disable: bool) -> None:
        self.disable, self.last = disable, -1
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None or done < self.last or total != self.bar.total:
            self.close()
            self.bar = tqdm(total=total, unit="tile", disable=self.disable or None, leave=False)
        self.bar.update(done - self.bar.n)
        self.last = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser predict``."""
    args = build_parser().parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be >= 1")
    from satdifuser.predict import predict

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(args.model, args.device)
    if args.resample is not None:
        from satdifuser.predict.protocol import model_resample

        stored, given = model_resample(model), model_resample(model, args.resample)
        if given != stored:
            print(f"note: --resample {given:g} overrides the model's resample {stored:g} (the "
                  "factor it was trained at)", file=sys.stderr)  # fmt: skip
    bar = _Progress(args.no_progress)
    try:
        result = predict(
            model, args.inputs, args.out, batch_size=args.batch_size, overlap=args.overlap,
            blend=args.blend, probabilities=args.probabilities, footprints=args.footprints,
            bands=args.bands, scale=args.scale, threshold=args.threshold, progress=bar,
            resample=args.resample,
        )  # fmt: skip
    finally:
        bar.close()
    s = result.stats
    unit = "windows" if model.task_type == "segmentation" else "images"
    skipped = f", {s.skipped} all-nodata skipped" if s.skipped else ""
    print(f"{s.tiles} {unit}{skipped} in {s.seconds:.1f} s ({s.tiles_per_s:.1f} {unit}/s, "
          f"{s.mpx_per_s:.2f} Mpx/s; model {s.model_seconds:.1f} s)")  # fmt: skip
    for path in result.outputs:
        print(f"wrote {path}")
    return 0
