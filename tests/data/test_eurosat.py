from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fixtures.eurosat import make as fx
from satdifuser.data.download import file_digest
from satdifuser.data.eurosat import EuroSAT
from satdifuser.data.splits import default_split
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make(tmp_path_factory.mktemp("eurosat"))


@pytest.mark.parametrize(("split", "n"), [("train", 20), ("val", 10), ("test", 10),
                                          ("unlabeled", 10), ("all", 50)])  # fmt: skip
def test_split_lengths_follow_split_file(root: Path, split: str, n: int) -> None:
    ds = EuroSAT(root, split=split)  # type: ignore[arg-type]
    assert len(ds) == n
    assert ds.num_classes == 10 and ds.classes == fx.CLASSES


def test_getitem_returns_sample_contract(root: Path) -> None:
    ds = EuroSAT(root, split="val")
    s = ds[3]
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
    assert s["label"].dtype == torch.int64 and s["label"].ndim == 0
    assert int(s["label"]) == fx.CLASSES.index("Highway")
    assert s["id"] == "Highway/Highway_3.jpg"
    assert s["meta"].shape == (7,) and s["meta"].dtype == torch.float32
    assert float(s["meta"][2]) == 10.0 and torch.isnan(s["meta"][[0, 1, 3, 4, 5, 6]]).all()


def test_budget_takes_first_k_of_each_class_block(root: Path) -> None:
    ds = EuroSAT(root, split="train", budget=1)
    assert len(ds) == 10
    # the split file lists _2 before _1: the budget keeps list order, not name order
    assert all(f.endswith("_2.jpg") for f in ds.files)
    assert ds.class_counts() == dict.fromkeys(fx.CLASSES, 1)


def test_budget_larger_than_class_block_raises(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"budget=3 per class"):
        EuroSAT(root, split="train", budget=3)


def test_root_may_be_the_image_folder_itself(root: Path, tmp_path: Path) -> None:
    ds = EuroSAT(root / "eurosat_rgb", split="test")
    assert len(ds) == 10 and ds.split_file == root / "eurosat_rgb_split.json"


def test_default_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    shutil.copytree(fx.make(tmp_path / "a") / "eurosat_rgb", tmp_path / "b" / "2750")
    ds = EuroSAT(tmp_path / "b", split="all")
    assert ds.split_file is None
    # 5 per class: n // 5 = 1 test, n // 10 = 0 val, 1 train, 3 unlabeled
    parts = {s: EuroSAT(tmp_path / "b", split=s).files for s in ("train", "test", "unlabeled")}
    assert [len(v) for v in parts.values()] == [10, 10, 30]
    assert len(set().union(*parts.values())) == 50
    with pytest.raises(DataFormatError, match=r"split 'val' in the default split .* is empty"):
        EuroSAT(tmp_path / "b", split="val")
    by_class = {"A": [f"A/A_{i}.jpg" for i in range(3000)]}
    sp1, sp2 = default_split(by_class), default_split(by_class)
    assert sp1 == sp2 and [len(sp1[k]) for k in ("test", "val", "train")] == [200, 100, 200]
    assert sp1["test"] != by_class["A"][:200]  # shuffled, not the first files


def test_missing_root_names_the_argument(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"root='.*nowhere'.*download=True"):
        EuroSAT(tmp_path / "nowhere")


def test_missing_split_file_names_the_file(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"split file .*nope\.json does not exist"):
        EuroSAT(root, split_file=tmp_path / "nope.json")


def test_empty_split_raises(root: Path, tmp_path: Path) -> None:
    sp = fx.split()
    sp["val"] = []
    (tmp_path / "s.json").write_text(json.dumps(sp))
    with pytest.raises(DataFormatError, match=r"split 'val' in .*s\.json is empty"):
        EuroSAT(root, split="val", split_file=tmp_path / "s.json")


def test_class_not_in_classes_is_an_error(root: Path, tmp_path: Path) -> None:
    sp = fx.split()
    sp["classes"] = fx.CLASSES[:-1]  # SeaLake images now have no label id
    (tmp_path / "s.json").write_text(json.dumps(sp))
    with pytest.raises(DataFormatError, match=r"class 'SeaLake', which is not among the 9"):
        EuroSAT(root, split="test", split_file=tmp_path / "s.json")


def test_split_file_listing_missing_image(root: Path, tmp_path: Path) -> None:
    sp = fx.split()
    sp["test"].append("Forest/Forest_99.jpg")
    (tmp_path / "s.json").write_text(json.dumps(sp))
    with pytest.raises(DataFormatError, match=r"1 image\(s\) missing .*Forest_99\.jpg"):
        EuroSAT(root, split="test", split_file=tmp_path / "s.json")


def test_truncated_jpeg_names_the_file(tmp_path: Path) -> None:
    fx.make(tmp_path)
    bad = tmp_path / "eurosat_rgb" / "Forest" / "Forest_3.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    ds = EuroSAT(tmp_path, split="val")
    with pytest.raises(DataFormatError, match=r"cannot read image .*Forest_3\.jpg.*truncated"):
        ds[1]


def test_download_from_local_url_checks_md5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = fx.make_zip(tmp_path / "src" / "EuroSAT.zip")
    monkeypatch.setattr(EuroSAT, "url", archive.as_uri())
    monkeypatch.setattr(EuroSAT, "md5", file_digest(archive))
    root = tmp_path / "dl"
    ds = EuroSAT(root, split="all", download=True)
    assert len(ds) == 50 and ds.image_dir == root / "2750"
    assert (root / "EuroSAT.zip").is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp left behind
    assert EuroSAT(root, split="all").image_dir == root / "2750"  # already downloaded


def test_download_with_wrong_checksum_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = fx.make_zip(tmp_path / "src" / "EuroSAT.zip")
    monkeypatch.setattr(EuroSAT, "url", archive.as_uri())
    monkeypatch.setattr(EuroSAT, "md5", "0" * 32)
    root = tmp_path / "dl"
    with pytest.raises(DataFormatError, match=r"has md5 .* expected 0000"):
        EuroSAT(root, download=True)
    assert list(root.iterdir()) == []


def test_env_var_gives_the_root(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATDIFUSER_DATA", str(root))
    assert EuroSAT(split="val").root == root


def test_plot_returns_figure_with_prediction(root: Path) -> None:
    ds = EuroSAT(root, split="val")
    s = ds[0]
    s["prediction"] = torch.tensor(2)
    fig = ds.plot(s, suptitle="x")
    assert "prediction: HerbaceousVegetation" in fig.axes[0].get_title()


def test_real_eurosat_split(shared_data: Path) -> None:
    ds = EuroSAT(shared_data, split="train", budget=10)
    assert len(ds) == 100 and ds.num_classes == 10
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and s["id"] == ds.files[0]
    assert len(EuroSAT(shared_data, split="test")) == 2000
