"""One non-finite policy for every reader: refuse NaN/Inf with the file, honour declared nodata."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from fixtures.geotiff import make as fx
from satdifuser.data.bands import scale_bands
from satdifuser.data.geotiff_folder import GeoTiffFolder
from satdifuser.data.geotiff_io import read_geotiff
from satdifuser.data.image_io import read_mask_pixels
from satdifuser.data.nodata import check_finite, nodata_mask, parse_nodata
from satdifuser.errors import DataFormatError, InputError


def _tif(path: Path, arr: np.ndarray, nodata: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = list(fx.utm_tags(*fx.UTM_TIE))
    if nodata is not None:
        tags.append((42113, "s", 0, nodata, True))  # GDAL_NODATA
    tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="separate", extratags=tags)
    return path


def _float_classes(root: Path, bad: float, nodata: str | None = None) -> Path:
    for n in range(3):
        arr = np.full((3, 4, 4), 0.25, np.float32)
        if n == 1:
            arr[2, 1, 3] = bad
        _tif(root / "A" / f"a{n}.tif", arr, nodata)
    return root


def test_check_finite_names_source_counts_position_and_fix() -> None:
    a = np.zeros((2, 3, 3), np.float32)
    a[1, 2, 0], a[0, 0, 1] = np.nan, np.inf
    with pytest.raises(
        DataFormatError,
        match=r"x\.tif holds 1 NaN and 1 infinite pixel values, first at band 0, row 0, "
        r"column 1; .*GDAL_NODATA.*docs/data\.md",
    ):
        check_finite(a, "x.tif")
    check_finite(np.zeros((2, 2), np.uint16), "ints never fail")
    b = np.array([[np.nan, 1.0]])
    check_finite(b, "nan declared nodata", nodata=float("nan"))
    with pytest.raises(DataFormatError, match=r"1 infinite .*\(declared nodata: nan\)"):
        check_finite(np.array([[np.nan, np.inf]]), "inf is never nodata", nodata=float("nan"))
    assert parse_nodata("-9999\x00") == -9999.0 and parse_nodata("none") is None
    assert nodata_mask(np.zeros((2, 2)), None) is None
    assert nodata_mask(np.zeros((2, 2)), 5.0) is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_geotiff_nan_or_inf_is_refused_with_the_file(tmp_path: Path, bad: float) -> None:
    ds = GeoTiffFolder(_float_classes(tmp_path, bad), split="all")
    ds[0]  # the clean files read
    # before: NaN became 0 and Inf became 1 in the image, silently
    with pytest.raises(DataFormatError, match=r"GeoTIFF .*a1\.tif holds 1 .* band 2, row 1"):
        ds[1]
    with pytest.raises(DataFormatError, match=r"a1\.tif"):
        read_geotiff(tmp_path / "A" / "a1.tif")


def test_declared_nan_nodata_reads_as_zero(tmp_path: Path) -> None:
    ds = GeoTiffFolder(_float_classes(tmp_path, np.nan, nodata="nan"), split="all")
    _, info = read_geotiff(ds.files[1], with_pixels=False)
    assert info.nodata is not None and np.isnan(info.nodata)
    img = ds[1]["image"]  # rgb view of 3 bands: band order is red, green, blue
    assert float(img[2, 1, 3]) == 0.0 and float(img[2, 0, 0]) == pytest.approx(0.25)


def test_declared_nodata_value_is_out_of_percentiles_and_masked_in_pairs(tmp_path: Path) -> None:
    img = np.tile(np.arange(20, dtype=np.int16).reshape(4, 5), (3, 1, 1)) * 10
    img[:, 0, 0] = -9999
    _tif(tmp_path / "images" / "c.tif", img, nodata="-9999")
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "masks" / "c.tif", np.ones((4, 5), np.uint8))
    ds = GeoTiffFolder(tmp_path, classes=["a", "b"], scale="percentile", percentiles=(0.0, 100.0))
    s = ds[0]
    assert float(s["image"][0, 0, 0]) == 0.0  # nodata pixel
    assert float(s["image"][0, 0, 1]) == 0.0 and float(s["image"][0, 3, 4]) == 1.0  # 10..190
    assert int(s["mask"][0, 0]) == 255 and int(s["mask"][0, 1]) == 1


def test_float_mask_nan_refused_or_ignored_when_declared(tmp_path: Path) -> None:
    _tif(tmp_path / "images" / "c.tif", np.ones((3, 4, 4), np.uint16))
    (tmp_path / "masks").mkdir()
    mask = np.zeros((4, 4), np.float32)
    mask[2, 2] = np.nan
    tifffile.imwrite(tmp_path / "masks" / "c.tif", mask)
    with pytest.raises(DataFormatError, match=r"masks/c\.tif holds 1 NaN"):
        GeoTiffFolder(tmp_path, classes=["a"])[0]
    tifffile.imwrite(tmp_path / "masks" / "c.tif", mask, extratags=[(42113, "s", 0, "nan", True)])
    m = GeoTiffFolder(tmp_path, classes=["a"])[0]["mask"]
    assert int(m[2, 2]) == 255 and int(m.sum()) == 255


def test_float_png_like_mask_and_scale_bands_refuse_inf(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0.0, np.nan]], np.float32)).save(tmp_path / "m.tiff")
    with pytest.raises(DataFormatError, match=r"mask .*m\.tiff holds 1 NaN mask values"):
        read_mask_pixels(tmp_path / "m.tiff")
    with pytest.raises(InputError, match="1 infinite values"):
        scale_bands(np.array([[[0.0, np.inf]]]), "fixed", None)
    out = scale_bands(np.array([[[np.nan, 0.5]]], np.float32), "fixed", None)
    assert out.tolist() == [[[0.0, 0.5]]] and isinstance(out, np.ndarray)
    assert torch.isfinite(torch.from_numpy(out)).all()


def test_geobench_band_with_nan_is_refused_with_the_file(tmp_path: Path) -> None:
    import h5py

    from fixtures.geobench import make as gbfx
    from satdifuser.data.geobench import GeoBench

    gbfx.make_task(tmp_path, "m-eurosat", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = GeoBench(tmp_path, task="m-eurosat", split="train")
    red = next(k for k in h5py.File(ds.files[1], "r") if k.startswith("04"))
    with h5py.File(ds.files[1], "r+") as h5:
        data = h5[red][()]
        data[3, 5] = np.nan
        h5[red][...] = data
    ds[0]
    # before: the NaN reached the image, and only the feature extractor refused it, unnamed
    want = re.escape(f"{ds.files[1].name}: band '04 - Red' holds 1 NaN pixel values, first at")
    with pytest.raises(DataFormatError, match=want + r" row 3, column 5; .*declares no nodata"):
        ds[1]
