"""``satdifuser data inspect``: detect a dataset folder's format, summarise it, draw samples.

Formats (tried in this order): a GEO-Bench v1 task folder (via the GEO-Bench reader's
``detect_geobench``), image/mask folders (``images/`` + ``masks/``, or groups of them such as
``tile_N/``; GeoTIFF pairs when the images are ``.tif``), class folders of JPEG/PNG images
(EuroSAT layout) and class folders of GeoTIFFs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satdifuser._typing import PathLike, Sample
from satdifuser.data.geotiff_io import TIFF_SUFFIXES
from satdifuser.data.image_io import IMAGE_SUFFIXES
from satdifuser.data.splits import SPLIT_DIRS
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

FORMATS: tuple[str, ...] = ("geobench", "mask_folder", "geotiff_pairs", "eurosat", "geotiff_folder")
"""Format names :func:`detect_format` returns."""


@dataclass
class InspectReport:
    """What ``data inspect`` found: a JSON-able summary plus the samples to draw.

    ``summary`` keys are fixed snake_case names (``task_type``, ``num_classes``, ``classes``,
    ``bands``, ``image_sizes`` ...); values carry the data, never the keys. ``classes`` lists every
    class, those with no sample or pixel included.
    """

    path: str
    format: str
    summary: dict[str, Any]
    classes: list[str] = field(default_factory=list)
    colors: list[str] | None = None
    ignore_index: int = 255
    samples: list[Sample] = field(default_factory=list, repr=False)

    def text(self) -> str:
        """The summary as aligned ``key: value`` lines."""
        lines = [f"{'path':<14} {self.path}", f"{'format':<14} {self.format}"]
        for key, value in self.summary.items():
            if key == "warnings":
                lines += [f"{'warning':<14} {w}" for w in value]
                continue
            if isinstance(value, dict):
                shown = ", ".join(f"{k} {v}" for k, v in value.items())
            elif isinstance(value, list | tuple):
                shown = ", ".join(map(str, value))
            else:
                shown = str(value)
            lines.append(f"{key.replace('_', ' '):<14} {shown}")
        return "\n".join(lines)


def _geobench_detector() -> Any:
    try:
        from satdifuser.data.geobench import detect_geobench
    except ImportError:  # the GEO-Bench reader is optional for this module
        return None
    return detect_geobench


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]


def _class_folder_kind(path: Path) -> str | None:
    """``eurosat`` / ``geotiff_folder`` when subfolders hold images, else None."""
    n_img = n_tif = 0
    for d in (p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in d.iterdir():
            suf = f.suffix.lower()
            if suf in IMAGE_SUFFIXES:
                n_img += 1
                break
            if suf in TIFF_SUFFIXES:
                n_tif += 1
                break
    if n_img == 0 and n_tif == 0:
        return None
    return "eurosat" if n_img >= n_tif else "geotiff_folder"


def _pair_kind(images: Path) -> str:
    return "geotiff_pairs" if _files(images, TIFF_SUFFIXES) else "mask_folder"


def _detect(p: Path) -> str | None:
    detect = _geobench_detector()
    if detect is not None and detect(p):
        return "geobench"
    if (p / "images").is_dir() and (p / "masks").is_dir():
        return _pair_kind(p / "images")
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if any((d / "images").is_dir() and (d / "masks").is_dir() for d in subdirs):
        return "mask_folder"
    kind = _class_folder_kind(p)
    if kind is not None:
        return kind
    split_names = {n for names in SPLIT_DIRS.values() for n in names}
    if subdirs and all(d.name.lower() in split_names for d in subdirs):  # train/<Class>/...
        kind = _class_folder_kind(subdirs[0])
        if kind is not None:
            return kind
    if (p / "2750").is_dir() and _class_folder_kind(p / "2750") == "eurosat":
        return "eurosat"  # the official EuroSAT.zip unpacked here
    return None


def detect_format(path: PathLike) -> str:
    """Name of the dataset format of folder ``path`` (one of :data:`FORMATS`).

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        DataFormatError: ``path`` is a file, or no known layout matches (the message lists what
            was found, datasets in its subfolders, and the layouts understood).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetNotFoundError(f"{p} does not exist; pass the folder of a dataset")
    if not p.is_dir():
        raise DataFormatError(f"{p} is a file; data inspect takes a dataset folder")
    kind = _detect(p)
    if kind is not None:
        return kind
    subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    found = [f"{d.name} ({k})" for d in subdirs[:50] if (k := _detect(d)) is not None]
    hint = f"; it holds datasets: {', '.join(found)}, inspect one of them" if found else ""
    raise DataFormatError(
        f"cannot tell the dataset layout of {p} ({len(subdirs)} subfolders, "
        f"{sum(1 for f in p.iterdir() if f.is_file())} files){hint}; understood: GEO-Bench task "
        "folder (task_specs.pkl + *.hdf5), images/ + masks/ (or <group>/images + <group>/masks), "
        "<Class>/*.jpg|png (EuroSAT), <Class>/*.tif"
    )


def inspect_path(
    path: PathLike, samples: int = 16, seed: int = 0, format: str = "auto"
) -> InspectReport:
    """Detect the format of ``path``, summarise it and pick ``samples`` samples to draw.

    Args:
        path: Dataset folder.
        samples: Number of samples to read (summary statistics are over these).
        seed: Seed of the sample choice.
        format: ``auto`` or one of :data:`FORMATS`.

    Raises:
        ConfigError: bad ``samples`` or ``format``.
        DatasetNotFoundError, DataFormatError: see :func:`detect_format` and the datasets.
    """
    from satdifuser.data import inspect_formats as fm

    if not 1 <= samples <= 256:
        raise ConfigError(f"samples={samples} must be between 1 and 256")
    p = Path(path).expanduser()
    fmt = detect_format(p) if format == "auto" else format
    handlers = {
        "geobench": fm.inspect_geobench,
        "mask_folder": fm.inspect_mask_folder,
        "geotiff_pairs": fm.inspect_geotiff,
        "geotiff_folder": fm.inspect_geotiff,
        "eurosat": fm.inspect_eurosat,
    }
    if fmt not in handlers:
        raise ConfigError(f"format={format!r} is unknown; expected auto or one of {list(FORMATS)}")
    return handlers[fmt](p, samples, seed)


def write_grid(report: InspectReport, out: PathLike) -> Path:
    """Draw ``report.samples`` as a PNG grid (masks overlaid) at ``out``, written atomically.

    Raises:
        DataFormatError: the report has no samples to draw.
    """
    from satdifuser.data.plotting import sample_grid, save_figure

    if not report.samples:
        raise DataFormatError(f"{report.path}: no samples to draw (see the summary above)")
    fig = sample_grid(
        report.samples,
        report.classes,
        report.colors,
        report.ignore_index,
        title=f"{Path(report.path).name} ({report.format}, {len(report.samples)} samples)",
    )
    return save_figure(fig, out)


__all__ = ["FORMATS", "InspectReport", "detect_format", "inspect_path", "write_grid"]
