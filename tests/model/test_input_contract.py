"""A model trained on a GeoTIFF folder prepares raw rasters exactly like its training reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fixtures.geotiff import make as gtfx
from satdifuser.data.datamodule import GeoTiffFolderDataModule
from satdifuser.errors import InputError
from satdifuser.model import SatDiFuserModel

rasterio = pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")


@pytest.mark.parametrize("options", [{"rgb": ["B08", "B04", "B03"], "value_range": (0.0, 3000.0)},
                                     {"scale": "percentile"}])  # fmt: skip
def test_prepare_raster_equals_the_training_reader(tmp_path: Path, options: dict) -> None:
    from test_model import make_model

    root = gtfx.make_classes(tmp_path / "tifs")
    dm = GeoTiffFolderDataModule(root, **options)
    contract = dm.input_contract()
    base = make_model()
    model = SatDiFuserModel(
        base.extractor, base.fusion, base.head, "classification", base.class_names,
        base.standardizer, input_contract=contract,
    )  # fmt: skip
    loaded = SatDiFuserModel.from_pretrained(model.save_pretrained(tmp_path / "m"))
    ds = dm.dataset("train")
    with rasterio.open(ds.files[0]) as src:
        raw = src.read()
    torch.testing.assert_close(loaded.prepare_raster(raw, "x.tif"), ds[0]["image"])
    with pytest.raises(InputError, match="trained on files with 13 bands"):
        loaded.prepare_raster(raw[:4], "four.tif")
