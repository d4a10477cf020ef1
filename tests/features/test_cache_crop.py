"""Random training crops of cached segmentation samples (``CachedDataModule(train_crop=...)``).

The fake extractor's maps and the masks encode their own coordinates (map element ``(a, b)`` at
stride ``s`` holds the input pixel ``(a * s, b * s)``, mask pixel ``(y, x)`` of sample ``i`` holds
``i * 10000 + y * 100 + x``), so alignment of every map with the mask is checked exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor, nn
from torch.utils.data import Dataset

from satdifuser.errors import ConfigError
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.cache_crop import CropGrid, CroppedSamples, crop_grid
from satdifuser.features.cache_view import CachedView
from satdifuser.features.spec import FeatureInfo, FeatureSpec

STRIDES = (2, 4, 8)
WINDOW = 32


class CoordExtractor(nn.Module):
    """Maps at strides 2, 4, 8 holding (row, column, sample) of each cell's top-left pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = FeatureSpec(timesteps=(0,), taps=tuple(f"s{s}" for s in STRIDES))
        self.feature_info = [FeatureInfo(f"s{s}", 0, 3, s) for s in STRIDES]

    def identity(self) -> str:
        return self.spec.digest("coord-extractor", "1")

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        return [images[:, :, ::s, ::s].clone() for s in STRIDES]


class CoordWindows(Dataset):
    """``n`` windows: image channels (row, column, sample index); coordinate-coded masks."""

    def __init__(self, n: int, prefix: str, size: int = WINDOW, mask: bool = True) -> None:
        self.n, self.prefix, self.size, self.with_mask = n, prefix, size, mask

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        yy, xx = torch.meshgrid(torch.arange(self.size), torch.arange(self.size), indexing="ij")
        image = torch.stack([yy, xx, torch.full_like(yy, i)]).float()
        sample: dict[str, Any] = {"image": image, "id": f"{self.prefix}-{i}"}
        if self.with_mask:
            sample["mask"] = i * 10000 + yy * 100 + xx
        else:
            sample["label"] = torch.tensor(i % 2)
        return sample


class CoordData(LightningDataModule):
    def __init__(self, seed: int = 0, mask: bool = True, size: int = WINDOW) -> None:
        super().__init__()
        self.seed, self.mask, self.size, self.batch_size = seed, mask, size, 4
        self.num_classes, self.classes, self.ignore_index = 2, ["a", "b"], 255
        self.task_type = "segmentation" if mask else "classification"

    def dataset(self, split: str) -> CoordWindows:
        return CoordWindows(8 if split == "train" else 3, split, self.size, self.mask)


def _cached(tmp_path: Path, crop: Any = 16, **kw: Any) -> CachedDataModule:
    data = CoordData(seed=kw.pop("seed", 0), mask=kw.pop("mask", True), size=kw.pop("size", WINDOW))
    return CachedDataModule(data, CoordExtractor(), tmp_path / "cache", dtype="float32",
                            progress=False, train_crop=crop, **kw)  # fmt: skip


def _offsets(batch: dict[str, Any], crop: int, strides: tuple[int, ...] = STRIDES) -> list:
    """(row, top, left) of each sample, after checking every map against the mask exactly."""
    mask = batch["mask"]
    assert mask.shape[-2:] == (crop, crop)
    out = []
    for b in range(mask.shape[0]):
        row, rest = divmod(int(mask[b, 0, 0]), 10000)
        top, left = divmod(rest, 100)
        yy, xx = torch.meshgrid(torch.arange(crop), torch.arange(crop), indexing="ij")
        assert torch.equal(mask[b], row * 10000 + (top + yy) * 100 + (left + xx))
        for f, s in zip(batch["features"], strides, strict=True):
            assert f.shape[1:] == (3, crop // s, crop // s)
            assert torch.equal(f[b, 0], (top + yy[::s, ::s]).float())
            assert torch.equal(f[b, 1], (left + xx[::s, ::s]).float())
            assert torch.equal(f[b, 2], torch.full_like(f[b, 2], row))
        assert top % max(strides) == 0 and left % max(strides) == 0
        out.append((row, top, left))
    return out


def _epoch(loader: Any, crop: int = 16) -> list:
    return [o for batch in loader for o in _offsets(batch, crop)]


def test_crop_grid_cuts_every_map_at_its_stride_aligned_with_the_mask() -> None:
    grid = crop_grid(16, [(16, 16), (8, 8), (4, 4)], (32, 32))
    assert grid == CropGrid(16, 32, 32, ((16, 16), (8, 8), (4, 4))) and grid.step == 8
    sample = CoordWindows(1, "x")[0]
    sample["features"] = CoordExtractor()(sample["image"][None])
    sample["features"] = [f[0] for f in sample["features"]]
    out = grid.crop_sample(sample, 8, 16)
    assert out["image"].shape == (3, 16, 16) and out["id"] == "x-0"
    batch = {
        k: v[None] if isinstance(v, Tensor) else [v] for k, v in out.items() if k != "features"
    }
    batch["features"] = [f[None] for f in out["features"]]
    assert _offsets(batch, 16) == [(0, 8, 16)]
    # every offset lies on the grid of the coarsest stride and inside the window
    offsets = grid.offsets(seed=0, epoch=0, rows=500)
    assert set(offsets.flatten().tolist()) == {0, 8, 16}


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "disk"])
def test_train_batches_are_aligned_crops_and_eval_batches_are_whole(
    tmp_path: Path, in_memory: bool
) -> None:
    cdm = _cached(tmp_path, in_memory=in_memory)
    cdm.setup("fit")
    assert ("train" in cdm.memory) is in_memory
    offsets = _epoch(cdm.train_dataloader())
    assert sorted(row for row, _, _ in offsets) == list(range(8))  # each window once per epoch
    assert len({(t, left) for _, t, left in offsets}) > 1  # random positions, not one fixed crop
    for loader in (cdm.val_dataloader(), cdm.test_dataloader()):
        batch = next(iter(loader))
        assert batch["mask"].shape[-2:] == (WINDOW, WINDOW)
        assert [f.shape[-1] for f in batch["features"]] == [WINDOW // s for s in STRIDES]
        assert int(batch["mask"][0, 0, 0]) == 0 and int(batch["mask"][0, -1, -1]) == 3131


def test_memory_disk_and_workers_serve_the_same_crops(tmp_path: Path) -> None:
    epochs = []
    for in_memory, workers in ((True, 0), (False, 0), (False, 1)):
        cdm = _cached(tmp_path, in_memory=in_memory)
        cdm.datamodule.num_workers = workers
        loader = cdm.train_dataloader()
        assert loader.num_workers == workers
        epochs.append([_epoch(loader), _epoch(loader)])
    assert epochs[0] == epochs[1] == epochs[2]  # same order, same crops, every epoch


def test_same_seed_same_crops_other_epoch_or_seed_other_crops(tmp_path: Path) -> None:
    a, b = _cached(tmp_path).train_dataloader(), _cached(tmp_path).train_dataloader()
    first, again = _epoch(a), _epoch(b)
    assert first == again  # same seed: same order, same crops
    second = _epoch(a)
    assert sorted(second) != sorted(first)  # the next epoch crops the same rows elsewhere
    a.sampler.set_epoch(0)  # what Lightning calls: the crops of an epoch are fixed
    b.sampler.set_epoch(1)
    assert sorted(_epoch(a)) == sorted(first) and sorted(_epoch(b)) == sorted(second)
    other = _epoch(_cached(tmp_path, seed=1).train_dataloader())
    assert sorted(other) != sorted(first)
    # the row order is the uncropped loader's: crops change what is served, not the shuffle
    whole = _cached(tmp_path, crop=None).train_dataloader()
    assert [i for batch in whole for i in batch["id"]] == [f"train-{r}" for r, _, _ in first]


def test_cached_view_serves_crops_of_the_kept_maps(tmp_path: Path) -> None:
    view = CachedView(_cached(tmp_path), taps=["s4", "s8"], seed=3)
    batch = next(iter(view.train_dataloader()))
    assert len(_offsets(batch, 16, strides=(4, 8))) == 4
    assert next(iter(view.val_dataloader()))["mask"].shape[-2:] == (WINDOW, WINDOW)


@pytest.mark.parametrize(
    ("crop", "kw", "match"),
    [
        (12, {}, "train_crop=12 is not a multiple of 8, the coarsest feature stride; use e.g. 8"),
        (40, {}, "train_crop=40 is larger than the 32x32 px training windows; use at most 32"),
        (0, {}, "train_crop=0 must be a positive number of input pixels"),
        (True, {}, "train_crop=True must be a positive number"),
        (16, {"mask": False}, "crops segmentation masks, but the training samples have none"),
        (24, {"size": 20}, "train_crop=24 is larger than the 20x20 px training windows"),
    ],
)
def test_bad_train_crop_is_refused_in_one_line_before_extraction(
    tmp_path: Path, crop: Any, kw: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        _cached(tmp_path, crop=crop, **kw).setup("fit")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists()  # refused before anything was extracted


def test_maps_finer_than_the_mask_are_cropped_at_their_half_stride() -> None:
    # features extracted at twice the window's size (image_size > window): stride 1/2
    grid = crop_grid(4, [(3, 16, 16), (3, 4, 4)], (8, 8))
    assert grid.step == 2  # the 4x4 map (stride 2) is the coarsest
    fine = torch.arange(16.0)[:, None].expand(16, 16) / 2  # row r holds input pixel r / 2
    sample = {"features": [fine[None], torch.zeros(1, 4, 4)], "mask": torch.zeros(8, 8)}
    out = grid.crop_sample(sample, 2, 4)
    assert out["features"][0].shape == (1, 8, 8) and out["features"][1].shape == (1, 2, 2)
    assert out["features"][0][0, :, 0].tolist() == [2.0 + r / 2 for r in range(8)]


def test_maps_not_at_a_whole_stride_only_crop_on_their_common_grid() -> None:
    # 5 cells over 32 px: only multiples of 32 px are whole cells, so no smaller crop fits
    with pytest.raises(ConfigError, match="train_crop=16 is not a multiple of 32"):
        crop_grid(16, [(16, 16), (5, 5)], (32, 32))


def test_cropped_samples_of_a_batched_source_return_one_batch() -> None:
    class Rows(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitems__(self, rows: list[int]) -> dict[str, Any]:
            ids = torch.tensor(rows)[:, None, None]
            return {"features": [ids.expand(-1, 4, 4)[:, None].float()],
                    "mask": ids.expand(-1, 8, 8).clone(), "id": [str(r) for r in rows]}  # fmt: skip

    data = CroppedSamples(Rows(), CropGrid(4, 8, 8, ((4, 4),)))
    batch = data.__getitems__([(1, 0, 4), (0, 4, 0)])
    assert batch["id"] == ["1", "0"] and batch["mask"].shape == (2, 4, 4)
    assert batch["features"][0].shape == (2, 1, 2, 2)
    assert batch["mask"][:, 0, 0].tolist() == [1, 0]
