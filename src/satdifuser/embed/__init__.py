"""Embedding export: one pooled vector per image or tile, written as (Geo)Parquet.

Example:
    >>> from satdifuser.features import FeatureExtractor
    >>> from satdifuser.embed import Embedder, export_embeddings
    >>> emb = Embedder.from_extractor(FeatureExtractor("tiny-pixel"), normalize=True)
    >>> export_embeddings(dataset, emb, "emb.parquet")  # doctest: +SKIP

See ``docs/embeddings.md`` for the columns, the schema metadata and reading the file back with
pandas or geopandas.
"""

from __future__ import annotations

from satdifuser.embed.embedder import Embedder, Representation
from satdifuser.embed.export import WINDOW_COLUMNS, ExportReport, export_embeddings, source_path
from satdifuser.embed.files import IMAGE_SUFFIXES, ImageFiles, collect_files, tile_windows
from satdifuser.embed.footprints import Footprint, footprint
from satdifuser.embed.writer import METADATA_KEY, EmbeddingWriter

__all__ = [
    "IMAGE_SUFFIXES",
    "METADATA_KEY",
    "WINDOW_COLUMNS",
    "Embedder",
    "EmbeddingWriter",
    "ExportReport",
    "Footprint",
    "ImageFiles",
    "Representation",
    "collect_files",
    "export_embeddings",
    "footprint",
    "source_path",
    "tile_windows",
]
