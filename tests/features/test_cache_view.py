"""CachedView + SelectMaps: label budgets and map subsets of one cache, no second extraction."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cache_fakes import FakeExtractor, ToyDataset

from satdifuser.errors import ConfigError
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.cache_view import CachedView, SelectMaps, first_per_class, select_maps


class ToyDataModule:
    """What CachedDataModule needs of a data module: ``dataset(split)`` and the class facts."""

    num_classes, classes, task_type, batch_size, seed = 3, ["a", "b", "c"], "classification", 4, 0

    def __init__(self) -> None:
        self.sets = {"train": ToyDataset(12, prefix="tr"), "val": ToyDataset(6, prefix="va"),
                     "test": ToyDataset(6, prefix="te")}  # fmt: skip

    def dataset(self, split: str) -> ToyDataset:
        return self.sets[split]

    def prepare_data(self) -> None:
        pass


@pytest.fixture
def cached(tmp_path: Path) -> CachedDataModule:
    data = CachedDataModule(ToyDataModule(), FakeExtractor(), tmp_path, dtype="float32",
                            progress=False, in_memory=True)  # fmt: skip
    data.setup("fit")
    data.setup("test")
    return data


def test_first_per_class_keeps_row_order_and_refuses_a_short_class() -> None:
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 1, 2])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 4, 6]
    assert first_per_class(labels, None).tolist() == list(range(9))
    with pytest.raises(ConfigError, match="label budget 4 per class"):
        first_per_class(labels, 4)


def test_select_maps_matches_taps_and_timesteps_or_says_what_exists() -> None:
    info = FakeExtractor().feature_info  # (blocks.0, 10), (blocks.1, 10), (blocks.0, 50), ...
    assert select_maps(info, timesteps=[50]) == [2, 3]
    assert select_maps(info, taps=["blocks.1.*"]) == [1, 3]
    assert select_maps(info, taps=["blocks.0.*"], timesteps=[10]) == [0]
    with pytest.raises(ConfigError, match=r"available taps: blocks\.0\.conv, blocks\.1\.conv"):
        select_maps(info, taps=["up_*"])


def test_view_serves_the_budget_rows_and_the_selected_maps_of_the_one_extraction(
    cached: CachedDataModule,
) -> None:
    ex = cached.extractor
    view = CachedView(cached, train_budget=2, timesteps=[50], batch_size=4, seed=1)
    train = view.split("train")
    # labels are i % 3: the first two of each class are rows 0..5, in row order
    assert train.ids == [f"tr-{i:03d}" for i in range(6)]
    assert [f.timestep for f in view.feature_info] == [50, 50]
    batch = next(iter(view.train_dataloader()))
    assert len(batch["features"]) == 2 and batch["features"][1].shape[1:] == (6, 4, 4)
    online = SelectMaps(ex, timesteps=[50])
    ids = batch["id"]
    images = torch.stack([cached.source_dataset("train")[int(i[3:])]["image"] for i in ids])
    for got, want in zip(batch["features"], online(images), strict=True):
        torch.testing.assert_close(got, want)
    calls = ex.calls
    assert len(CachedView(cached, train_budget=1, seed=2).split("train")) == 3
    assert len(view.split("test")) == 6 and ex.calls == calls  # views never re-extract


def test_a_task_trained_on_the_view_predicts_the_same_from_images(
    cached: CachedDataModule, tmp_path: Path
) -> None:
    from satdifuser.tasks import ClassificationTask, fit_and_test

    view = CachedView(cached, train_budget=3, taps=["blocks.1.*"], batch_size=4)
    task = ClassificationTask(SelectMaps(cached.extractor, taps=["blocks.1.*"]), 3,
                              fusion_args={"projection_dim": 8, "bottleneck_dim": 4,
                                           "num_groups": 2},
                              early_stopping_patience=None, standardize=True)  # fmt: skip
    result = fit_and_test(task, view, tmp_path / "run", max_epochs=2, progress=False)
    assert result.best_epoch in (1, 2) and "test/overall_accuracy" in result.test
    assert task.standardizer.is_fitted
    task.eval()
    batch = next(iter(view.test_dataloader()))
    images = torch.stack([cached.source_dataset("test")[int(i[3:])]["image"] for i in batch["id"]])
    with torch.no_grad():
        torch.testing.assert_close(task(images), task.forward_features(batch["features"]))
    selected = SelectMaps(cached.extractor, taps=["blocks.1.*"])
    assert selected.identity() != cached.extractor.identity()
