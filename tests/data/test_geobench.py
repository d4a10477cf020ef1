from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from fixtures.geobench import make as gbfx
from satdifuser.data.geobench import GeoBench, detect_geobench, find_tasks
from satdifuser.data.geobench_plot import summary
from satdifuser.data.geobench_tasks import GEOBENCH_TASKS, infer_task_name
from satdifuser.errors import DatasetNotFoundError, UnknownNameError

ALL_TASKS = list(GEOBENCH_TASKS)


def _raw(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return np.asarray(h5[name][()], dtype=np.float64)


def _quiet(**kw: object) -> GeoBench:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GeoBench(**kw)  # type: ignore[arg-type]


def test_table_has_the_twelve_tasks_with_consistent_facts() -> None:
    assert len(GEOBENCH_TASKS) == 12 and set(ALL_TASKS) == set(gbfx.TASKS)
    for name, info in GEOBENCH_TASKS.items():
        bench, kind, k = gbfx.TASKS[name][:3]
        assert (info.benchmark, info.task_type, info.num_classes) == (bench, kind, k)
        assert info.image_size == (256 if info.native_size <= 256 else 512)
        assert info.class_names is None or len(info.class_names) == k
    assert GEOBENCH_TASKS["m-so2sat"].scale == pytest.approx(10000 / 4095)
    assert GEOBENCH_TASKS["m-chesapeake"].scale == 1.0


@pytest.mark.parametrize("task", ALL_TASKS)
def test_every_task_shape_reads_back_exactly(tmp_path: Path, task: str) -> None:
    fx = gbfx.make_task(tmp_path, task)
    info = GEOBENCH_TASKS[task]
    for split, key in (("train", "train"), ("val", "valid"), ("test", "test")):
        ds = GeoBench(tmp_path, task=task, split=split)
        assert ds.ids == fx.ids[key] and len(ds) == len(fx.ids[key])
        assert (ds.task_type, ds.num_classes) == (info.task_type, info.num_classes)
        assert len(ds.classes) == info.num_classes
    ds = GeoBench(tmp_path, task=task, split="train")
    s = ds[1]
    assert s["id"] == fx.ids["train"][1]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 16, 16)
    assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
    # RGB view = raw red band x task scale, clipped (method.md §2, m-SA-crop-type /255)
    red = next(d for d in fx.descriptors if d.startswith(info.rgb_bands[0]))
    want = np.clip(_raw(ds.files[1], red) * info.scale, 0, 1)
    np.testing.assert_allclose(s["image"][0].numpy(), want, rtol=1e-5, atol=1e-6)
    assert s["meta"].shape == (7,) and s["meta"].dtype == torch.float32
    assert float(s["meta"][2]) == pytest.approx(gbfx.GRID[task])
    if info.task_type == "segmentation":
        assert s["mask"].dtype == torch.int64 and "label" not in s
        np.testing.assert_array_equal(s["mask"].numpy(), fx.labels[s["id"]])
    elif info.task_type == "multilabel":
        assert s["label"].dtype == torch.float32 and s["label"].shape == (info.num_classes,)
        np.testing.assert_array_equal(s["label"].numpy(), fx.labels[s["id"]])
    else:
        assert s["label"].dtype == torch.int64 and s["label"].ndim == 0
        assert int(s["label"]) == fx.labels[s["id"]]
    ms = GeoBench(tmp_path, task=task, view="multispectral", ms_scaling="raw")
    n_channels = sum(gbfx.NEON_CHANNELS if d == "Neon" else 1 for d in fx.descriptors)
    assert ms[0]["image"].shape == (n_channels, 16, 16)


def test_class_names_come_from_task_specs(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-forestnet")
    ds = GeoBench(tmp_path, task="m-forestnet")
    assert ds.classes[3] == "m-forestnet class 3" and ds.classes_source == "task_specs.pkl"


def test_class_names_fall_back_to_the_table_when_specs_have_none(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-SA-crop-type")  # specs carry _class_names=None, like the real file
    ds = GeoBench(tmp_path, task="m-SA-crop-type")
    assert ds.classes[0] == "no data" and "crop_type_south_africa.py" in ds.classes_source


#: The names the real task specs / PANGAEA give: paper order (m-eurosat), shifted by one
#: against the label values (m-chesapeake). See docs/geobench_classes.md.
WRONG_SPECS_NAMES = {
    "m-eurosat": ["Industrial Buildings", "Residential Buildings", "Annual Crop",
                  "Permanent Crop", "River", "Sea and Lake", "Herbaceous Vegetation", "Highway",
                  "Pasture", "Forest"],
    "m-chesapeake": ["water", "tree-canopy-forest", "low-vegetation-field", "barren-land",
                     "impervious-other", "impervious-roads", "no-data"],
}  # fmt: skip


@pytest.mark.parametrize("specs_names", [True, False])
def test_verified_class_tables_override_the_specs(tmp_path: Path, specs_names: bool) -> None:
    for task, wrong in WRONG_SPECS_NAMES.items():
        gbfx.make_task(tmp_path, task, class_names=wrong if specs_names else None)
    es = GeoBench(tmp_path, task="m-eurosat")
    assert es.classes[0] == "Annual Crop" and es.classes[4] == "Industrial Buildings"
    assert es.classes[9] == "Sea and Lake" and "alphabetical" in es.classes_source
    ch = GeoBench(tmp_path, task="m-chesapeake")
    assert ch.classes[:3] == ["no data", "water", "tree-canopy-forest"]
    assert ch.classes[6] == "impervious-roads" and ch.nodata_class == 0
    assert "overridden" in es.classes_source  # the fixture always names classification classes
    assert ("overridden" in ch.classes_source) is specs_names


@pytest.mark.parametrize("family", ["geobench", "geobench.io", "ccb.io", "plain"])
def test_all_pickle_module_families_read(tmp_path: Path, family: str) -> None:
    fx = gbfx.make_task(tmp_path, "m-brick-kiln", family=family)
    ds = GeoBench(tmp_path, task="m-brick-kiln", split="test")
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [fx.labels[i] for i in ds.ids]
    assert ds.classes == ["m-brick-kiln class 0", "m-brick-kiln class 1"]


def test_band_order_falls_back_to_specs_then_sorted_keys(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-chesapeake", bands_order=False)
    ds = GeoBench(tmp_path, task="m-chesapeake", view="multispectral", ms_scaling="raw")
    assert ds.layout.order_source == "task_specs.bands_info"
    assert ds.band_names == ["Red", "Green", "Blue", "NearInfrared"]  # not alphabetical
    (fx.task_dir / "task_specs.pkl").unlink()
    ds = GeoBench(tmp_path, task="m-chesapeake", view="multispectral", ms_scaling="raw")
    assert ds.layout.order_source == "sorted dataset names"
    assert ds.band_names == ["Blue", "Green", "NearInfrared", "Red"]
    # the RGB view still picks bands by name, whatever the order
    rgb = GeoBench(tmp_path, task="m-chesapeake")[0]["image"]
    np.testing.assert_allclose(rgb[0].numpy(), _raw(ds.files[0], "Red"), rtol=1e-6)


def test_so2sat_bands_keep_their_written_order(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-so2sat")
    ds = GeoBench(tmp_path, task="m-so2sat", view="multispectral", ms_scaling="raw")
    assert ds.band_names == fx.descriptors  # S2 then S1, not interleaved by sorting


def test_bands_select_by_alt_name_descriptor_and_date_prefix(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-cashew-plant")  # dated descriptors
    ds = GeoBench(tmp_path, task="m-cashew-plant", view="multispectral", ms_scaling="raw",
                  bands=["nir", "04 - Red", "cloud probability", "8A"])  # fmt: skip
    assert ds.band_names == ["08 - NIR", "04 - Red", "Cloud Probability",
                             "08A - Vegetation Red Edge"]  # fmt: skip
    s = ds[0]
    red = next(d for d in fx.descriptors if d.startswith("04 - Red_"))
    np.testing.assert_array_equal(s["image"][1].numpy(), _raw(ds.files[0], red))
    assert s["meta"][4:].tolist() == [2019.0, 5.0, 17.0]  # date from the dated band


def test_three_d_band_is_split_into_channels_and_resampled(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-NeonTree")
    ds = GeoBench(tmp_path, task="m-NeonTree", view="multispectral", ms_scaling="raw",
                  bands=["Neon", "Red", "Neon[2]"])  # fmt: skip
    n = gbfx.NEON_CHANNELS
    assert ds.band_names == [f"Neon[{i}]" for i in range(n)] + ["Red", "Neon[2]"]
    s = ds[0]
    assert s["image"].shape == (n + 2, 16, 16) and s["mask"].shape == (16, 16)
    neon = _raw(ds.files[0], "Neon")  # (4, 4, n) on a coarser grid
    up = torch.nn.functional.interpolate(
        torch.from_numpy(neon[..., 2]).float()[None, None], size=(16, 16), mode="bilinear"
    )[0, 0]
    torch.testing.assert_close(s["image"][2], up)
    torch.testing.assert_close(s["image"][-1], up)


def test_float64_legacy_data_is_cast_to_float32(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-brick-kiln", dtype="float64", family="ccb.io", bands_order=False)
    s = GeoBench(tmp_path, task="m-brick-kiln", view="multispectral")[0]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (13, 16, 16)


def test_standardize_uses_band_stats(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-pv4ger")
    ds = GeoBench(tmp_path, task="m-pv4ger", view="multispectral", ms_scaling="standardize")
    stats = json.loads((ds.task_dir / "band_stats.json").read_text())["Green"]
    want = (_raw(ds.files[0], "Green") - stats["mean"]) / stats["std"]
    np.testing.assert_allclose(ds[0]["image"][1].numpy(), want, rtol=1e-5, atol=1e-5)


def test_eurosat_band_shift_is_corrected_by_default(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat")  # band_stats: '09' ≈ cirrus, as in the real data
    ds = GeoBench(tmp_path, view="multispectral", ms_scaling="raw", bands=["8A", "11"])
    assert ds.layout.shifted
    assert [(e.name, e.dataset) for e in ds.selected] == [
        ("08A - Vegetation Red Edge", "12 - SWIR"),
        ("11 - SWIR", "10 - SWIR - Cirrus"),
    ]
    np.testing.assert_array_equal(ds[0]["image"][0].numpy(), _raw(ds.files[0], "12 - SWIR"))
    full = GeoBench(tmp_path, view="multispectral", ms_scaling="raw")
    assert full.band_names[8:] == ["08A - Vegetation Red Edge", "09 - Water vapour",
                                   "10 - SWIR - Cirrus", "11 - SWIR", "12 - SWIR"]  # fmt: skip


def test_eurosat_band_shift_uncorrected_warns(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat")
    with pytest.warns(UserWarning, match="pass fix_band_shift=True"):
        ds = GeoBench(tmp_path, view="multispectral", fix_band_shift=False, bands=["8A"])
    assert ds.selected[0].dataset == "08A - Vegetation Red Edge"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GeoBench(tmp_path, fix_band_shift=False)  # RGB is unaffected: no warning


def test_partitions_symlinks_and_split_aliases(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-bigearthnet", n=(10, 2, 2), symlink_default=True)
    assert (fx.task_dir / "default_partition.json").is_symlink()
    assert GeoBench(tmp_path, task="m-bigearthnet").ids == fx.ids["train"]
    for alias in ("val", "valid", "validation"):
        assert GeoBench(tmp_path, task="m-bigearthnet", split=alias).ids == fx.ids["valid"]  # type: ignore[arg-type]
    half = GeoBench(tmp_path, task="m-bigearthnet", partition="0.50x_train")
    assert len(half) == 5 and set(half.ids) <= set(fx.ids["train"])
    assert len(GeoBench(tmp_path, task="m-bigearthnet", partition="0.01x_train")) == 1


def test_overlapping_splits_warn_but_load(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat", overlap=True)
    with pytest.warns(UserWarning, match=r"split 'test' shares ids with train \(3\)"):
        ds = GeoBench(tmp_path, split="test")
    assert len(ds) == 3


def test_root_may_be_benchmark_dir_or_task_dir(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-nz-cattle")
    a = GeoBench(tmp_path / "segmentation_v1.0", task="m-nz-cattle")
    b = GeoBench(tmp_path / "segmentation_v1.0" / "m-nz-cattle")  # task inferred from the dir
    assert a.task == b.task == "m-nz-cattle" and a.ids == b.ids
    gbfx.make_task(tmp_path, "m-pv4ger-seg", dir_name="m-pv4ger-seg-sample")
    assert GeoBench(tmp_path / "m-pv4ger-seg-sample").task == "m-pv4ger-seg"
    assert infer_task_name("brick-kiln-sample-legacy") == "m-brick-kiln"
    assert infer_task_name("whatever", "southAfricaCropType") == "m-SA-crop-type"


def test_task_found_in_a_folder_of_sample_dirs(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat", dir_name="m-eurosat-sample")
    gbfx.make_task(tmp_path, "m-pv4ger", dir_name="m-pv4ger-sample")
    assert GeoBench(tmp_path, task="m-pv4ger").task_dir.name == "m-pv4ger-sample"


def test_root_none_uses_satdifuser_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gbfx.make_task(tmp_path / "geobench", "m-pv4ger")
    monkeypatch.setenv("SATDIFUSER_DATA", str(tmp_path))
    assert len(GeoBench(None, task="m-pv4ger")) == 3


def test_missing_task_and_unknown_task_name_are_clear(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-pv4ger")
    with pytest.raises(DatasetNotFoundError, match=r"no m-eurosat task under root=.*classification_v1\.0/m-eurosat/task_specs\.pkl"):  # noqa: E501
        GeoBench(tmp_path, task="m-eurosat")
    with pytest.raises(UnknownNameError, match="did you mean 'm-NeonTree'"):
        GeoBench(tmp_path, task="m-neontree")


def test_georeferenced_bands_give_lon_lat(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-pv4ger", georef=True)
    meta = GeoBench(tmp_path, task="m-pv4ger")[1]["meta"]
    # transform (0.001, 0, 10 + i, 0, -0.001, 50) on a 16 px grid, sample i = 1
    assert meta[0].item() == pytest.approx(11.008, abs=1e-4)
    assert meta[1].item() == pytest.approx(49.992, abs=1e-4)
    assert math.isnan(meta[3].item())  # cloud cover is never known


def test_find_tasks_lists_every_task_dir(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat")
    gbfx.make_task(tmp_path, "m-chesapeake")
    found = find_tasks(tmp_path)
    assert found == {
        "m-eurosat": tmp_path / "classification_v1.0" / "m-eurosat",
        "m-chesapeake": tmp_path / "segmentation_v1.0" / "m-chesapeake",
    }
    assert list(find_tasks(tmp_path / "segmentation_v1.0" / "m-chesapeake")) == ["m-chesapeake"]
    gbfx.make_task(tmp_path / "odd", "m-eurosat", dir_name="mystery")  # specs name: eurosat
    assert find_tasks(tmp_path / "odd") == {"m-eurosat": tmp_path / "odd" / "mystery"}
    assert GeoBench(tmp_path / "odd" / "mystery").task == "m-eurosat"


def test_detect_geobench(tmp_path: Path) -> None:
    assert not detect_geobench(tmp_path)
    gbfx.make_task(tmp_path, "m-eurosat")
    assert detect_geobench(tmp_path)
    assert detect_geobench(tmp_path / "classification_v1.0")
    assert detect_geobench(tmp_path / "classification_v1.0" / "m-eurosat")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.png").write_bytes(b"x")
    assert not detect_geobench(tmp_path / "plain")


def test_plot_and_summary(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    gbfx.make_task(tmp_path, "m-SA-crop-type")
    gbfx.make_task(tmp_path, "m-bigearthnet")
    seg = GeoBench(tmp_path, task="m-SA-crop-type", view="multispectral")
    fig = seg.plot(seg[0], suptitle="x")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    cls = GeoBench(tmp_path, task="m-bigearthnet")
    assert isinstance(cls.plot(cls[0]), Figure)
    info = summary(seg)
    assert info["num_samples"] == 3 and info["count_unit"] == "pixels"
    assert info["split_sizes"] == {"train": 3, "valid": 2, "test": 2}
    assert len(info["partitions"]) == 8 and "default" in info["partitions"]
    assert sum(info["class_counts"].values()) == 3 * 16 * 16
    assert info["image_sizes"] == {"16x16": 3}
    gbfx.make_task(tmp_path, "m-so2sat", n=(40, 1, 1))
    so2 = summary(GeoBench(tmp_path, task="m-so2sat"), max_samples=2)
    assert so2["class_counts_source"] == "label_map.json (whole split)"
    assert sum(so2["class_counts"].values()) == 40 and so2["class_counts"]["m-so2sat class 0"] == 3
    ml = summary(cls)
    assert sum(ml["class_counts"].values()) == int(sum(cls[i]["label"].sum() for i in range(3)))


def test_ignore_nodata_maps_the_nodata_class(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-chesapeake")
    plain = GeoBench(tmp_path, task="m-chesapeake")[0]["mask"]
    ds = GeoBench(tmp_path, task="m-chesapeake", ignore_nodata=True)
    mask = ds[0]["mask"]
    assert ds.classes[ds.nodata_class] == "no data" and ds.nodata_class == 0
    assert (plain == 0).any() and (plain == 6).any()
    assert bool((mask[plain == 0] == ds.ignore_index).all())
    assert bool((mask[plain != 0] == plain[plain != 0]).all())  # class 6 (roads) is kept
