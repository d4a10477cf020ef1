"""The own-data example configs train end to end: fit -> RUN/model -> predict (docs/own_data.md).

Each shipped config runs as written except for command-line overrides that make it test-sized:
the tiny-pixel backbone (random weights), one timestep, 32 px, 1-2 epochs, tiny fixtures.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fixtures.geotiff import make as fx_geotiff
from fixtures.mask_folder import make as fx_masks
from satdifuser.cli.main import main
from satdifuser.model import SatDiFuserModel

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = [
    "--model.init_args.extractor.init_args.backbone", "tiny-pixel",
    "--model.init_args.extractor.init_args.image_size", "32",
    "--model.init_args.extractor.init_args.timesteps", "[21]",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_geotiff_folder_config_fits_and_the_model_predicts(tmp_path: Path) -> None:
    pytest.importorskip("rasterio", reason="GeoTIFF folders need the geo extra (rasterio)")
    root = fx_geotiff.make_split_classes(tmp_path / "geotiffs")  # train/ val/ test/ of classes
    run = tmp_path / "run"
    args = ["fit", "--config", str(CONFIGS / "geotiff_folder.yaml"), *TINY,
            "--data.init_args.root", str(root), "--model.init_args.num_classes", "3",
            "--data.init_args.batch_size", "4", "--trainer.max_epochs", "2",
            "--trainer.default_root_dir", str(run),
            "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    model = SatDiFuserModel.from_pretrained(run / "model")
    assert model.task_type == "classification" and model.class_names == fx_geotiff.CLASSES
    assert model.standardizer.is_fitted and model.config()["standardize"] is True
    assert model.config()["features"]["args"]["pool"] == 4  # the config's pooled features
    # the header's predict command: 1-based bands 4,3,2 and the value_range's 4095
    tifs = sorted(str(p) for p in (root / "test").rglob("*.tif"))
    out = tmp_path / "predictions.csv"
    predict = ["predict", "--model", str(run / "model"), *tifs, "--bands", "4,3,2",
               "--scale", "4095", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(predict) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == tifs
    assert {r["predicted"] for r in rows} <= set(fx_geotiff.CLASSES)


def test_mask_folder_config_fits_and_the_model_predicts(tmp_path: Path) -> None:
    root = fx_masks.make_dubai(tmp_path)  # tile_1, tile_2 (train), tile_8 (val, test)
    run = tmp_path / "run"
    args = ["fit", "--config", str(CONFIGS / "mask_folder.yaml"), *TINY,
            "--data.init_args.root", str(root), "--data.init_args.crop_size", "32",
            "--model.init_args.sliding_window", "32", "--data.init_args.crops_per_image", "2",
            "--data.init_args.batch_size", "4", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(run)]  # fmt: skip
    assert main(args) == 0
    model = SatDiFuserModel.from_pretrained(run / "model")
    assert model.task_type == "segmentation" and len(model.class_names) == 6
    assert model.class_names[0] == "Building" and model.standardizer.is_fitted
    image = root / "tile_8" / "images" / "image_part_001.jpg"
    out = tmp_path / "maps"
    assert main(["predict", "--model", str(run / "model"), str(image), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    class_map = np.asarray(Image.open(out / "image_part_001.png"))
    assert class_map.shape == fx_masks.SIZES[0] and int(class_map.max()) < 6
