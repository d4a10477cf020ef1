from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningDataModule

from fixtures.eurosat import make as fx_eurosat
from fixtures.geotiff import make as fx_geotiff
from fixtures.mask_folder import make as fx_mask
from satdifuser.data import (
    DubaiAerialDataModule,
    EuroSATDataModule,
    GeoTiffFolderDataModule,
    MaskFolderDataModule,
)
from satdifuser.errors import ConfigError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("dm")
    fx_eurosat.make(r)
    fx_mask.make_dubai(r)
    fx_mask.make_index(r / "index_masks")
    fx_geotiff.make_classes(r / "gt_classes")
    fx_geotiff.make_pairs(r / "gt_pairs")
    return r


def _ids(loader: torch.utils.data.DataLoader) -> list[str]:
    return [i for batch in loader for i in batch["id"]]


def test_eurosat_datamodule_budget_batches_and_properties(root: Path) -> None:
    dm = EuroSATDataModule(root, budget=1, batch_size=4, image_size=48)
    dm.setup("fit")
    assert dm.num_classes == 10 and dm.classes[0] == "AnnualCrop"
    assert dm.task_type == "classification"
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 48, 48) and batch["label"].shape == (4,)
    assert batch["meta"].shape == (4, 7) and len(batch["id"]) == 4
    assert len(dm.dataset("train")) == 10 and len(dm.dataset("val")) == 10
    assert len(dm.dataset("unlabeled")) == 10  # type: ignore[arg-type]


def test_eurosat_loader_order_depends_only_on_seed(root: Path) -> None:
    a = _ids(EuroSATDataModule(root, budget=2, batch_size=3, seed=5).train_dataloader())
    b = _ids(EuroSATDataModule(root, budget=2, batch_size=3, seed=5).train_dataloader())
    c = _ids(EuroSATDataModule(root, budget=2, batch_size=3, seed=6).train_dataloader())
    assert a == b and sorted(a) == sorted(c) and a != c
    val = _ids(EuroSATDataModule(root, budget=2, seed=5).val_dataloader())
    assert val == sorted(val, key=lambda s: (s.split("/")[0], s))  # file order, per class


def test_eurosat_datamodule_from_yaml(root: Path) -> None:
    parser = ArgumentParser()
    parser.add_argument("--data", type=LightningDataModule)
    cfg = parser.parse_string(
        "data:\n  class_path: satdifuser.data.EuroSATDataModule\n"
        f"  init_args: {{root: {root}, budget: 2, batch_size: 5, seed: 3}}\n"
    )
    dm = parser.instantiate_classes(cfg).data
    assert isinstance(dm, EuroSATDataModule) and dm.budget == 2 and dm.batch_size == 5
    with pytest.raises(SystemExit):  # a typo is rejected, not ignored
        parser.parse_string(
            "data:\n  class_path: satdifuser.data.EuroSATDataModule\n  init_args: {budjet: 2}\n"
        )


def test_dubai_datamodule_crops_train_whole_eval(root: Path) -> None:
    dm = DubaiAerialDataModule(
        root,
        train_tiles=[1, 2],
        val_tiles=[8],
        crop_size=32,
        crops_per_image=2,
        batch_size=4,
        augment=True,
    )
    assert dm.task_type == "segmentation" and dm.num_classes == 6 and dm.ignore_index == 255
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["mask"].shape == (4, 32, 32)
    vb = list(dm.val_dataloader())
    assert len(vb) == 2 and vb[0]["image"].shape == (1, 3, 40, 48)
    assert vb[0]["id"] == ["tile_8/images/image_part_001.jpg"]
    assert len(dm.dataset("test")) == 2  # test defaults to the val tiles


@pytest.mark.parametrize("workers", [0, 2])
def test_dubai_random_crops_and_augmentation_repeat_with_seed(root: Path, workers: int) -> None:
    def run(seed: int) -> tuple[list[str], torch.Tensor]:
        dm = DubaiAerialDataModule(
            root,
            train_tiles=[1, 2],
            val_tiles=[8],
            crop_size=24,
            crops_per_image=3,
            batch_size=6,
            seed=seed,
            augment=True,
            num_workers=workers,
        )
        batches = list(dm.train_dataloader())
        return [i for b in batches for i in b["id"]], torch.cat([b["mask"] for b in batches])

    ids1, m1 = run(0)
    ids2, m2 = run(0)
    ids3, _ = run(1)
    assert ids1 == ids2 and torch.equal(m1, m2) and ids1 != ids3


def test_dubai_datamodule_rejects_overlapping_tiles(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"tiles \[2\] are in train and in val/test"):
        DubaiAerialDataModule(root, train_tiles=[1, 2], val_tiles=[2])


def test_mask_folder_datamodule_split_file(root: Path, tmp_path: Path) -> None:
    split = {
        "train": ["images/scene_1.png"],
        "val": ["images/scene_2.png"],
        "test": ["images/scene_2.png"],
    }
    (tmp_path / "s.json").write_text(json.dumps(split))
    dm = MaskFolderDataModule(
        root / "index_masks",
        classes=["a", "b", "c"],
        split_file=tmp_path / "s.json",
        crop_size=16,
        batch_size=2,
    )
    assert next(iter(dm.train_dataloader()))["mask"].shape == (2, 16, 16)
    assert len(dm.dataset("val")) == 1
    with pytest.raises(ConfigError, match="needs train_groups and val_groups"):
        MaskFolderDataModule(root / "index_masks", classes=["a"])


def test_geotiff_datamodules(root: Path) -> None:
    dm = GeoTiffFolderDataModule(root / "gt_classes", view="all", batch_size=2)
    # 5 per class: default split gives 1 train, 1 test, 0 val per class
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 13, 16, 16) and dm.task_type == "classification"
    pairs = GeoTiffFolderDataModule(root / "gt_pairs", classes=["a", "b", "c"])
    with pytest.raises(ConfigError, match="pass split_file= a JSON with train/val/test"):
        pairs.setup("fit")


def test_bad_batch_size() -> None:
    with pytest.raises(ConfigError, match="batch_size=0"):
        EuroSATDataModule(batch_size=0)
