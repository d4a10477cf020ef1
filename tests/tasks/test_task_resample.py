"""A task fitted on resampled tiles saves the factor in the model it writes (input.resample)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from task_fakes import SMALL_GW, CountingExtractor, tiny_trainer

from fixtures.mask_folder.make import make_dubai
from satdifuser.data.scaled_tiles import FitTestDataModule, ScaledDubaiDataModule
from satdifuser.data.wrapping import WrappingDataModule
from satdifuser.errors import ConfigError
from satdifuser.tasks import SegmentationTask


class Wrapped(WrappingDataModule):
    """A minimal wrapper (like the feature cache) serving the wrapped module's loaders."""

    def __init__(self, datamodule: ScaledDubaiDataModule) -> None:
        super().__init__()
        self.datamodule = datamodule

    def setup(self, stage: str | None = None) -> None:
        self.datamodule.setup(stage)

    def train_dataloader(self) -> object:
        return self.datamodule.train_dataloader()

    def val_dataloader(self) -> object:
        return self.datamodule.val_dataloader()


def _dm(root: Path, scale: float) -> ScaledDubaiDataModule:
    return ScaledDubaiDataModule(root, [1], [8], scale=scale, window=16, batch_size=2,
                                 train_limit=1, val_limit=1)  # fmt: skip


def test_model_fitted_on_scaled_tiles_records_the_factor(tmp_path: Path) -> None:
    make_dubai(tmp_path / "data")
    dm = _dm(tmp_path / "data", 0.5)
    data = FitTestDataModule(Wrapped(dm), dm)
    assert dm.resample == 0.5 and data.resample == 0.5
    task = SegmentationTask(CountingExtractor(), 6, fusion="global_weighted", fusion_args=SMALL_GW,
                            head="fpn", head_args={"channels": 8}, ignore_index=255,
                            early_stopping_patience=None)  # fmt: skip
    assert task.model.resample == 1.0  # nothing known before fit
    tiny_trainer(tmp_path / "run").fit(task, data)
    assert task.model.resample == 0.5
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["input"]["resample"] == 0.5


def test_fit_and_test_data_with_different_factors_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"resamples pixels by 0\.5 but the test data by 0\.25"):
        FitTestDataModule(_dm(tmp_path, 0.5), _dm(tmp_path, 0.25))


def test_segmentation_model_keeps_its_scoring_window_as_predict_tile(tmp_path: Path) -> None:
    from satdifuser.model import SatDiFuserModel

    task = SegmentationTask(CountingExtractor(), 6, fusion="global_weighted", fusion_args=SMALL_GW,
                            head="fpn", head_args={"channels": 8}, ignore_index=255,
                            sliding_window=24, early_stopping_patience=None)  # fmt: skip
    model = task.model
    assert model.input_contract["window"] == 24 and model.tile_size == 24
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["input"]["window"] == 24
    loaded = SatDiFuserModel.from_pretrained(tmp_path / "m", extractor=CountingExtractor())
    assert loaded.tile_size == 24
    plain = SegmentationTask(CountingExtractor(), 6, fusion="global_weighted",
                             fusion_args=SMALL_GW, head="fpn", head_args={"channels": 8},
                             early_stopping_patience=None).model  # fmt: skip
    assert plain.input_contract["window"] is None and plain.tile_size != 24
