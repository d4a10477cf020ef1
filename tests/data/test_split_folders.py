"""Class-folder datasets as users have them: train/val/test folders, default-split notice,
and images of mixed sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from torch.utils.data import DataLoader

from satdifuser.data.eurosat import EuroSAT
from satdifuser.data.geotiff_folder import GeoTiffFolder
from satdifuser.data.splits import class_of, scan_split_folders
from satdifuser.data.transforms import Resize, compose
from satdifuser.errors import DataFormatError


def _jpgs(folder: Path, n: int, size: tuple[int, int] = (16, 16)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((*size, 3), 40 * i % 256, np.uint8)).save(folder / f"x_{i}.jpg")


def _split_root(root: Path, val_dir: str = "val") -> Path:
    for split, n in (("train", 3), (val_dir, 2), ("test", 1)):
        for cls in ("Forest", "River"):
            _jpgs(root / split / cls, n)
    return root


def test_split_folders_are_the_splits(tmp_path: Path) -> None:
    root = _split_root(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # folders are the splits: no default-split notice
        sizes = {s: len(EuroSAT(root, split=s)) for s in ("train", "val", "test", "all")}
    assert sizes == {"train": 6, "val": 4, "test": 2, "all": 12}
    ds = EuroSAT(root, split="val")
    assert ds.classes == ["Forest", "River"] and ds.split_kind == "folders"
    assert ds.files[0] == "val/Forest/x_0.jpg" and ds.targets == [0, 0, 1, 1]
    assert int(ds[3]["label"]) == 1 and ds[3]["id"] == "val/River/x_1.jpg"
    assert len(EuroSAT(root, split="train", budget=2)) == 4
    with pytest.raises(DataFormatError, match=r"split 'unlabeled' is missing in the split "
                                              r"folders of .* \(train/val/test\)"):  # fmt: skip
        EuroSAT(root, split="unlabeled")


def test_split_folder_aliases_and_class_of(tmp_path: Path) -> None:
    data = scan_split_folders(_split_root(tmp_path, "validation"), (".jpg",))
    assert data is not None and len(data["val"]) == 4
    assert data["val"][0] == "validation/Forest/x_0.jpg"
    assert class_of("train/River/a.jpg") == "River" and class_of("River/a.jpg") == "River"


def test_geotiff_folder_with_split_folders(tmp_path: Path) -> None:
    for split, n in (("train", 2), ("test", 1)):
        for cls in ("A", "B"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                tifffile.imwrite(tmp_path / split / cls / f"{i}.tif", np.zeros((3, 4, 4), np.uint8))
    ds = GeoTiffFolder(tmp_path, split="test")
    assert ds.layout == "classes" and ds.classes == ["A", "B"] and len(ds) == 2
    assert ds[1]["id"] == "test/B/0.tif" and int(ds[1]["label"]) == 1
    assert len(GeoTiffFolder(tmp_path, split="all")) == 6


def test_default_split_that_sets_images_aside_says_so_once(tmp_path: Path) -> None:
    for cls in ("Forest", "River"):
        _jpgs(tmp_path / cls, 10)  # class folders only: keeps working, default split
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = EuroSAT(tmp_path, split="train")
        EuroSAT(tmp_path, split="all")  # nothing set aside: no notice
    assert len(ds) == 4 and ds.split_kind == "default"
    assert len(rec) == 1 and rec[0].filename == __file__
    msg = str(rec[0].message)
    assert "\n" not in msg
    assert "default split is used: 4 train, 2 val, 4 test images, 10 set aside" in msg
    assert "split_file=" in msg and "train/, val/, test/" in msg


def test_mixed_sizes_name_the_file_and_the_fix(tmp_path: Path) -> None:
    _jpgs(tmp_path / "A", 3)
    Image.fromarray(np.zeros((13, 7, 3), np.uint8)).save(tmp_path / "A" / "x_1.jpg")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "A" / "x_2.jpg")
    ds = EuroSAT(tmp_path, split="all")
    loader = DataLoader(ds, batch_size=3)
    # before: RuntimeError "stack expects each tensor to be equal size" from the collate
    want = r"image .*A/x_1\.jpg is 7x13 \(WxH\) but the dataset's first image .*A/x_0\.jpg is 16x16"
    with pytest.raises(DataFormatError, match=want + r"; .*image_size: 16"):
        next(iter(loader))
    resized = EuroSAT(tmp_path, split="all", transforms=compose(Resize(16)))
    batch = next(iter(DataLoader(resized, batch_size=3)))
    assert batch["image"].shape == (3, 3, 16, 16) and torch.isfinite(batch["image"]).all()
    assert EuroSAT(tmp_path, split="all", check_sizes=False)[2]["image"].shape == (3, 1, 1)


def test_geotiff_mixed_sizes_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    for i, hw in enumerate([(8, 8), (8, 8), (5, 8)]):
        tifffile.imwrite(tmp_path / "A" / f"{i}.tif", np.zeros((3, *hw), np.uint16))
    ds = GeoTiffFolder(tmp_path)
    ds[1]
    with pytest.raises(DataFormatError, match=r"A/2\.tif is 8x5 \(WxH\) but .*A/0\.tif is 8x8"):
        ds[2]
    assert GeoTiffFolder(tmp_path, transforms=Resize(8))[2]["image"].shape == (3, 8, 8)
