"""satdifuser.data: datasets, data modules, tiling and ``data inspect``.

Every sample is a dict like TorchGeo's: ``image`` (C, H, W) float32 in [0, 1], ``label`` (int64
scalar) or ``mask`` (H, W) int64 with an ignore index, ``meta`` (7,) float32 DiffusionSat
metadata (lon, lat, GSD m, cloud cover, year, month, day; NaN where unknown) and ``id``.

Names are imported lazily (PEP 562), so ``import satdifuser.data`` stays cheap and does not pull
in Lightning or h5py until a class is used. GEO-Bench names resolve when their modules exist.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "DUBAI_CLASSES": "dubai_aerial",
    "DUBAI_COLORS": "dubai_aerial",
    "DubaiAerial": "dubai_aerial",
    "DubaiAerialDataModule": "mask_datamodule",
    "EuroSAT": "eurosat",
    "EuroSATDataModule": "datamodule",
    "FolderDataModule": "datamodule",
    "GEOBENCH_TASKS": "geobench_tasks",
    "GeoBench": "geobench",
    "GeoBenchDataModule": "geobench_datamodule",
    "GeoTiffFolder": "geotiff_folder",
    "GeoTiffFolderDataModule": "datamodule",
    "META_FIELDS": "meta",
    "MaskFolder": "mask_folder",
    "MaskFolderDataModule": "mask_datamodule",
    "RandomFlipRotate": "transforms",
    "Resize": "transforms",
    "TensorDataModule": "tensor_images",
    "TensorImageDataset": "tensor_images",
    "detect_format": "inspect",
    "detect_geobench": "geobench",
    "inspect_path": "inspect",
    "make_meta": "meta",
    "resolve_data_root": "roots",
    "seeded_loader": "loaders",
    "sliding_window_predict": "tiling",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'satdifuser.data' has no attribute {name!r}")
    try:
        mod = importlib.import_module(f"satdifuser.data.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"satdifuser.data.{module}":
            raise AttributeError(
                f"satdifuser.data.{name} is not available in this version (no module {module})"
            ) from None
        raise
    value = getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "DUBAI_CLASSES",
    "DUBAI_COLORS",
    "GEOBENCH_TASKS",
    "META_FIELDS",
    "DubaiAerial",
    "DubaiAerialDataModule",
    "EuroSAT",
    "EuroSATDataModule",
    "FolderDataModule",
    "GeoBench",
    "GeoBenchDataModule",
    "GeoTiffFolder",
    "GeoTiffFolderDataModule",
    "MaskFolder",
    "MaskFolderDataModule",
    "RandomFlipRotate",
    "Resize",
    "TensorDataModule",
    "TensorImageDataset",
    "detect_format",
    "detect_geobench",
    "inspect_path",
    "make_meta",
    "resolve_data_root",
    "seeded_loader",
    "sliding_window_predict",
]
