"""input.resample: the factor native pixels were resized by in training, saved and applied."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_model import make_model

from satdifuser.errors import ConfigError
from satdifuser.model import SatDiFuserModel
from satdifuser.model.resample import check_resample, resize_images


def _with_resample(task: str, factor: float | None) -> SatDiFuserModel:
    m = make_model(task, pool=None if task == "segmentation" else 4)
    return SatDiFuserModel(m.extractor, m.fusion, m.head, task, m.class_names, m.standardizer,
                           resample=factor)  # fmt: skip


def test_resample_round_trips_through_save_and_from_pretrained(tmp_path: Path) -> None:
    model = _with_resample("segmentation", 0.25)
    folder = model.save_pretrained(tmp_path / "m")
    assert json.loads((folder / "config.json").read_text())["input"]["resample"] == 0.25
    assert '"resample": 0.25' in (folder / "README.md").read_text()
    assert SatDiFuserModel.from_pretrained(folder).resample == 0.25


def test_model_folder_saved_before_resample_loads_as_one(tmp_path: Path) -> None:
    folder = _with_resample("classification", None).save_pretrained(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    assert config["input"].pop("resample") == 1.0
    (folder / "config.json").write_text(json.dumps(config))
    loaded = SatDiFuserModel.from_pretrained(folder)
    assert loaded.resample == 1.0 and loaded.input_contract["resample"] == 1.0


def test_argument_overrides_the_contract() -> None:
    m = make_model()
    model = SatDiFuserModel(m.extractor, m.fusion, m.head, "classification", m.class_names,
                            input_contract={"resample": 0.25}, resample=0.5)  # fmt: skip
    assert model.resample == 0.5
    kept = SatDiFuserModel(m.extractor, m.fusion, m.head, "classification", m.class_names,
                           input_contract={"resample": 0.25})  # fmt: skip
    assert kept.resample == 0.25


@pytest.mark.parametrize("bad", [0, -0.5, math.nan, math.inf, 4.5, "x"])
def test_bad_factor_is_a_one_line_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"resample=.* must be a number in \(0, 4\]") as info:
        _with_resample("classification", bad)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="must be a number"):
        make_model().predict_proba(torch.rand(1, 3, 32, 32), resample=bad)  # type: ignore[arg-type]


def test_factor_range_edges_are_accepted() -> None:
    assert check_resample(4) == 4.0 and check_resample(1e-3) == 1e-3


def test_classification_resizes_images_by_the_factor_before_the_model() -> None:
    model = _with_resample("classification", 0.5)
    seen: list[tuple[int, ...]] = []
    model.extractor.register_forward_pre_hook(lambda _m, a: seen.append(tuple(a[0].shape)))
    x = torch.rand(2, 3, 64, 48)
    got = model.predict_proba(x)
    assert seen == [(2, 3, 32, 24)]
    small = F.interpolate(x, size=(32, 24), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(got, model.predict_proba(small, resample=1.0), atol=1e-6)
    assert torch.equal(model.predict(x), got.argmax(1))
    assert not torch.allclose(got, model.predict_proba(x, resample=1.0), atol=1e-4)


def test_segmentation_predicts_at_model_scale_and_returns_native_maps() -> None:
    model = _with_resample("segmentation", 0.5)
    x = torch.rand(2, 3, 64, 64)
    probs = model.predict_proba(x)
    assert probs.shape == (2, 3, 64, 64)
    assert torch.allclose(probs.sum(1), torch.ones(2, 64, 64), atol=1e-5)
    at_model = model.predict_proba(resize_images(x, (32, 32)), resample=1.0)
    up = F.interpolate(at_model, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(probs, up, atol=1e-6)
    assert model.predict(x).shape == (2, 64, 64)


def test_integer_pixels_keep_their_dtype_when_resized() -> None:
    x = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    out = resize_images(x, (4, 4))
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 4, 4)
    ref = F.interpolate(x.float(), size=(4, 4), mode="bilinear", antialias=True,
                        align_corners=False)  # fmt: skip
    assert (out.float() - ref).abs().max() <= 0.5
