from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fixtures.geobench import make as gbfx
from satdifuser.data.geobench_datamodule import GeoBenchDataModule
from satdifuser.errors import ConfigError


def _order(dm: GeoBenchDataModule) -> list[str]:
    return [i for batch in dm.train_dataloader() for i in batch["id"]]


def test_batches_and_task_facts(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-nz-cattle", n=(5, 2, 2))
    dm = GeoBenchDataModule(str(tmp_path), task="m-nz-cattle", batch_size=2)
    assert (dm.num_classes, dm.task_type, dm.ignore_index) == (2, "segmentation", -100)
    assert len(dm.classes) == 2
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 16, 16) and batch["mask"].shape == (2, 16, 16)
    assert batch["meta"].shape == (2, 7) and len(batch["id"]) == 2
    assert sum(len(b["id"]) for b in dm.val_dataloader()) == 2
    dm.setup("test")
    assert [i for b in dm.test_dataloader() for i in b["id"]] == ["id_0007", "id_0008"]


def test_training_order_is_fixed_by_the_seed(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat", n=(12, 1, 1))
    a = _order(GeoBenchDataModule(str(tmp_path), batch_size=4, seed=0))
    b = _order(GeoBenchDataModule(str(tmp_path), batch_size=4, seed=0))
    c = _order(GeoBenchDataModule(str(tmp_path), batch_size=4, seed=1))
    assert a == b and sorted(a) == sorted(c) and a != c
    assert sorted(a) == [f"id_{i:04d}" for i in range(12)]
    # every epoch, whatever num_workers is (persistent workers included)
    epochs = []
    for workers in (0, 2):
        loader = GeoBenchDataModule(str(tmp_path), batch_size=4, num_workers=workers)
        loader = loader.train_dataloader()
        epochs.append([[i for batch in loader for i in batch["id"]] for _ in range(2)])
    assert epochs[0] == epochs[1] and epochs[0][0] == a and epochs[0][1] != a


def test_image_size_resizes_images_not_masks(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-chesapeake")
    dm = GeoBenchDataModule(str(tmp_path), task="m-chesapeake", batch_size=3, image_size=32)
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 16, 16)
    assert batch["mask"].dtype == torch.int64


def test_multispectral_partition_and_workers(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-so2sat", n=(10, 2, 2))
    dm = GeoBenchDataModule(str(tmp_path), task="m-so2sat", batch_size=8, num_workers=1,
                            partition="0.50x_train", view="multispectral")  # fmt: skip
    ids = _order(dm)
    assert len(ids) == 5
    assert next(iter(dm.train_dataloader()))["image"].shape[1] == 18


def test_yaml_class_path_instantiates(tmp_path: Path) -> None:
    from jsonargparse import ArgumentParser

    gbfx.make_task(tmp_path, "m-pv4ger")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--data", type=GeoBenchDataModule)
    cfg = parser.parse_args(["--data", (
        '{"class_path": "satdifuser.data.geobench_datamodule.GeoBenchDataModule", '
        f'"init_args": {{"root": "{tmp_path}", "task": "m-pv4ger", "batch_size": 2}}}}'
    )])  # fmt: skip
    dm = parser.instantiate_classes(cfg).data
    assert isinstance(dm, GeoBenchDataModule) and dm.batch_size == 2 and dm.num_classes == 2
    with pytest.raises(Exception, match="batch_sise"):
        parser.parse_args(["--data", (
            '{"class_path": "satdifuser.data.geobench_datamodule.GeoBenchDataModule", '
            '"init_args": {"batch_sise": 2}}'
        )])  # fmt: skip


def test_bad_loader_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="batch_size=0"):
        GeoBenchDataModule("x", batch_size=0)
