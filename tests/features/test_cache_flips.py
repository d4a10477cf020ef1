"""Random flips and quarter turns of cached segmentation samples
(``CachedDataModule(train_flips=True)``), alone and with ``train_crop``.

The coordinate-coded fakes of ``test_cache_crop`` are reused: mask pixel ``(y, x)`` of sample
``i`` holds ``i * 10000 + y * 100 + x`` and map element ``(a, b)`` at stride ``s`` holds the input
pixel ``(a * s, b * s)``. A turned mask is then an affine image of a block of the window, which
tells the dihedral element; each map cell must hold the top-left (smallest) input pixel of the
mask block under it, whatever the element, so alignment is checked exactly and independently of
the implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from test_cache_crop import STRIDES, WINDOW, CoordData, CoordExtractor
from torch import Tensor
from torch.utils.data import Dataset

from satdifuser.errors import ConfigError
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.cache_crop import (
    CroppedSamples,
    TrainTransform,
    crop_loader,
    dihedral,
    dihedral_codes,
    train_transform,
)
from satdifuser.features.cache_view import CachedView

IDENTITY = ((0, 1), (1, 0))  # (step right, step down) in (dy, dx) of the untouched window


def _cached(tmp_path: Path, crop: int | None = None, flips: bool = True, **kw: Any
            ) -> CachedDataModule:  # fmt: skip
    data = CoordData(seed=kw.pop("seed", 0), mask=kw.pop("mask", True))
    return CachedDataModule(data, CoordExtractor(), tmp_path / "cache", dtype="float32",
                            progress=False, train_crop=crop, train_flips=flips,
                            **kw)  # fmt: skip


def _yx(m: Tensor) -> tuple[Tensor, Tensor]:
    return (m % 10000) // 100, m % 100


def _decode(batch: dict[str, Any], side: int, strides: tuple[int, ...] = STRIDES) -> list:
    """``(row, top, left, element)`` of each sample after checking the mask is a dihedral image
    of a ``side`` px block of its window and every map (and the image) is aligned with it."""
    mask, out = batch["mask"], []
    assert mask.shape[-2:] == (side, side)
    ii, jj = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    for b in range(mask.shape[0]):
        m = mask[b]
        row = int(m[0, 0]) // 10000
        y, x = _yx(m)
        right = (int(y[0, 1] - y[0, 0]), int(x[0, 1] - x[0, 0]))
        down = (int(y[1, 0] - y[0, 0]), int(x[1, 0] - x[0, 0]))
        # an affine image of the block with unit steps: a dihedral element, nothing else
        assert {abs(v) for v in right + down} == {0, 1} and right != down
        assert torch.equal(y, y[0, 0] + ii * down[0] + jj * right[0])
        assert torch.equal(x, x[0, 0] + ii * down[1] + jj * right[1])
        assert torch.equal(m // 10000, torch.full_like(m, row))
        top, left = int(y.min()), int(x.min())
        for f, s in zip(batch["features"], strides, strict=True):
            n = side // s
            assert f.shape[1:] == (3, n, n)
            blocks_y = y.reshape(n, s, n, s).amin(dim=(1, 3))
            blocks_x = x.reshape(n, s, n, s).amin(dim=(1, 3))
            assert torch.equal(f[b, 0], blocks_y.float()) and torch.equal(f[b, 1], blocks_x.float())
            assert torch.equal(f[b, 2], torch.full_like(f[b, 2], row))
        if "image" in batch:
            assert torch.equal(batch["image"][b, 0], y.float())
            assert torch.equal(batch["image"][b, 1], x.float())
        out.append((row, top, left, (right, down)))
    return out


def _epochs(loader: Any, n: int, side: int = WINDOW, **kw: Any) -> list[list]:
    return [[d for batch in loader for d in _decode(batch, side, **kw)] for _ in range(n)]


def test_dihedral_elements_are_the_eight_symmetries_of_the_square() -> None:
    t = torch.arange(6).reshape(2, 3)
    images = {tuple(dihedral(t, k).flatten().tolist()) + dihedral(t, k).shape for k in range(8)}
    assert len(images) == 8  # all distinct
    assert dihedral(t, 0) is t and dihedral(t, 2).shape == dihedral(t, 4).shape == (2, 3)
    assert torch.equal(dihedral(t, 6), t.flip(-2))  # half turn + left-right flip: up-down flip
    assert torch.equal(dihedral(t, 1), torch.tensor([[2, 5], [1, 4], [0, 3]]))  # one left turn


def test_codes_are_pure_in_seed_epoch_row_and_cover_the_group() -> None:
    codes = dihedral_codes(seed=0, epoch=0, rows=400)
    assert set(codes.tolist()) == set(range(8))
    assert torch.equal(codes, dihedral_codes(0, 0, 400))
    assert torch.equal(codes[:50], dihedral_codes(0, 0, 50))  # row r's element, whatever the rows
    assert not torch.equal(codes, dihedral_codes(0, 1, 400))
    assert not torch.equal(codes, dihedral_codes(1, 0, 400))
    # samples that are not square keep their shape: identity, half turn and the two flips
    assert set(dihedral_codes(0, 0, 400, rotations=False).tolist()) == {0, 2, 4, 6}


def test_flips_are_drawn_independently_of_the_crop_offsets() -> None:
    crop = train_transform(16, False, [(16, 16), (8, 8), (4, 4)], (32, 32))
    both = train_transform(16, True, [(16, 16), (8, 8), (4, 4)], (32, 32))
    flips = train_transform(None, True, [(16, 16), (8, 8), (4, 4)], (32, 32))
    assert crop is not None and both is not None and flips is not None
    assert train_transform(None, False, [(16, 16)], (32, 32)) is None
    a, b, c = (t.draws(5, 2, 300) for t in (crop, both, flips))
    assert torch.equal(a[:, :2], b[:, :2])  # the same offsets with or without turns
    assert torch.equal(b[:, 2], c[:, 2])  # the same turns with or without crops
    assert set(a[:, 2].tolist()) == {0} and set(c[:, :2].flatten().tolist()) == {0}


def test_windows_that_are_not_square_are_only_flipped() -> None:
    t = train_transform(None, True, [(16, 8), (4, 2)], (32, 16))
    assert t is not None and not t.rotations
    assert set(t.draws(0, 0, 200)[:, 2].tolist()) == {0, 2, 4, 6}
    sample = {"features": [torch.zeros(3, 16, 8), torch.zeros(3, 4, 2)],
              "mask": torch.arange(32 * 16).reshape(32, 16)}  # fmt: skip
    out = t.apply(sample, 0, 0, 6)
    assert [tuple(f.shape) for f in out["features"]] == [(3, 16, 8), (3, 4, 2)]
    assert torch.equal(out["mask"], sample["mask"].flip(-2))
    # a square crop of that window turns by quarter turns too
    assert train_transform(8, True, [(16, 8), (4, 2)], (32, 16)).rotations  # type: ignore[union-attr]


@pytest.mark.parametrize("crop", [None, 16], ids=["whole", "crop16"])
@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "disk"])
def test_every_map_and_the_mask_get_the_same_turn_and_all_eight_occur(
    tmp_path: Path, in_memory: bool, crop: int | None
) -> None:
    cdm = _cached(tmp_path, crop=crop, in_memory=in_memory)
    cdm.setup("fit")
    assert ("train" in cdm.memory) is in_memory
    epochs = _epochs(cdm.train_dataloader(), 6, side=crop or WINDOW)
    for epoch in epochs:  # each window once per epoch
        assert sorted(d[0] for d in epoch) == list(range(8))
    assert len({d[3] for epoch in epochs for d in epoch}) == 8  # all 8 elements of the group
    if crop is None:
        assert {(d[1], d[2]) for epoch in epochs for d in epoch} == {(0, 0)}
    else:
        assert len({(d[1], d[2]) for epoch in epochs for d in epoch}) > 1
    for loader in (cdm.val_dataloader(), cdm.test_dataloader()):  # never turned nor cropped
        for batch in loader:
            assert {d[1:] for d in _decode(batch, WINDOW)} == {(0, 0, IDENTITY)}


def test_same_seed_same_turns_other_epoch_or_seed_other_turns(tmp_path: Path) -> None:
    a = _cached(tmp_path, crop=16).train_dataloader()
    b = _cached(tmp_path, crop=16).train_dataloader()
    first, second = _epochs(a, 2, side=16)
    assert _epochs(b, 2, side=16) == [first, second]  # same seed: same order, crops and turns
    assert sorted(second) != sorted(first)
    a.sampler.set_epoch(1)  # what Lightning calls: the turns of an epoch are fixed
    assert sorted(_epochs(a, 1, side=16)[0]) == sorted(second)
    assert sorted(_epochs(_cached(tmp_path, crop=16, seed=1).train_dataloader(), 1,
                          side=16)[0]) != sorted(first)  # fmt: skip
    # memory and disk serve the same turns; the crops are those of train_crop alone
    disk = _epochs(_cached(tmp_path, crop=16, in_memory=False).train_dataloader(), 1, side=16)
    assert disk[0] == first
    unturned = _cached(tmp_path, crop=16, flips=False)
    plain = _epochs(unturned.train_dataloader(), 1, side=16)[0]
    assert [d[:3] for d in plain] == [d[:3] for d in first]
    assert {d[3] for d in plain} == {IDENTITY}
    # turns augment the served samples: the cache (its key, hence its folder) is the same
    turned = _cached(tmp_path, crop=16)
    turned.setup("fit")
    assert turned.folders == unturned.folders


def test_off_by_default(tmp_path: Path) -> None:
    data = CoordData()
    cdm = CachedDataModule(data, CoordExtractor(), tmp_path / "cache", dtype="float32",
                           progress=False)  # fmt: skip
    assert cdm.train_flips is False
    epochs = _epochs(cdm.train_dataloader(), 2)
    assert {d[1:] for epoch in epochs for d in epoch} == {(0, 0, IDENTITY)}


def test_the_kept_image_is_turned_with_the_maps_and_the_mask(tmp_path: Path) -> None:
    cdm = _cached(tmp_path, crop=16, keep_image=True)
    cdm.setup("fit")
    assert "train" not in cdm.memory  # the image is read with each row, from disk
    epochs = _epochs(cdm.train_dataloader(), 3, side=16)  # _decode checks the image too
    assert len({d[3] for epoch in epochs for d in epoch}) > 1


def test_cached_view_turns_the_kept_maps(tmp_path: Path) -> None:
    view = CachedView(_cached(tmp_path), taps=["s4", "s8"], seed=3)
    epochs = _epochs(view.train_dataloader(), 4, strides=(4, 8))
    assert len({d[3] for epoch in epochs for d in epoch}) > 1
    assert {d[1:] for d in _decode(next(iter(view.val_dataloader())), WINDOW, strides=(4, 8))
            } == {(0, 0, IDENTITY)}  # fmt: skip


def test_batched_source_rows_are_turned_one_by_one() -> None:
    class Rows(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitems__(self, rows: list[int]) -> dict[str, Any]:
            grid = torch.arange(16).reshape(4, 4)
            mask = torch.stack([grid + 100 * r for r in rows])
            return {"features": [mask[:, None, ::2, ::2].float()], "mask": mask,
                    "id": [str(r) for r in rows]}  # fmt: skip

    t = TrainTransform(4, 4, ((2, 2),), flips=True)
    batch = CroppedSamples(Rows(), t).__getitems__([(1, 0, 0, 1), (0, 0, 0, 0)])
    grid = torch.arange(16).reshape(4, 4)
    assert torch.equal(batch["mask"][0], torch.rot90(grid, 1) + 100)
    assert torch.equal(batch["mask"][1], grid)
    assert torch.equal(batch["features"][0][0, 0], torch.rot90(grid[::2, ::2], 1).float() + 100)
    # a loader over it: only the train transform decides the turn
    loader = crop_loader(Rows(), t, batch_size=2, seed=0)
    assert next(iter(loader))["mask"].shape == (2, 4, 4)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"mask": False}, "train_flips=true flips segmentation samples .* have no mask"),
        ({"flips": "yes"}, "train_flips='yes' must be true"),
    ],
)
def test_bad_train_flips_is_refused_in_one_line_before_extraction(
    tmp_path: Path, kw: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        _cached(tmp_path, **kw).setup("fit")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists()
