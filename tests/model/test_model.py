"""SatDiFuserModel: one object from features to predictions, saved without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from satdifuser.backbones import create_backbone
from satdifuser.errors import CheckpointError, ConfigError, InputError
from satdifuser.features import FeatureExtractor
from satdifuser.fusion import create_fusion
from satdifuser.heads import create_head
from satdifuser.model import ChannelStandardizer, SatDiFuserModel

SMALL = {"projection_dim": 8, "bottleneck_dim": 4, "num_groups": 2}


def make_model(task: str = "classification", seed: int = 0, pool: int | None = 4,
               fusion: str = "global_weighted") -> SatDiFuserModel:  # fmt: skip
    fx = FeatureExtractor(create_backbone("tiny-pixel", seed=seed), timesteps=[10, 50],
                          image_size=32, pool=pool)  # fmt: skip
    torch.manual_seed(1)
    args = {k: v for k, v in SMALL.items() if fusion != "concat" or k != "bottleneck_dim"}
    fu = create_fusion(fusion, fx.feature_info, **args)
    head = create_head("upernet" if task == "segmentation" else "linear", fu.out_channels, 3,
                       **({"channels": 8} if task == "segmentation" else {}))  # fmt: skip
    std = ChannelStandardizer([f.channels for f in fx.feature_info])
    std.fit([fx(torch.rand(6, 3, 32, 32))])
    with torch.no_grad():
        for p in [*fu.parameters(), *head.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
    return SatDiFuserModel(fx, fu, head, task, ["a", "b", "c"], std)


def test_save_then_from_pretrained_predicts_the_same(tmp_path: Path) -> None:
    model = make_model()
    x = torch.rand(3, 3, 32, 32)
    folder = model.save_pretrained(tmp_path / "m", card={"data": "random"})
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json",
                                                       "model.safetensors"]  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    assert config["features"]["args"]["pool"] == 4 and config["standardize"] is True
    assert config["fusion"] == {"name": "global_weighted", "args": SMALL}
    loaded = SatDiFuserModel.from_pretrained(folder)
    assert torch.allclose(model.predict_proba(x), loaded.predict_proba(x), atol=1e-6)
    assert torch.equal(model.predict(x), loaded.predict(x))
    assert loaded.class_names == ["a", "b", "c"] and "random" in (folder / "README.md").read_text()


@pytest.mark.parametrize("fusion", ["concat", "local_weighted", "moe"])
def test_every_fusion_round_trips(tmp_path: Path, fusion: str) -> None:
    model = make_model(fusion=fusion).eval()
    x = torch.rand(2, 3, 32, 32)
    loaded = SatDiFuserModel.from_pretrained(model.save_pretrained(tmp_path / fusion))
    assert torch.allclose(model.predict_proba(x), loaded.predict_proba(x), atol=1e-6)


def test_segmentation_model_predicts_full_resolution_maps(tmp_path: Path) -> None:
    model = make_model("segmentation", pool=None)
    probs = SatDiFuserModel.from_pretrained(model.save_pretrained(tmp_path / "s")).predict_proba(
        torch.rand(2, 3, 32, 32)
    )
    assert probs.shape == (2, 3, 32, 32)
    assert torch.allclose(probs.sum(1), torch.ones(2, 32, 32), atol=1e-5)


def test_other_backbone_weights_are_refused(tmp_path: Path) -> None:
    folder = make_model(seed=0).save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="trained on backbone weights"):
        SatDiFuserModel.from_pretrained(folder, backbone=create_backbone("tiny-pixel", seed=1))


def test_damaged_or_foreign_folders_are_one_clear_error(tmp_path: Path) -> None:
    folder = make_model().save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="not a satdifuser model folder"):
        SatDiFuserModel.from_pretrained(tmp_path / "nothing")
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        SatDiFuserModel.from_pretrained(folder)
    (folder / "config.json").write_text('{"format": "other"}')
    with pytest.raises(CheckpointError, match="format 'other'"):
        SatDiFuserModel.from_pretrained(folder)


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    model = make_model()
    with torch.no_grad():
        next(model.head.parameters()).fill_(float("nan"))
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        SatDiFuserModel.from_pretrained(model.save_pretrained(tmp_path / "m"))


def test_standardizer_statistics_are_those_of_the_training_rows() -> None:
    maps = [torch.randn(50, 4, 3, 3) * 5 + 2, torch.randn(50, 2, 1, 1) * 0.1]
    std = ChannelStandardizer([4, 2])
    assert std.fit([[m[:20] for m in maps], [m[20:] for m in maps]]) == 50
    out = std(maps)
    for o in out:
        assert torch.allclose(o.mean(dim=(0, 2, 3)), torch.zeros(o.shape[1]), atol=1e-5)
        assert torch.allclose(o.std(dim=(0, 2, 3)), torch.ones(o.shape[1]), atol=1e-4)
    with pytest.raises(ConfigError, match="never fitted"):
        ChannelStandardizer([4, 2])(maps)


def test_raw_rasters_follow_the_input_contract() -> None:
    model = make_model()
    arr = np.full((3, 4, 4), 255, np.uint8)
    assert torch.allclose(model.prepare_raster(arr, "a.png"), torch.ones(3, 4, 4))
    with pytest.raises(InputError, match=r"a\.tif: has 4 bands"):
        model.prepare_raster(np.zeros((4, 4, 4), np.uint8), "a.tif")
    with pytest.raises(InputError, match=r"uint16 values up to 0, .* no raster_scale.*--scale"):
        model.prepare_raster(np.zeros((3, 4, 4), np.uint16), "b.tif")
    with pytest.raises(InputError, match="NaN or Inf"):
        model.prepare_raster(np.full((3, 4, 4), np.nan, np.float32), "c.tif")
    model.input_contract["raster_scale"] = 10000
    out = model.prepare_raster(np.full((3, 2, 2), 5000, np.uint16), "s2.tif")
    assert torch.allclose(out, torch.full((3, 2, 2), 0.5))
    with pytest.raises(InputError, match="trained on 3"):
        model.predict(torch.rand(1, 4, 32, 32))


def test_a_model_with_an_input_spec_takes_zscored_13_bands_and_saves_it(tmp_path: Path) -> None:
    from satdifuser.model.inputs import InputSpec

    mean, std = [1000.0 + 100 * i for i in range(13)], [500.0 + 10 * i for i in range(13)]
    spec = InputSpec("eurosat_ms", "zscore", scale=2750, mean=mean, std=std, adapter="learned")
    base = make_model()
    model = SatDiFuserModel(base.extractor, base.fusion, base.head, "classification",
                            base.class_names, base.standardizer,
                            input_contract={"spec": spec.to_config()})  # fmt: skip
    assert model.in_channels == 13
    raw = torch.rand(2, 13, 32, 32) * 4000
    z = (raw - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    rgb = (raw[:, [3, 2, 1]] / 2750).clamp(0, 1)  # B04, B03, B02
    assert torch.allclose(model.predict_proba(z), base.predict_proba(rgb), atol=1e-5)
    with torch.no_grad():
        model.input_adapter.mix.weight.add_(0.01)  # a trained band mix travels with the model
    loaded = SatDiFuserModel.from_pretrained(model.save_pretrained(tmp_path / "ms"))
    assert loaded.in_channels == 13
    assert torch.allclose(model.predict_proba(z), loaded.predict_proba(z), atol=1e-6)
    with pytest.raises(InputError, match="13"):
        loaded.predict(torch.rand(1, 3, 32, 32))


def test_a_model_on_a_subset_of_the_maps_round_trips(tmp_path: Path) -> None:
    from satdifuser.features.cache_view import SelectMaps

    base = make_model()
    ex = SelectMaps(base.extractor, timesteps=[50])
    fu = create_fusion("global_weighted", ex.feature_info, **SMALL)
    head = create_head("linear", fu.out_channels, 3)
    model = SatDiFuserModel(ex, fu, head, "classification", ["a", "b", "c"]).eval()
    loaded = SatDiFuserModel.from_pretrained(model.save_pretrained(tmp_path / "sel"))
    assert [f.timestep for f in loaded.feature_info] == [50] * len(loaded.feature_info)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(model.predict_proba(x), loaded.predict_proba(x), atol=1e-6)
