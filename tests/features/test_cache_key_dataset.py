"""The cache key covers the dataset and every option that changes its images or labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from cache_fakes import FakeExtractor, ToyDataset

from fixtures.geobench import make as gbfx
from fixtures.geotiff import make as gtfx
from satdifuser.data import GeoTiffFolder
from satdifuser.data.geobench import GeoBench
from satdifuser.errors import CacheMismatchError
from satdifuser.features.cache import build_feature_cache
from satdifuser.features.cache_key import dataset_identity
from satdifuser.features.cache_plan import make_plan, split_folder


class ScaledToy(ToyDataset):
    """A toy dataset with an option that changes the pixels."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(n=6, size=8)
        self.scale = scale

    def __getitem__(self, i: int) -> dict:
        sample = super().__getitem__(i)
        sample["image"] = (sample["image"] * self.scale).clamp(0, 1)
        return sample


def test_a_changed_option_is_a_mismatch_naming_the_field(tmp_path: Path) -> None:
    fx = FakeExtractor()
    build_feature_cache(ScaledToy(1.0), fx, tmp_path / "c")
    with pytest.raises(CacheMismatchError, match=r"dataset\.scale: cache 1\.0, asked 0\.5"):
        build_feature_cache(ScaledToy(0.5), fx, tmp_path / "c")


def test_the_content_addressed_folder_changes_with_every_option(tmp_path: Path) -> None:
    fx = FakeExtractor()
    a = split_folder(tmp_path, "train", make_plan(ScaledToy(1.0), fx))
    b = split_folder(tmp_path, "train", make_plan(ScaledToy(0.5), fx))
    assert a != b and a == split_folder(tmp_path, "train", make_plan(ScaledToy(1.0), fx))
    assert a.parent == tmp_path and a.name.startswith("train-")


def test_geotiff_band_selection_and_scaling_change_the_key(tmp_path: Path) -> None:
    root = gtfx.make_classes(tmp_path / "tifs")
    fx = FakeExtractor()
    base = make_plan(GeoTiffFolder(root), fx).key
    for options in ({"rgb": [2, 1, 0]}, {"scale": "percentile"}, {"value_range": (0.0, 2.0)},
                    {"percentiles": (1.0, 99.0)}):  # fmt: skip
        try:
            ds = GeoTiffFolder(root, **options)
        except Exception as exc:  # an option this fixture cannot take is not the point here
            pytest.skip(f"fixture refuses {options}: {exc}")
        assert make_plan(ds, fx).key != base, options


def test_geobench_ignore_nodata_changes_the_key(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-chesapeake")
    a = dataset_identity(GeoBench(tmp_path, task="m-chesapeake", split="train"))
    b = dataset_identity(GeoBench(tmp_path, task="m-chesapeake", split="train", ignore_nodata=True))
    assert a["ignore_nodata"] is False and b["ignore_nodata"] is True
    fx = FakeExtractor()
    plan_a = make_plan(GeoBench(tmp_path, task="m-chesapeake", split="train"), fx)
    plan_b = make_plan(
        GeoBench(tmp_path, task="m-chesapeake", split="train", ignore_nodata=True), fx
    )
    assert plan_a.key != plan_b.key


def test_identity_ignores_options_that_do_not_change_data() -> None:
    a, b = ScaledToy(1.0), ScaledToy(1.0)
    b.progress = True  # not data
    assert dataset_identity(a) == dataset_identity(b)
