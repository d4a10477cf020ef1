"""CachedDataModule: batches carry the cached features; a fit from cache matches online."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from fixtures.eurosat import make as fx
from satdifuser.data.datamodule import EuroSATDataModule
from satdifuser.errors import CacheMismatchError, ConfigError
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.cache_dataset import CachedFeatureDataset
from satdifuser.features.cache_plan import make_plan
from satdifuser.features.extractor import FeatureExtractor
from satdifuser.tasks import ClassificationTask


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make(tmp_path_factory.mktemp("eurosat"))


def _extractor(**kw) -> FeatureExtractor:
    return FeatureExtractor("tiny-pixel", timesteps=[21, 61], image_size=16, **kw)


def test_batches_carry_the_online_features_and_forward_the_data_attributes(
    root: Path, tmp_path: Path
) -> None:
    ex = _extractor()
    dm = EuroSATDataModule(root, budget=None, batch_size=4)
    cdm = CachedDataModule(dm, ex, tmp_path, dtype="float32", keep_image=True, progress=False)
    cdm.setup("fit")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n.split("-")[0] for n in names] == ["train", "val"]
    assert names == sorted(p.name for p in cdm.folders.values())
    assert (cdm.num_classes, cdm.task_type, cdm.classes) == (10, "classification", dm.classes)
    batch = next(iter(cdm.val_dataloader()))
    assert set(batch) == {"features", "label", "id", "image"}
    online = ex(batch["image"])
    assert len(batch["features"]) == len(ex.feature_info) == len(cdm.feature_info)
    for a, b in zip(batch["features"], online, strict=True):
        assert a.shape == b.shape and a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert batch["id"] == dm.dataset("val").files[:4]


def test_fit_from_cache_gives_the_online_metrics(root: Path, tmp_path: Path) -> None:
    def fit(cached: bool) -> dict[str, float]:
        seed_everything(0)
        ex = _extractor()
        dm = EuroSATDataModule(root, budget=None, batch_size=5)
        task = ClassificationTask(
            ex, num_classes=10, warmup_epochs=1, schedule_epochs=3, ignore_index=dm.ignore_index,
            fusion_args={"projection_dim": 16, "bottleneck_dim": 8, "num_groups": 4},
        )  # fmt: skip
        data = CachedDataModule(dm, ex, tmp_path / "cache", dtype="float32", progress=False)
        trainer = Trainer(
            max_epochs=3, accelerator="cpu", devices=1, logger=False, deterministic=True,
            enable_progress_bar=False, enable_model_summary=False,
            default_root_dir=tmp_path / ("c" if cached else "o"),
        )  # fmt: skip
        if cached:  # build the cache first, then make sure training never runs the extractor
            data.setup("fit")
            ex.forward = lambda *a, **k: pytest.fail("extractor ran despite the cache")  # type: ignore[method-assign]
        trainer.fit(task, datamodule=data if cached else dm)
        return {k: float(v) for k, v in trainer.callback_metrics.items()}

    online, cached = fit(False), fit(True)
    assert "val/overall_accuracy" in online and online.keys() == cached.keys()
    for key in online:
        assert cached[key] == pytest.approx(online[key], rel=1e-3, abs=1e-4), key


def test_another_extractor_or_data_option_never_reuses_a_cache(root: Path, tmp_path: Path) -> None:
    dm = EuroSATDataModule(root, budget=None, batch_size=4)
    first = CachedDataModule(dm, _extractor(), tmp_path, progress=False)
    first.setup("validate")
    other = CachedDataModule(dm, _extractor(seed=3), tmp_path, progress=False)
    other.setup("validate")
    assert other.folders["val"] != first.folders["val"]
    resized = CachedDataModule(EuroSATDataModule(root, budget=None, batch_size=4, image_size=32),
                               _extractor(), tmp_path, progress=False)  # fmt: skip
    resized.setup("validate")
    assert resized.folders["val"] not in (first.folders["val"], other.folders["val"])
    same = CachedDataModule(dm, _extractor(), tmp_path, progress=False)
    same.setup("validate")
    assert same.folders["val"] == first.folders["val"]
    # a folder that holds another configuration is still refused, naming the field
    with pytest.raises(CacheMismatchError, match=r"spec\.seed: cache 0, asked 3"):
        CachedFeatureDataset(first.folders["val"], expected=make_plan(dm.dataset("val"),
                                                                      _extractor(seed=3)))


def test_augmented_training_split_is_refused(root: Path, tmp_path: Path) -> None:
    dm = EuroSATDataModule(root, budget=None, batch_size=4, augment=True)
    with pytest.raises(ConfigError, match="augment=True"):
        CachedDataModule(dm, _extractor(), tmp_path, progress=False).setup("fit")
