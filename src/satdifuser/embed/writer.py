"""Streaming, atomic (Geo)Parquet output of embeddings.

Rows arrive batch by batch and are written as Parquet row groups with pyarrow's
``ParquetWriter``, so memory stays bounded by one batch. The file is written under a temporary
name next to the target and renamed into place by :meth:`EmbeddingWriter.close`; on an error
(:meth:`EmbeddingWriter.abort`, or leaving the ``with`` block by an exception) the temporary file
is removed and an existing target is left untouched.

GeoParquet: when a ``geo`` description is given, the ``geometry`` column holds WKB polygons and
the schema carries the GeoParquet 1.1 ``geo`` metadata (encoding, geometry types, bbox and the
CRS as PROJJSON from pyproj), which ``geopandas.read_parquet`` turns back into a
``GeoDataFrame`` with that CRS.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from satdifuser._atomic_io import PendingFile
from satdifuser.errors import DependencyNotFoundError

PIP_GEO = 'pip install "satdifuser[geo]"'
METADATA_KEY = b"satdifuser"
"""Schema-metadata key of the JSON description (embedder, inputs, satdifuser version)."""


def import_pyarrow() -> ModuleType:
    """``pyarrow`` (with ``pyarrow.parquet``), or the error that names the extra.

    Raises:
        DependencyNotFoundError: pyarrow is not installed.
    """
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DependencyNotFoundError(
            f"writing embeddings as Parquet needs pyarrow (the geo extra); run: {PIP_GEO}"
        ) from None
    return pyarrow


def import_shapely() -> ModuleType:
    """``shapely`` and ``pyproj`` for footprints, or the error that names the extra.

    Raises:
        DependencyNotFoundError: shapely or pyproj is not installed.
    """
    try:
        import pyproj  # noqa: F401
        import shapely
    except ImportError:
        raise DependencyNotFoundError(
            f"GeoParquet footprints need shapely and pyproj (the geo extra); run: {PIP_GEO}"
        ) from None
    return shapely


def geo_metadata(crs: str, bbox: tuple[float, float, float, float] | None) -> bytes:
    """The GeoParquet 1.1 ``geo`` schema metadata of one WKB polygon column ``geometry``."""
    import pyproj

    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": ["Polygon"],
        "crs": pyproj.CRS.from_user_input(crs).to_json_dict(),
    }
    if bbox is not None:
        column["bbox"] = list(bbox)
    meta = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return json.dumps(meta).encode()


class EmbeddingWriter:
    """Write tables of one schema as row groups of ``out``, atomically.

    Args:
        out: The final ``.parquet`` path (its folder is created).
        schema: The ``pyarrow.Schema`` of every batch, metadata included.

    Example::

        with EmbeddingWriter(out, schema) as w:
            for table in tables:
                w.write(table)  # renamed into place when the block ends without an error
    """

    def __init__(self, out: str | Path, schema: Any) -> None:
        pa = import_pyarrow()
        self.out = Path(out)
        self._pending = PendingFile(self.out)  # a unique temporary sibling; parents created
        self.tmp = self._pending.tmp
        self.schema = schema
        self.rows = 0
        try:
            self._writer = pa.parquet.ParquetWriter(str(self.tmp), schema)
        except BaseException:
            self._pending.abort()
            raise

    def write(self, table: Any) -> None:
        """Append ``table`` (same schema) as one row group."""
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def close(self) -> Path:
        """Finish the file and rename it to ``out`` (fsynced); returns ``out``.

        On an error the temporary file is removed and ``out`` is left as it was.
        """
        try:
            self._writer.close()
        except BaseException:
            self._pending.abort()
            raise
        return self._pending.commit()

    def abort(self) -> None:
        """Drop the partial file (``out`` is left as it was)."""
        try:
            self._writer.close()
        finally:
            self._pending.abort()

    def __enter__(self) -> EmbeddingWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


__all__ = [
    "METADATA_KEY",
    "PIP_GEO",
    "EmbeddingWriter",
    "geo_metadata",
    "import_pyarrow",
    "import_shapely",
]
