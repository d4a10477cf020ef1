"""Embed every sample of a dataset into a (Geo)Parquet file, batch by batch.

Columns (one row per image or tile, in dataset order):

============== ============================ ==================================================
column         type                         meaning
============== ============================ ==================================================
id             string                       the sample's ``id`` (path relative to the root)
path           string (nullable)            the file it was read from, when known
label          int64 (nullable)             class id, when the dataset has labels
label_name     string (nullable)            its class name
embedding      fixed_size_list<float, dim>  the vector (see :class:`~satdifuser.embed.Embedder`)
model_identity string                       digest of the embedder (equal = comparable)
row_off ...    int32                        window of a file input: row_off, col_off, height,
                                            width (file inputs only)
crs            string (nullable)            the raster's CRS (georeferenced inputs only)
x_min ... y_max float64                     footprint bounds in ``crs``
lon_min ...    float64                      footprint bounds in degrees (WGS84), lon/lat
geometry       WKB polygon (GeoParquet)     footprint, in the file's CRS (``geo`` metadata)
============== ============================ ==================================================

When the rasters of one export use several CRSs, ``geometry`` is reprojected to EPSG:4326
(edges densified) and each row keeps its own ``crs`` and native bounds. The schema metadata
``satdifuser`` holds the embedder description (representation, dim, pooling, backbone and its
weights id, feature spec, feature_info, model folder), the input and the package version.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from satdifuser import __version__
from satdifuser.embed.embedder import Embedder
from satdifuser.embed.files import ImageFiles
from satdifuser.embed.footprints import Footprint, footprint
from satdifuser.embed.writer import (
    METADATA_KEY,
    EmbeddingWriter,
    geo_metadata,
    import_pyarrow,
    import_shapely,
)
from satdifuser.errors import InputError

WINDOW_COLUMNS = ("row_off", "col_off", "height", "width")


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_embeddings` wrote."""

    path: Path
    rows: int
    dim: int
    seconds: float
    geo_crs: str | None

    @property
    def images_per_second(self) -> float:
        """Throughput over the whole export."""
        return self.rows / self.seconds if self.seconds else 0.0


def _base(dataset: Dataset[Any], index: int) -> tuple[Any, int]:
    """The innermost dataset behind ``Subset`` wrappers and the index in it."""
    while isinstance(dataset, Subset):
        index = int(dataset.indices[index])
        dataset = dataset.dataset
    return dataset, index


def source_path(dataset: Dataset[Any], index: int) -> Path | None:
    """The file sample ``index`` is read from, when the dataset lists its files."""
    base, j = _base(dataset, index)
    for attr in ("files", "images"):
        files = getattr(base, attr, None)
        if isinstance(files, Sequence) and len(files) == len(base):  # type: ignore[arg-type]
            item = files[j]
            if isinstance(item, Path):  # already joined with the root (GeoTiffFolder)
                return item.absolute()
            folder = getattr(base, "image_dir", None)  # EuroSAT: names relative to image_dir
            if not isinstance(folder, Path):
                folder = Path(getattr(base, "root", "."))
            return (folder / str(item)).absolute()
    return None


def _window(dataset: Dataset[Any], index: int) -> tuple[int, int, int, int] | None:
    base, j = _base(dataset, index)
    return base.windows[j] if isinstance(base, ImageFiles) else None


def _class_names(dataset: Dataset[Any]) -> list[str] | None:
    base, _ = _base(dataset, 0)
    names = getattr(base, "classes", None)
    return [str(c) for c in names] if isinstance(names, Sequence) else None


def _collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    shapes = {tuple(s["image"].shape) for s in samples}
    if len(shapes) > 1:
        raise InputError(
            f"images of one batch differ in size ({sorted(shapes)[:2]}); set an image size "
            "(--image-size) or --batch-size 1"
        )
    out: dict[str, Any] = {
        "image": torch.stack([s["image"] for s in samples]),
        "id": [str(s.get("id", "")) for s in samples],
    }
    if all("meta" in s for s in samples):
        out["meta"] = torch.stack([torch.as_tensor(s["meta"]) for s in samples])
    if all("label" in s for s in samples):
        out["label"] = [torch.as_tensor(s["label"]) for s in samples]
    return out


class _Geo:
    """Footprints of every row, decided before writing (the CRS of the column is fixed)."""

    def __init__(self, prints: list[Footprint | None]) -> None:
        shapely = import_shapely()
        self.prints = prints
        crss = sorted({p.crs for p in prints if p is not None})
        self.crs = crss[0] if len(crss) == 1 else "EPSG:4326"
        self.geoms: list[Any] = []
        for p in prints:
            if p is None:
                self.geoms.append(None)
                continue
            poly = shapely.Polygon(p.corners)
            if p.crs != self.crs:
                poly = _to_crs(shapely, poly, p.crs, self.crs)
            self.geoms.append(poly)
        valid = [g for g in self.geoms if g is not None]
        self.bbox = tuple(float(v) for v in shapely.total_bounds(valid)) if valid else None

    def columns(self, start: int, stop: int) -> dict[str, Any]:
        import shapely

        prints = self.prints[start:stop]
        nan4 = (math.nan,) * 4
        native = [p.bounds if p else nan4 for p in prints]
        lonlat = [(p.bounds_lonlat if p and p.bounds_lonlat else nan4) for p in prints]
        cols: dict[str, Any] = {"crs": [p.crs if p else None for p in prints]}
        for k, name in enumerate(("x_min", "y_min", "x_max", "y_max")):
            cols[name] = [b[k] for b in native]
        for k, name in enumerate(("lon_min", "lat_min", "lon_max", "lat_max")):
            cols[name] = [b[k] for b in lonlat]
        cols["geometry"] = [
            None if g is None else shapely.to_wkb(g) for g in self.geoms[start:stop]
        ]
        return cols


def _to_crs(shapely: Any, poly: Any, src: str, dst: str) -> Any:
    from pyproj import Transformer

    tr = Transformer.from_crs(src, dst, always_xy=True)
    dense = shapely.segmentize(poly, max_segment_length=poly.length / 32 or 1.0)
    return shapely.transform(dense, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _schema(
    pa: Any, dim: int, labels: str | None, files: bool, geo: _Geo | None, meta: dict[str, Any]
) -> Any:
    fields = [pa.field("id", pa.string()), pa.field("path", pa.string())]
    if labels == "scalar":
        fields += [pa.field("label", pa.int64()), pa.field("label_name", pa.string())]
    elif labels == "vector":
        fields += [pa.field("label", pa.list_(pa.int64()))]
    fields += [
        pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("model_identity", pa.string()),
    ]
    if files:
        fields += [pa.field(n, pa.int32()) for n in WINDOW_COLUMNS]
    metadata = {METADATA_KEY: json.dumps(meta).encode()}
    if geo is not None:
        fields += [pa.field("crs", pa.string())]
        fields += [
            pa.field(n, pa.float64())
            for n in (
                "x_min",
                "y_min",
                "x_max",
                "y_max",
                "lon_min",
                "lat_min",
                "lon_max",
                "lat_max",
            )
        ]
        fields += [pa.field("geometry", pa.binary())]
        metadata[b"geo"] = geo_metadata(geo.crs, geo.bbox)  # type: ignore[arg-type]
    return pa.schema(fields, metadata=metadata)


def export_embeddings(
    dataset: Dataset[Any],
    embedder: Embedder,
    out: str | Path,
    *,
    batch_size: int = 16,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    description: dict[str, Any] | None = None,
) -> ExportReport:
    """Embed every sample of ``dataset`` and write them to ``out`` (Parquet or GeoParquet).

    Args:
        dataset: Map-style dataset of sample dicts (``image`` in [0, 1], optional ``meta``,
            ``label``, ``id``), e.g. :class:`~satdifuser.data.EuroSAT`,
            :class:`~satdifuser.data.geotiff_folder.GeoTiffFolder` or
            :class:`~satdifuser.embed.ImageFiles`; a ``Subset`` of one works too.
        embedder: The :class:`~satdifuser.embed.Embedder`.
        out: Output path; written under a temporary name and renamed at the end, so an error
            leaves no partial file (and an existing ``out`` untouched).
        batch_size: Images per forward pass and per Parquet row group.
        num_workers: DataLoader workers reading images.
        device: Where the embedder runs.
        progress: Show a tqdm bar (images per second).
        description: Facts about the input (dataset, root, split) for the schema metadata.

    Returns:
        An :class:`ExportReport`.

    Raises:
        DependencyNotFoundError: pyarrow (or, for GeoTIFFs, shapely/pyproj/rasterio) missing.
        InputError: the dataset is empty, or images of one batch differ in size.
    """
    from tqdm.auto import tqdm

    pa = import_pyarrow()
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise InputError("the input holds no images; nothing to embed")
    paths = [source_path(dataset, i) for i in range(n)]
    windows = [_window(dataset, i) for i in range(n)]
    files = windows[0] is not None
    prints = [
        footprint(p, w) if p is not None else None for p, w in zip(paths, windows, strict=True)
    ]
    geo = _Geo(prints) if any(p is not None for p in prints) else None
    names = _class_names(dataset)
    meta = {
        "satdifuser_version": __version__,
        "model_identity": embedder.identity,
        "embedding": embedder.info,
        "input": {**(description or {}), "rows": n, "class_names": names},
        "geometry_crs": None if geo is None else geo.crs,
    }
    embedder = embedder.to(device)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate
    )
    start = time.perf_counter()
    writer: EmbeddingWriter | None = None
    bar = tqdm(total=n, unit="img", desc="embed", disable=not progress, dynamic_ncols=True)
    done = 0
    try:
        for batch in loader:
            meta_t = batch.get("meta")
            vec = embedder(batch["image"].to(device), None if meta_t is None else meta_t.to(device))
            b = vec.shape[0]
            labels = batch.get("label")
            kind = None if labels is None else ("scalar" if labels[0].ndim == 0 else "vector")
            if writer is None:
                schema = _schema(pa, embedder.dim, kind, files, geo, meta)
                writer = EmbeddingWriter(out, schema)
            cols: dict[str, Any] = {
                "id": batch["id"],
                "path": [None if p is None else str(p) for p in paths[done : done + b]],
            }
            if kind == "scalar":
                ids = [int(t) for t in labels]  # type: ignore[union-attr]
                cols["label"] = ids
                cols["label_name"] = [
                    names[i] if names and 0 <= i < len(names) else None for i in ids
                ]
            elif kind == "vector":
                cols["label"] = [t.long().tolist() for t in labels]  # type: ignore[union-attr]
            flat = pa.array(vec.float().numpy().reshape(-1))
            cols["embedding"] = pa.FixedSizeListArray.from_arrays(flat, embedder.dim)
            cols["model_identity"] = [embedder.identity] * b
            if files:
                for k, name in enumerate(WINDOW_COLUMNS):
                    cols[name] = [w[k] for w in windows[done : done + b]]  # type: ignore[index]
            if geo is not None:
                cols.update(geo.columns(done, done + b))
            writer.write(
                pa.table(
                    [
                        pa.array(cols[f.name], type=f.type)
                        if not isinstance(cols[f.name], pa.Array)
                        else cols[f.name]
                        for f in writer.schema
                    ],
                    schema=writer.schema,
                )
            )
            done += b
            bar.update(b)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    assert writer is not None
    path = writer.close()
    return ExportReport(
        path, done, embedder.dim, time.perf_counter() - start, None if geo is None else geo.crs
    )


__all__ = ["WINDOW_COLUMNS", "ExportReport", "export_embeddings", "source_path"]
