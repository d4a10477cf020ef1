"""The reader on real GEO-Bench files (../shared/data/geobench_samples, written by GEO-Bench)."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from satdifuser.data.geobench import GeoBench, detect_geobench
from satdifuser.data.geobench_format import load_task_specs


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> Path:
    path = shared_data / "geobench_samples"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


def _ds(path: Path, **kw: object) -> GeoBench:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sample partitions reuse ids across splits
        return GeoBench(path, **kw)  # type: ignore[arg-type]


def test_samples_folder_is_detected(samples: Path) -> None:
    assert detect_geobench(samples)
    for name in ("m-eurosat-sample", "m-SA-crop-type-sample", "brick-kiln-sample-legacy"):
        assert detect_geobench(samples / name)


def test_m_eurosat_sample(samples: Path) -> None:
    root = samples / "m-eurosat-sample"
    with pytest.warns(UserWarning, match="shares ids with"):
        ds = GeoBench(root, split="val")
    assert ds.task == "m-eurosat" and ds.task_type == "classification" and len(ds) == 5
    # label 0 is Annual Crop (folder order), not the specs' first name "Industrial Buildings"
    assert ds.classes[:3] == ["Annual Crop", "Forest", "Herbaceous Vegetation"]
    assert "task_specs.pkl names overridden" in ds.classes_source and ds.num_classes == 10
    assert load_task_specs(ds.task_dir)["_class"] == "geobench.io.task.TaskSpecifications"
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and int(s["label"]) == 0 and s["id"] == "id_0000"
    with h5py.File(ds.files[0], "r") as h5:
        red = h5["04 - Red"][()]
        assert red.dtype == np.int16
    np.testing.assert_allclose(s["image"][0].numpy(), np.clip(red / 4095, 0, 1), rtol=1e-6)
    assert s["meta"][2].item() == 10.0 and torch.isnan(s["meta"][[0, 1, 3, 4]]).all()
    # band shift detected from band_stats.json ('09' mean ≈14, '10' ≈2887) and corrected
    ms = _ds(root, view="multispectral", ms_scaling="raw")
    assert ms.layout.shifted and ms.layout.order_source.startswith("bands_order")
    cirrus = ms.band_names.index("10 - SWIR - Cirrus")
    assert ms.selected[cirrus].dataset == "09 - Water vapour"
    assert float(ms[0]["image"][cirrus].mean()) < 50  # cirrus is dark; stored '10' is not


def test_m_sa_crop_type_sample(samples: Path) -> None:
    root = samples / "m-SA-crop-type-sample"
    train, val = _ds(root), _ds(root, split="val")
    assert (len(train), len(val)) == (3, 1) and train.task == "m-SA-crop-type"
    assert train.task_type == "segmentation" and train.num_classes == 10
    assert train.classes[0] == "no data"  # specs have _class_names=None: PANGAEA fallback
    s = train[0]
    assert s["image"].shape == (3, 256, 256) and s["mask"].shape == (256, 256)
    assert s["mask"].dtype == torch.int64 and 0 <= int(s["mask"].min()) <= int(s["mask"].max()) < 10
    # stored 8-bit: /255 gives a usable image (mean ≈0.1-0.3); /4095 would be ≈0.01
    assert 0.05 < float(s["image"].mean()) < 0.5
    ms = _ds(root, view="multispectral", ms_scaling="raw")
    assert ms.band_names[-1] == "Cloud Probability" and len(ms.band_names) == 13
    assert "10 - SWIR - Cirrus" not in ms.band_names
    assert isinstance(train.plot(s).axes[0].get_title(), str)


def test_brick_kiln_legacy_sample(samples: Path) -> None:
    root = samples / "brick-kiln-sample-legacy"
    ds = _ds(root, view="multispectral", ms_scaling="raw")
    assert ds.task == "m-brick-kiln"
    assert ds.layout.order_source == "task_specs.bands_info"  # no bands_order in old files
    assert ds.classes == ["not brick kiln", "brick kiln"]
    specs = load_task_specs(ds.task_dir)
    assert specs["_class"] == "ccb.io.task.TaskSpecifications"
    assert specs["eval_loss"] == "ccb.io.task.Accuracy"
    s = ds[0]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (13, 64, 64)
    with h5py.File(ds.files[0], "r") as h5:
        assert h5["02 - Blue"].dtype == np.float64
        np.testing.assert_allclose(s["image"][1].numpy(), h5["02 - Blue"][()], rtol=1e-6)
    rgb = _ds(root)[0]["image"]
    assert rgb.shape == (3, 64, 64) and 0 <= float(rgb.min()) and float(rgb.max()) <= 1


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_m_eurosat_labels_are_eurosat_folder_indices(samples: Path, shared_data: Path) -> None:
    """The samples labelled 0 are EuroSAT AnnualCrop images (docs/geobench_classes.md)."""
    from PIL import Image

    ds = _ds(samples / "m-eurosat-sample")
    folder = shared_data / "eurosat_rgb" / "AnnualCrop"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    # the converter wrote the train split in ImageFolder order: AnnualCrop_1, _10, _100, ...
    for i, name in enumerate(["AnnualCrop_1", "AnnualCrop_10", "AnnualCrop_100"]):
        s = ds[i]
        rgb = np.asarray(Image.open(folder / f"{name}.jpg").convert("RGB"))
        assert int(s["label"]) == 0 and ds.classes[0] == "Annual Crop"
        assert _corr(s["image"].numpy().transpose(1, 2, 0), rgb) > 0.98


def test_sa_crop_type_label_values(samples: Path) -> None:
    """Sample files hold 0, 2, 3, 5, 6; 0 covers the unlabelled land between fields."""
    ds = _ds(samples / "m-SA-crop-type-sample")
    vals, counts = torch.unique(ds[0]["mask"], return_counts=True)
    assert vals.tolist() == [0, 2, 3, 5, 6]
    assert counts.tolist() == [29273, 589, 18782, 16867, 25]
    assert [ds.classes[v] for v in (0, 2, 3, 5)] == [
        "no data", "Planted pastures (perennial)", "Fallow", "Weeds"]  # fmt: skip
    assert ds.nodata_class == 0
