"""``predict(model, inputs, out)``: expand inputs, pick outputs, run the model's task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satdifuser._typing import PathLike
from satdifuser.data.image_io import IMAGE_SUFFIXES
from satdifuser.errors import ConfigError, DatasetNotFoundError
from satdifuser.predict.blending import BlendMode
from satdifuser.predict.classification import predict_classification
from satdifuser.predict.geo import GEOTIFF_SUFFIXES
from satdifuser.predict.protocol import check_model, model_resample
from satdifuser.predict.segmentation import predict_segmentation
from satdifuser.predict.sources import is_geotiff
from satdifuser.predict.stats import PredictStats, ProgressFn

INPUT_SUFFIXES: tuple[str, ...] = (*IMAGE_SUFFIXES, *GEOTIFF_SUFFIXES)
SEGMENTATION_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png")


@dataclass
class PredictResult:
    """The files written and the run's counters."""

    outputs: list[Path] = field(default_factory=list)
    stats: PredictStats = field(default_factory=PredictStats)


def expand_inputs(inputs: Sequence[PathLike]) -> list[Path]:
    """Files as given, folders as their image files (recursive, sorted); order kept.

    Raises:
        DatasetNotFoundError: A path does not exist, or nothing readable was found.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )  # fmt: skip
            if not found:
                raise DatasetNotFoundError(
                    f"folder {p} holds no image files ({', '.join(INPUT_SUFFIXES)}); "
                    "point to the images or the folder that holds them"
                )
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise DatasetNotFoundError(f"input {p} does not exist; check the path")
    if not files:
        raise DatasetNotFoundError("no inputs given; pass image files, GeoTIFFs or folders")
    return files


def segmentation_outputs(
    files: Sequence[Path], out: Path, probabilities: bool
) -> list[tuple[Path, Path | None]]:
    """(class map, probabilities) paths per input.

    One input and ``out`` ending in ``.tif``/``.png``: that file. Otherwise ``out`` is a folder
    and each input gets ``<stem>.tif`` (GeoTIFF input) or ``<stem>.png`` (plain image);
    probabilities go to ``<stem>_proba.tif`` beside it.

    Raises:
        ConfigError: Several inputs but ``out`` names a file, or two inputs share a stem.
    """
    if out.suffix.lower() in SEGMENTATION_SUFFIXES:
        if len(files) != 1:
            raise ConfigError(
                f"--out {out} names one file but there are {len(files)} inputs; "
                "give a folder for several inputs"
            )
        targets = [out]
    else:
        targets = [out / f"{f.stem}{'.tif' if is_geotiff(f) else '.png'}" for f in files]
        seen: dict[Path, Path] = {}
        for f, t in zip(files, targets, strict=True):
            if t in seen:
                raise ConfigError(
                    f"inputs {seen[t]} and {f} would both be written to {t}; "
                    "predict them into separate --out folders"
                )
            seen[t] = f
    return [(t, t.with_name(f"{t.stem}_proba.tif") if probabilities else None) for t in targets]


def predict(
    model: Any,
    inputs: Sequence[PathLike],
    out: PathLike,
    *,
    batch_size: int | None = None,
    overlap: int | None = None,
    blend: BlendMode = "triangular",
    probabilities: bool = False,
    footprints: PathLike | None = None,
    bands: list[int] | None = None,
    scale: float | None = None,
    threshold: float = 0.5,
    progress: ProgressFn | None = None,
    resample: float | None = None,
) -> PredictResult:
    """Apply ``model`` to image files, folders and GeoTIFFs.

    Classification and multilabel models write one CSV (``out`` ending in ``.csv``, else
    ``out/predictions.csv``) and optionally the footprints of georeferenced inputs. Segmentation
    models write one class map per input (see :func:`segmentation_outputs`), blended from
    overlapping windows; scenes of any size are streamed in strips.

    Args:
        model: Any object with ``task_type``, ``class_names``, ``in_channels``, ``tile_size``,
            ``predict_proba`` (and optionally ``prepare_raster``).
        inputs: Files and folders.
        out: Output file or folder.
        batch_size: Windows or images per model call (default: 32 images; segmentation windows
            by the window area, :func:`~satdifuser.predict.segmentation.auto_batch_size`).
        overlap: Segmentation window overlap in native pixels (default a quarter of the window,
            ``tile_size // 4`` without resampling).
        blend: Segmentation weight window.
        probabilities: Segmentation: also write per-class probabilities.
        footprints: Classification: ``.geojson`` or ``.csv`` footprint file.
        bands: 1-based bands to read.
        scale: Raw value that maps to 1.0 (for uint16 and other non-8-bit input).
        threshold: Multilabel decision threshold.
        progress: Called with ``(done, total)`` per input (windows or images).
        resample: Factor from native pixels to the model's, overriding ``model.resample`` (the
            factor it was trained at; absent: 1.0). Classification resizes each image by it;
            segmentation reads native windows of ``round(tile_size / resample)`` pixels and
            writes maps on the input's grid.

    Raises:
        ConfigError: Options that do not fit the model's task or the outputs, or a
            ``resample`` out of (0, 4].
        DatasetNotFoundError: Missing inputs.
        InputError: Band count or scaling the model was not trained for.
    """
    m = check_model(model)
    model_resample(m, resample)  # a bad factor fails before anything is read
    files = expand_inputs(inputs)
    out = Path(out)
    result = PredictResult()
    if m.task_type in {"classification", "multilabel"}:
        if probabilities:
            raise ConfigError("probabilities are always in the classification CSV; drop the flag")
        csv_path = out if out.suffix.lower() == ".csv" else out / "predictions.csv"
        fp = Path(footprints) if footprints is not None else None
        result.stats = predict_classification(
            m, files, csv_path, footprints_path=fp, batch_size=batch_size or 32, bands=bands,
            scale=scale, threshold=threshold, progress=progress, resample=resample,
        )  # fmt: skip
        result.outputs = [csv_path] + ([fp] if fp is not None else [])
        return result
    if footprints is not None:
        raise ConfigError(
            "footprints are written for classification; a segmentation GeoTIFF keeps the "
            "input's georeference itself"
        )
    for f, (target, proba) in zip(files, segmentation_outputs(files, out, probabilities),
                                  strict=True):  # fmt: skip
        if proba is not None and target.suffix.lower() == ".png":
            target = target.with_suffix(".tif")
        stats = predict_segmentation(
            m, f, target, probabilities_path=proba, overlap=overlap, batch_size=batch_size,
            blend=blend, bands=bands, scale=scale, progress=progress, resample=resample,
        )  # fmt: skip
        result.stats.add(stats)
        result.outputs += [target] + ([proba] if proba is not None else [])
    return result


__all__ = ["INPUT_SUFFIXES", "PredictResult", "expand_inputs", "predict", "segmentation_outputs"]
