from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fixtures.mask_folder import make as fx
from satdifuser.data.dubai_aerial import DUBAI_COLORS, DubaiAerial
from satdifuser.data.mask_folder import MaskFolder
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seg")
    fx.make_dubai(root)
    fx.make_index(root / "index_masks")
    return root


def test_dubai_whole_images_decode_colours_exactly(data_root: Path) -> None:
    ds = DubaiAerial(data_root, tiles=[1, 2])
    assert len(ds) == 4 and ds.num_classes == 6
    for i, (h, w) in enumerate(fx.SIZES * 2):
        s = ds[i]
        tile = 1 if i < 2 else 2
        want = fx.class_map(h, w, tile * 10 + (i % 2) + 1, 6)
        want[0, :3] = 255  # black stray pixels -> ignore_index
        assert s["image"].shape == (3, h, w) and s["mask"].dtype == torch.int64
        assert torch.equal(s["mask"], torch.from_numpy(want)), s["id"]
    assert ds[2]["id"] == "tile_2/images/image_part_001.jpg"  # palette PNG read as RGB


def test_tiles_select_groups_and_root_may_be_dataset_folder(data_root: Path) -> None:
    val = DubaiAerial(data_root / "dubai_aerial", tiles=[8])
    assert [p.parent.parent.name for p in val.images] == ["tile_8", "tile_8"]
    assert len(DubaiAerial(data_root)) == 6


def test_random_crops_are_seeded_and_padded(data_root: Path) -> None:
    ds = DubaiAerial(data_root, tiles=[1], mode="random", crop_size=32, crops_per_image=3)
    assert len(ds) == 6
    torch.manual_seed(1)
    a = [ds[i]["id"] for i in range(6)]
    torch.manual_seed(1)
    b = [ds[i]["id"] for i in range(6)]
    assert a == b and len(set(a)) > 2
    big = DubaiAerial(data_root, tiles=[1], mode="random", crop_size=64)
    s = big[0]  # 40x48 image, 64 crop: padded with 0 / ignore_index
    assert s["image"].shape == (3, 64, 64) and (s["mask"][40:] == 255).all()


def test_grid_crops_cover_the_image(data_root: Path) -> None:
    ds = DubaiAerial(data_root, tiles=[1], mode="grid", crop_size=32, stride=16)
    whole = DubaiAerial(data_root, tiles=[1])
    # image 1 is 40x48: y in {0, 8}, x in {0, 16}; image 2 is 56x40: y in {0,16,24}, x in {0,8}
    assert len(ds) == 4 + 6
    s = ds[3]
    assert s["id"].endswith("@8,16")
    assert torch.equal(s["mask"], whole[0]["mask"][8:40, 16:48])


def test_index_masks_and_split_file(data_root: Path, tmp_path: Path) -> None:
    root = data_root / "index_masks"
    ds = MaskFolder(root, classes=["a", "b", "c"])
    assert len(ds) == 2 and set(ds[0]["mask"].unique().tolist()) <= {0, 1, 2, 255}
    (tmp_path / "split.json").write_text(json.dumps({"val": ["images/scene_2.png"]}))
    val = MaskFolder(root, classes=["a", "b", "c"], split_file=tmp_path / "split.json", split="val")
    assert [ds.rel_id(0) for ds in [val]] == ["images/scene_2.png"]
    (tmp_path / "list.txt").write_text("images/scene_1.png\n")
    assert len(MaskFolder(root, classes=["a", "b", "c"], split_file=tmp_path / "list.txt")) == 1


def test_index_label_out_of_range_names_file(data_root: Path) -> None:
    ds = MaskFolder(data_root / "index_masks", classes=["a", "b"])  # masks hold id 2
    with pytest.raises(
        DataFormatError, match=r"mask .*scene_1\.png holds label 2 .* outside 0\.\.1"
    ):
        ds[0]


def test_unknown_colour_warns_once_and_is_ignored(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "dubai_aerial" / "tile_1", tmp_path / "tile_1")
    for k in (1, 2):
        p = tmp_path / "tile_1" / "masks" / f"image_part_00{k}.png"
        a = np.array(Image.open(p))
        a[5:7, 5:9] = (0x12, 0x34, 0x56)
        Image.fromarray(a).save(p)
    ds = MaskFolder(tmp_path, colors=list(DUBAI_COLORS), ignore_colors=["#000000"])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m0, m1 = ds[0]["mask"], ds[1]["mask"]
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1 and "#123456 (8 px)" in msgs[0] and "image_part_001.png" in msgs[0]
    assert (m0[5:7, 5:9] == 255).all() and (m1[5:7, 5:9] == 255).all()


def test_mask_image_size_mismatch_names_both_files(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "index_masks", tmp_path / "x")
    p = tmp_path / "x" / "masks" / "scene_1.png"
    Image.open(p).crop((0, 0, 20, 20)).save(p)
    ds = MaskFolder(tmp_path / "x", classes=["a", "b", "c"])
    with pytest.raises(
        DataFormatError, match=r"mask .*scene_1\.png is 20x20 but image .* is 48x40"
    ):
        ds[0]


def test_truncated_image_names_the_file(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "dubai_aerial", tmp_path / "d")
    p = tmp_path / "d" / "tile_8" / "images" / "image_part_002.jpg"
    p.write_bytes(p.read_bytes()[:300])
    ds = DubaiAerial(tmp_path / "d", tiles=[8])
    with pytest.raises(DataFormatError, match=r"cannot read image .*image_part_002\.jpg"):
        ds[1]


def test_missing_mask_and_empty_selection(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "index_masks", tmp_path / "x")
    (tmp_path / "x" / "masks" / "scene_2.png").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"scene_2\.png has no mask"):
        MaskFolder(tmp_path / "x", classes=["a"])
    (tmp_path / "e" / "images").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"hold no images .* the selection is empty"):
        MaskFolder(tmp_path / "e", classes=["a"])
    with pytest.raises(DatasetNotFoundError, match="group 'tile_5' has no folder"):
        DubaiAerial(data_root, tiles=[5])
    with pytest.raises(ConfigError, match="tiles=\\[\\] selects no tile"):
        DubaiAerial(data_root, tiles=[])


def test_split_file_errors(data_root: Path, tmp_path: Path) -> None:
    root = data_root / "index_masks"
    with pytest.raises(DatasetNotFoundError, match=r"split file .*none\.json does not exist"):
        MaskFolder(root, classes=["a"], split_file=tmp_path / "none.json", split="val")
    (tmp_path / "s.json").write_text(json.dumps({"val": []}))
    with pytest.raises(DataFormatError, match=r"split 'val' in .*s\.json is empty"):
        MaskFolder(root, classes=["a"], split_file=tmp_path / "s.json", split="val")


def test_colour_mask_without_table_and_bad_config(data_root: Path) -> None:
    ds = MaskFolder(data_root / "dubai_aerial", groups=["tile_1"], classes=["a"])
    with pytest.raises(DataFormatError, match="colour image but no colour table"):
        ds[0]
    with pytest.raises(ConfigError, match="needs crop_size"):
        DubaiAerial(data_root, mode="random")
    with pytest.raises(ConfigError, match="2 classes but 1 colors"):
        MaskFolder(data_root / "index_masks", classes=["a", "b"], colors=["#000001"])


def test_cache_returns_same_samples(data_root: Path) -> None:
    a, b = DubaiAerial(data_root, tiles=[8], cache=True), DubaiAerial(data_root, tiles=[8])
    assert torch.equal(a[1]["mask"], b[1]["mask"]) and torch.equal(a[1]["image"], a[1]["image"])
    assert 1 in a._cache


def test_plot_overlays_mask(data_root: Path) -> None:
    ds = DubaiAerial(data_root, tiles=[1])
    s = ds[0]
    s["prediction"] = s["mask"].clone()
    fig = ds.plot(s)
    assert [ax.get_title() for ax in fig.axes] == ["image", "mask", "prediction"]


def test_real_dubai_tiles(shared_data: Path) -> None:
    ds = DubaiAerial(shared_data, tiles=[2])
    s = ds[0]  # a palette PNG mask
    assert s["mask"].shape == s["image"].shape[1:] == (544, 509)
    ids = set(s["mask"].unique().tolist())
    assert ids <= set(range(6)) | {255} and len(ids) >= 3
    assert len(DubaiAerial(shared_data, tiles=[1, 2, 3, 4, 7])) == 45
