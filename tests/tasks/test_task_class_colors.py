"""A task fitted on colour-coded masks saves the data's class colours in the model it writes."""

from __future__ import annotations

import json
from pathlib import Path

from task_fakes import SMALL_GW, CountingExtractor, TinyDataModule, tiny_trainer
from test_task_resample import Wrapped

from fixtures.mask_folder.make import make_dubai
from satdifuser.data.dubai_aerial import DUBAI_COLORS
from satdifuser.data.mask_datamodule import DubaiAerialDataModule
from satdifuser.data.plotting import hex_to_rgb
from satdifuser.data.scaled_tiles import FitTestDataModule, ScaledDubaiDataModule
from satdifuser.tasks import SegmentationTask

DUBAI_RGB = [hex_to_rgb(c) for c in DUBAI_COLORS]


def _task(k: int = 6) -> SegmentationTask:
    return SegmentationTask(CountingExtractor(), k, fusion="global_weighted", fusion_args=SMALL_GW,
                            head="fpn", head_args={"channels": 8}, ignore_index=255,
                            early_stopping_patience=None)  # fmt: skip


def test_dubai_data_modules_expose_the_mask_colours(tmp_path: Path) -> None:
    make_dubai(tmp_path)
    assert DubaiAerialDataModule(tmp_path, train_tiles=[1], val_tiles=[8]).class_colors == DUBAI_RGB
    scaled = ScaledDubaiDataModule(tmp_path, [1], [8], scale=0.5, window=16, train_limit=1)
    assert scaled.class_colors == DUBAI_RGB
    assert FitTestDataModule(Wrapped(scaled), scaled).class_colors == DUBAI_RGB  # forwarded


def test_model_fitted_on_dubai_tiles_records_the_class_colours(tmp_path: Path) -> None:
    make_dubai(tmp_path / "data")
    dm = ScaledDubaiDataModule(tmp_path / "data", [1], [8], scale=0.5, window=16, batch_size=2,
                               train_limit=1, val_limit=1)  # fmt: skip
    task = _task()
    assert task.model.class_colors is None  # nothing known before fit
    tiny_trainer(tmp_path / "run").fit(task, FitTestDataModule(Wrapped(dm), dm))
    assert task.model.class_colors == DUBAI_RGB
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["class_colors"] == [list(c) for c in DUBAI_RGB]
    assert config["class_names"] == list(dm.classes)


def test_data_without_a_colour_table_saves_none() -> None:
    task = _task(3)
    task.check_datamodule(TinyDataModule("seg", k=3))
    assert task.class_colors is None and task.model.config()["class_colors"] is None
