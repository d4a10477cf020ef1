"""In-memory images as a dataset with ids and a content-addressed cache identity."""

from __future__ import annotations

import pytest
import torch

from satdifuser.data import TensorDataModule, TensorImageDataset
from satdifuser.errors import ConfigError
from satdifuser.features.cache_key import dataset_identity
from satdifuser.features.cache_plan import dataset_ids


def test_samples_carry_image_label_and_stable_ids() -> None:
    images = torch.rand(3, 3, 8, 8)
    ds = TensorImageDataset(images, [2, 0, 1], "val", num_classes=10)
    s = ds[1]
    assert torch.equal(s["image"], images[1]) and int(s["label"]) == 0 and s["id"] == "val-00001"
    assert "meta" not in s and len(ds) == 3 and ds.num_classes == 10 and len(ds.classes) == 10
    assert dataset_ids(ds) == ["val-00000", "val-00001", "val-00002"]
    meta = torch.zeros(3, 7)
    assert torch.equal(TensorImageDataset(images, [0, 1, 2], meta=meta)[2]["meta"], meta[2])


def test_cache_identity_follows_the_pixels_and_labels() -> None:
    images = torch.rand(2, 3, 8, 8)
    a = dataset_identity(TensorImageDataset(images, [0, 1]))
    assert a == dataset_identity(TensorImageDataset(images.clone(), [0, 1]))
    other = images.clone()
    other[0, 0, 0, 0] += 0.5
    assert a != dataset_identity(TensorImageDataset(other, [0, 1]))
    assert a != dataset_identity(TensorImageDataset(images, [1, 0]))


def test_bad_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="N labels"):
        TensorImageDataset(torch.rand(2, 3, 8, 8), [0])
    with pytest.raises(ConfigError, match="num_classes=2"):
        TensorImageDataset(torch.rand(2, 3, 8, 8), [0, 2], num_classes=2)


def test_data_module_serves_the_given_splits() -> None:
    train = TensorImageDataset(torch.rand(3, 3, 8, 8), [0, 1, 0], "train", num_classes=2)
    dm = TensorDataModule(train, val=train, batch_size=2)
    assert dm.num_classes == 2 and dm.dataset("train") is train
    assert [len(b["id"]) for b in dm.train_dataloader()] == [2, 1]
    with pytest.raises(ConfigError, match="no 'test' dataset"):
        dm.dataset("test")
