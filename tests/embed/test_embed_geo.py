"""GeoTIFF inputs give GeoParquet: geopandas reads back the CRS and each raster's footprint."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from fixtures.geotiff import make as gtfx
from satdifuser.cli.main import main
from satdifuser.embed import tile_windows

UTM = ["Forest", "Pasture"]  # EPSG:32631; SeaLake is EPSG:4326


@pytest.fixture(scope="module")
def tifs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gtfx.make_classes(tmp_path_factory.mktemp("tifs") / "classes")


def _embed(out: Path, *args: str) -> gpd.GeoDataFrame:
    code = main(
        [
            "embed",
            "--backbone",
            "tiny-pixel",
            "--timesteps",
            "10",
            "--image-size",
            "16",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
            *args,
        ]
    )
    assert code == 0
    return gpd.read_parquet(out)


def _bounds(path: str) -> tuple[tuple[float, ...], str]:
    with rasterio.open(path) as ds:
        return tuple(ds.bounds), ds.crs.to_string()


def test_geotiff_folder_of_one_crs_keeps_it_and_each_footprint(tifs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "utm"
    for cls in UTM:
        shutil.copytree(tifs / cls, folder / cls)
    gdf = _embed(tmp_path / "utm.parquet", "--dataset", "geotiff-folder", "--root", str(folder))
    assert len(gdf) == len(UTM) * gtfx.PER_CLASS
    assert gdf.crs.to_epsg() == 32631
    assert list(gdf["label_name"].unique()) == UTM
    for path, geom, crs in zip(gdf["path"], gdf.geometry, gdf["crs"], strict=True):
        bounds, file_crs = _bounds(path)
        assert crs == file_crs == "EPSG:32631"
        assert geom.equals(shapely.box(*bounds))
    row = gdf.iloc[0]
    assert (row.lon_min, row.lat_max) == pytest.approx((2.2945, 48.8583), abs=1e-3)  # Paris
    assert np.stack(gdf["embedding"].to_list()).shape[0] == len(gdf)


def test_mixed_crs_folder_is_reprojected_to_lonlat_and_keeps_native_bounds(
    tifs: Path, tmp_path: Path
) -> None:
    gdf = _embed(tmp_path / "mixed.parquet", str(tifs))  # image paths, not a dataset
    assert len(gdf) == 3 * gtfx.PER_CLASS
    assert gdf.crs.to_epsg() == 4326
    assert set(gdf["crs"]) == {"EPSG:32631", "EPSG:4326"}
    for row in gdf.itertuples():
        bounds, file_crs = _bounds(row.path)
        assert row.crs == file_crs
        assert (row.x_min, row.y_min, row.x_max, row.y_max) == pytest.approx(bounds)
        lonlat = (row.lon_min, row.lat_min, row.lon_max, row.lat_max)
        assert row.geometry.bounds == pytest.approx(lonlat, abs=1e-7)
        assert (row.row_off, row.col_off, row.height, row.width) == (0, 0, gtfx.SIZE, gtfx.SIZE)


def test_tiles_partition_the_raster_footprint(tifs: Path, tmp_path: Path) -> None:
    one = tifs / "Forest" / "Forest_1.tif"
    gdf = _embed(tmp_path / "tiles.parquet", "--tile", "8", str(one))
    assert list(gdf["id"]) == [f"Forest_1.tif@{r},{c}" for r in (0, 8) for c in (0, 8)]
    bounds, _ = _bounds(str(one))
    assert shapely.union_all(gdf.geometry.to_list()).equals(shapely.box(*bounds))
    assert gdf.geometry.area.sum() == pytest.approx(shapely.box(*bounds).area)


def test_tile_windows_shift_the_last_tile_inside_the_image() -> None:
    assert tile_windows(20, 16, 8) == [(r, c, 8, 8) for r in (0, 8, 12) for c in (0, 8)]
    assert tile_windows(16, 16, None) == [(0, 0, 16, 16)]
    assert tile_windows(6, 10, 8) == [(0, 0, 6, 8), (0, 2, 6, 8)]
