from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from fixtures.geotiff import make as fx
from satdifuser.data.bands import band_indices, canonical_band, scale_bands
from satdifuser.data.crs import to_lonlat, utm_to_lonlat
from satdifuser.data.geotiff_folder import GeoTiffFolder
from satdifuser.data.geotiff_io import read_geotiff
from satdifuser.errors import (
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    DependencyNotFoundError,
)

rasterio = pytest.importorskip("rasterio", reason="GeoTIFF folders need the geo extra (rasterio)")


@pytest.fixture(scope="module")
def classes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_classes(tmp_path_factory.mktemp("gtc"))


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_pairs(tmp_path_factory.mktemp("gtp"))


def test_utm_inverse_matches_published_point() -> None:
    # Wikipedia's UTM example: CN Tower, 17T 630084 m E 4833438 m N = 43.642567 N, 79.387139 W
    lon, lat = utm_to_lonlat(630084, 4833438, 17, True)
    assert lon == pytest.approx(-79.387139, abs=2e-5) and lat == pytest.approx(43.642567, abs=2e-5)
    assert utm_to_lonlat(500000, 0, 31, True) == pytest.approx((3.0, 0.0))
    lon_s, lat_s = to_lonlat(500000, 10000000 - 110_600, 32733)  # zone 33 south, ~1 deg S
    assert lon_s == pytest.approx(15.0) and lat_s == pytest.approx(-1.0, abs=2e-3)


def test_classes_layout_rgb_view_and_meta_from_utm_tags(classes_root: Path) -> None:
    ds = GeoTiffFolder(classes_root, split="all")
    assert ds.layout == "classes" and ds.task_type == "classification" and len(ds) == 15
    # no band descriptions, 13 bands: the EuroSAT-MS file order, B8A last (not after B08)
    assert ds.band_names[8] == "B09" and ds.band_names[12] == "B08A"
    assert "EuroSAT-MS" in ds.band_names_source
    assert ds.bands == [3, 2, 1]  # B04, B03, B02
    s = ds[0]
    raw = ds.read_raw(0)
    assert s["image"].shape == (3, 16, 16) and s["image"].dtype == torch.float32
    torch.testing.assert_close(s["image"][0], torch.ones(16, 16))  # red band saturated at 4095
    torch.testing.assert_close(s["image"][1], torch.from_numpy(raw[2] / 4095.0).float())
    lon, lat, gsd, cloud, y, m, d = s["meta"].tolist()
    # centre = corner + 8 px * 10 m east and south, in zone 31N near the Eiffel Tower
    assert lon == pytest.approx(2.2956, abs=1e-3) and lat == pytest.approx(48.8576, abs=1e-3)
    assert gsd == 10.0 and math.isnan(cloud) and (y, m, d) == (2018, 7, 1)
    assert int(s["label"]) == 0 and s["id"] == "Forest/Forest_1.tif"


def test_geographic_tags_gdal_band_names_and_cloud(classes_root: Path) -> None:
    _, info = read_geotiff(classes_root / "SeaLake" / "SeaLake_2.tif", with_pixels=False)
    assert info.epsg == 4326 and info.band_names is not None and info.band_names[3] == "B04"
    assert info.lon == pytest.approx(12.5 + 8e-4) and info.lat == pytest.approx(41.9 - 8e-4)
    assert info.gsd == pytest.approx(11.132) and info.cloud_cover == pytest.approx(0.125)
    assert (info.year, info.month, info.day) == (2018, 7, 2)


def test_all_bands_view_and_percentile_scaling(classes_root: Path) -> None:
    ds = GeoTiffFolder(classes_root, view="all", scale="percentile", percentiles=(0.0, 100.0))
    s = ds[0]
    assert s["image"].shape == (13, 16, 16)
    mins, maxs = s["image"][4].min(), s["image"][4].max()  # band 5 is not constant
    assert float(mins) == 0.0 and float(maxs) == 1.0


def test_bands_by_name_index_and_unknown(classes_root: Path) -> None:
    ds = GeoTiffFolder(classes_root, rgb=["b8", "B8A", 0])
    assert ds.bands == [7, 12, 0]  # EuroSAT-MS order: B8A is the 13th band
    ds = GeoTiffFolder(classes_root, rgb=["B8A", "B09", "B12"], band_names="sentinel2_l1c")
    assert ds.bands == [8, 9, 12] and ds.band_names_source == "band table 'sentinel2_l1c'"
    with pytest.raises(ConfigError, match=r"unknown band 'B13' .*available: B01"):
        GeoTiffFolder(classes_root, rgb=["B13", "B03", "B02"])
    assert canonical_band("b8a") == "B08A"
    assert band_indices(["red", "blue"], ["B02", "B03", "B04"], "x") == [2, 0]
    assert band_indices(["B04"], ["blue", "green", "red"], "x") == [2]


def test_fixed_scaling_defaults_by_dtype() -> None:
    a = np.array([[[0, 4095, 8190]]], dtype=np.uint16)
    assert scale_bands(a, "fixed", None).tolist() == [[[0.0, 1.0, 1.0]]]
    b = np.array([[[0, 255]]], dtype=np.uint8)
    assert scale_bands(b, "fixed", None).tolist() == [[[0.0, 1.0]]]
    assert scale_bands(a, "fixed", (0.0, 8190.0))[0, 0, 1] == pytest.approx(0.5, abs=1e-4)


def test_split_file_and_budget(classes_root: Path, tmp_path: Path) -> None:
    train = [f"{c}/{c}_{n}.tif" for c in fx.CLASSES for n in (3, 1, 2)]
    test = [f"{c}/{c}_4.tif" for c in fx.CLASSES]
    split = {"classes": fx.CLASSES, "train": train, "val": [], "test": test}
    (tmp_path / "s.json").write_text(json.dumps(split))
    ds = GeoTiffFolder(classes_root, split="train", split_file=tmp_path / "s.json", budget=2)
    assert [f.name for f in ds.files[:2]] == ["Forest_3.tif", "Forest_1.tif"] and len(ds) == 6
    with pytest.raises(DataFormatError, match=r"split 'val' in .*s\.json is empty"):
        GeoTiffFolder(classes_root, split="val", split_file=tmp_path / "s.json")
    with pytest.raises(DatasetNotFoundError, match=r"split file .*gone\.json does not exist"):
        GeoTiffFolder(classes_root, split="val", split_file=tmp_path / "gone.json")


def test_pairs_layout_masks(pairs_root: Path) -> None:
    ds = GeoTiffFolder(pairs_root, classes=["a", "b", "c"])
    assert ds.layout == "pairs" and ds.task_type == "segmentation" and len(ds) == 2
    assert ds.band_names == ["red", "green", "blue", "nir"] and ds.bands == [0, 1, 2]
    s = ds[1]
    want = tifffile.imread(pairs_root / "masks" / "chip_2.tif").astype(np.int64)
    assert s["image"].shape == (3, 16, 20) and torch.equal(s["mask"], torch.from_numpy(want))
    with pytest.raises(ConfigError, match="pairs layout needs classes"):
        GeoTiffFolder(pairs_root)


def test_pairs_label_out_of_range_and_size_mismatch(pairs_root: Path, tmp_path: Path) -> None:
    shutil.copytree(pairs_root, tmp_path / "p")
    with pytest.raises(DataFormatError, match=r"chip_1\.tif holds label 2 .* outside 0\.\.1"):
        GeoTiffFolder(tmp_path / "p", classes=["a", "b"])[0]
    tifffile.imwrite(tmp_path / "p" / "masks" / "chip_2.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataFormatError, match=r"mask .*chip_2\.tif is 8x8 but image .* is 20x16"):
        GeoTiffFolder(tmp_path / "p", classes=["a", "b", "c"])[1]


def test_truncated_geotiff_names_the_file(classes_root: Path, tmp_path: Path) -> None:
    shutil.copytree(classes_root, tmp_path / "c")
    p = tmp_path / "c" / "Pasture" / "Pasture_2.tif"
    p.write_bytes(p.read_bytes()[:100])
    ds = GeoTiffFolder(tmp_path / "c")
    i = [f.name for f in ds.files].index("Pasture_2.tif")
    with pytest.raises(DataFormatError, match=r"cannot read GeoTIFF .*Pasture_2\.tif"):
        ds[i]


def test_any_crs_proj_knows_gives_lon_lat(tmp_path: Path) -> None:
    # Lambert-93 (EPSG:2154): neither UTM nor 4326; PROJ (through rasterio) converts it
    (tmp_path / "A").mkdir()
    for n in (1, 2):
        tags = fx.utm_tags(700000.0, 6600000.0, epsg=2154)  # near the Lambert-93 origin
        tifffile.imwrite(
            tmp_path / "A" / f"a{n}.tif", np.zeros((3, 4, 4), np.uint8), extratags=tags
        )
    ds = GeoTiffFolder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note: nothing is unknown
        lon, lat, gsd = ds[0]["meta"][:3].tolist()
    # 3 deg E, 46.5 deg N is the projection's origin (700000, 6600000); centre 20 m E, 15 m S
    assert lon == pytest.approx(3.0, abs=5e-4) and lat == pytest.approx(46.5, abs=5e-4)
    assert gsd == 10.0


def test_missing_root_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no GeoTIFF folder at root="):
        GeoTiffFolder(tmp_path / "none")
    with pytest.raises(DatasetNotFoundError, match=r"neither <Class>/\*\.tif"):
        GeoTiffFolder(tmp_path)


def test_windowed_read_reads_only_the_window_and_describes_it(classes_root: Path) -> None:
    path = classes_root / "Forest" / "Forest_2.tif"
    full, whole = read_geotiff(path)
    part, info = read_geotiff(path, window=((4, 12), (0, 8)), bands=[3, 1])
    assert full is not None and part is not None
    np.testing.assert_array_equal(part, full[[3, 1], 4:12, 0:8])
    # the window's own transform, centre (4 px E, 8 px S of the corner) and footprint
    x0, y0 = fx.UTM_TIE
    assert info.transform == (10.0, 0.0, x0, 0.0, -10.0, y0 - 40.0)
    assert (info.lon, info.lat) == pytest.approx(to_lonlat(x0 + 40, y0 - 80, 32631), abs=1e-9)
    assert (info.lon, info.lat) != pytest.approx((whole.lon, whole.lat), abs=1e-5)
    assert info.crs == "EPSG:32631" and info.bounds_lonlat is not None
    west, south, east, north = info.bounds_lonlat
    assert west < info.lon < east and south < info.lat < north
    for bad in (((10, 20), (0, 8)), ((0, 0), (0, 8))):  # past the bottom edge; empty
        with pytest.raises(ConfigError, match=r"window .* is not inside GeoTIFF .*16x16"):
            read_geotiff(path, window=bad)
    with pytest.raises(ConfigError, match=r"band index 13 is out of range .* 13 bands"):
        read_geotiff(path, bands=[13])


def test_rotated_raster_and_feet_crs(tmp_path: Path) -> None:
    from rasterio.transform import Affine

    # rotated by 30 degrees in UTM 31N: the centre follows the affine, GSD stays 10 m
    tr = Affine.translation(*fx.UTM_TIE) @ Affine.rotation(30) @ Affine.scale(10, -10)
    profile = {"driver": "GTiff", "count": 1, "dtype": "uint8", "width": 6, "height": 4}
    with rasterio.open(tmp_path / "r.tif", "w", crs="EPSG:32631", transform=tr, **profile) as d:
        d.write(np.zeros((1, 4, 6), np.uint8))
    _, info = read_geotiff(tmp_path / "r.tif", with_pixels=False)
    cx, cy = tr @ (3, 2)
    assert (info.lon, info.lat) == pytest.approx(to_lonlat(cx, cy, 32631), abs=1e-9)
    assert info.gsd == pytest.approx(10.0) and not info.notes
    # NAD83 / New York Long Island (US survey feet): 10 ft pixels are 3.048 m
    feet = Affine.translation(1_000_000, 200_000) @ Affine.scale(10, -10)
    with rasterio.open(tmp_path / "f.tif", "w", crs="EPSG:2263", transform=feet, **profile) as d:
        d.write(np.zeros((1, 4, 6), np.uint8))
    _, info = read_geotiff(tmp_path / "f.tif", with_pixels=False)
    assert info.gsd == pytest.approx(3.048, abs=1e-3)
    assert info.lon == pytest.approx(-73.9, abs=0.2) and info.lat == pytest.approx(40.7, abs=0.2)


def test_without_rasterio_the_error_names_the_geo_extra(
    classes_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio -> ImportError
    with pytest.raises(DependencyNotFoundError, match=r'pip install "satdifuser\[geo\]"'):
        GeoTiffFolder(classes_root)
    with pytest.raises(DependencyNotFoundError, match="needs rasterio"):
        to_lonlat(500000.0, 0.0, 32631)


def test_inspect_shows_crs_and_footprint(classes_root: Path) -> None:
    from satdifuser.data.inspect import inspect_path

    r = inspect_path(classes_root, samples=3)
    crs = r.summary["crs"]
    assert re.fullmatch(
        r"EPSG:(32631|4326), footprint lon [\d.]+\.\.[\d.]+ lat [\d.]+\.\.[\d.]+ \[1st\]", crs
    )


def test_inspect_reads_a_root_of_split_folders(tmp_path: Path) -> None:
    from satdifuser.data.inspect import detect_format, inspect_path

    root = fx.make_split_classes(tmp_path / "s")  # train/ val/ test/ of class folders
    assert detect_format(root) == "geotiff_folder"
    r = inspect_path(root, samples=3)
    assert r.summary["classes"] == {"Forest": 5, "Pasture": 5, "SeaLake": 5}
