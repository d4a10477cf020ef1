"""Classification (single- and multi-label) of image files and GeoTIFFs into one CSV.

Each image is read whole (classification inputs are patches) and passed at its own size, resized
by the model's ``resample`` factor first when it records one (a model trained on 0.25x imagery
sees 0.25x images); images of equal size are batched. The CSV has one row per image in input
order: ``path``, ``predicted`` (the arg-max class, or for multi-label models every class with
probability >= ``threshold`` joined by ``;``) and ``prob_<class>`` for each class. For
georeferenced inputs a footprint file can be written too: GeoJSON (``.geojson``/``.json``, WGS84
polygons, RFC 7946) or CSV (``.csv``, WKT polygons in WGS84).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from satdifuser._atomic_io import atomic_write_text
from satdifuser.errors import ConfigError, InputShapeError
from satdifuser.model.resample import resampled_size, resize_images
from satdifuser.predict.geo import footprint_lonlat
from satdifuser.predict.prepare import make_preparer
from satdifuser.predict.protocol import model_resample, predict_at_model_scale
from satdifuser.predict.segmentation import model_device
from satdifuser.predict.sources import GeoTiffSource, open_source
from satdifuser.predict.stats import PredictStats, ProgressFn

FOOTPRINT_SUFFIXES: tuple[str, ...] = (".geojson", ".json", ".csv")


def _write_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _csv_text(rows: list[list[Any]]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _predicted(p: np.ndarray, names: Sequence[str], multilabel: bool, threshold: float) -> str:
    if multilabel:
        return ";".join(n for n, v in zip(names, p, strict=True) if v >= threshold)
    return names[int(p.argmax())]


def _footprint_text(path: Path, feats: list[dict[str, Any]]) -> str:
    if path.suffix.lower() == ".csv":
        rows: list[list[Any]] = [["path", "predicted", "crs", "footprint_wkt"]]
        for f in feats:
            ring = ", ".join(f"{x} {y}" for x, y in f["geometry"]["coordinates"][0])
            p = f["properties"]
            rows.append([p["path"], p["predicted"], p["crs"], f"POLYGON (({ring}))"])
        return _csv_text(rows)
    return json.dumps({"type": "FeatureCollection", "features": feats}, indent=1) + "\n"


def predict_classification(
    model: Any,
    inputs: Sequence[Path],
    csv_path: Path,
    *,
    footprints_path: Path | None = None,
    batch_size: int = 32,
    bands: list[int] | None = None,
    scale: float | None = None,
    threshold: float = 0.5,
    progress: ProgressFn | None = None,
    resample: float | None = None,
) -> PredictStats:
    """Classify ``inputs`` and write the CSV (and the footprints of georeferenced inputs).

    Args:
        model: A classification or multilabel model.
        inputs: Image files (PNG, JPEG, GeoTIFF, ...), in output order.
        csv_path: Output CSV.
        footprints_path: Optional ``.geojson``/``.json``/``.csv`` footprint file.
        batch_size: Images per ``predict_proba`` call.
        bands: 1-based bands to read (default: all but alpha).
        scale: Raw value that maps to 1.0 (see :mod:`satdifuser.predict.prepare`).
        threshold: Multi-label decision threshold.
        progress: Called with ``(images done, images total)``.
        resample: Resize factor of the images before the model, overriding ``model.resample``
            (default: the model's, else 1.0).

    Raises:
        ConfigError: Bad footprints suffix, ``batch_size`` or ``resample``.
        InputError: An image's band count or scaling does not fit the model.
        InputShapeError: The model returns probabilities of the wrong shape.
    """
    t_start = time.perf_counter()
    if footprints_path is not None and footprints_path.suffix.lower() not in FOOTPRINT_SUFFIXES:
        raise ConfigError(
            f"footprints file {footprints_path} must end in {', '.join(FOOTPRINT_SUFFIXES)}"
        )
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be >= 1")
    factor = model_resample(model, resample)
    names = list(model.class_names)
    multilabel = model.task_type == "multilabel"
    prepare = make_preparer(model, scale)
    device = model_device(model)
    stats = PredictStats(tiles=len(inputs))
    probs: list[np.ndarray | None] = [None] * len(inputs)
    shapes: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}
    feats: dict[int, dict[str, Any]] = {}

    def flush(shape: tuple[int, ...]) -> None:
        group = shapes.pop(shape)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = predict_at_model_scale(model, torch.stack([t for _, t in group]).to(device))
        out = out.float().cpu()
        stats.model_seconds += time.perf_counter() - t0
        if tuple(out.shape) != (len(group), len(names)):
            raise InputShapeError(
                f"model.predict_proba returned shape {tuple(out.shape)} for {len(group)} "
                f"images; expected ({len(group)}, {len(names)}) for a {model.task_type} model"
            )
        for (i, _), p in zip(group, out.numpy(), strict=True):
            probs[i] = p

    for i, path in enumerate(inputs):
        with open_source(path, bands) as source:
            raw, mask = source.read(0, 0, source.height, source.width)
            if mask is not None:
                raw = np.where(mask, raw, np.zeros((), dtype=raw.dtype))
            tensor = prepare(raw, source.name)
            if factor != 1.0:
                size = resampled_size(source.height, source.width, factor)
                tensor = resize_images(tensor[None], size)[0]
            stats.pixels += source.height * source.width
            if footprints_path is not None and isinstance(source, GeoTiffSource):
                if source.georeferenced and (ring := footprint_lonlat(source.dataset)):
                    feats[i] = {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "properties": {"path": str(path), "crs": str(source.dataset.crs)},
                    }
        shapes.setdefault(tuple(tensor.shape), []).append((i, tensor))
        if len(shapes[tuple(tensor.shape)]) >= batch_size:
            flush(tuple(tensor.shape))
            if progress is not None:
                progress(sum(p is not None for p in probs), len(inputs))
    for shape in list(shapes):
        flush(shape)
    if progress is not None:
        progress(len(inputs), len(inputs))
    rows: list[list[Any]] = [["path", "predicted", *(f"prob_{n}" for n in names)]]
    done = cast(list[np.ndarray], probs)  # every index was filled by a flush above
    for path, p in zip(inputs, done, strict=True):
        rows.append([str(path), _predicted(p, names, multilabel, threshold),
                     *(f"{v:.6f}" for v in p)])  # fmt: skip
    _write_atomic(csv_path, _csv_text(rows))
    if footprints_path is not None:
        for i, f in feats.items():
            p = done[i]
            f["properties"]["predicted"] = _predicted(p, names, multilabel, threshold)
            f["properties"]["probabilities"] = {
                n: round(float(v), 6) for n, v in zip(names, p, strict=True)
            }
        _write_atomic(footprints_path, _footprint_text(footprints_path, list(feats.values())))
    stats.seconds = time.perf_counter() - t_start
    return stats


__all__ = ["FOOTPRINT_SUFFIXES", "predict_classification"]
