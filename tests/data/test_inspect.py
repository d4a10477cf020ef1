from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures.eurosat import make as fx_eurosat
from fixtures.geobench import make as fx_geobench
from fixtures.geotiff import make as fx_geotiff
from fixtures.mask_folder import make as fx_mask
from satdifuser.data.inspect import detect_format, inspect_path, write_grid
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("insp")
    fx_eurosat.make(r / "es")
    fx_mask.make_dubai(r)
    fx_mask.make_index(r / "index_masks")
    fx_geotiff.make_classes(r / "gt_classes")
    fx_geotiff.make_pairs(r / "gt_pairs")
    fx_geobench.make_task(r / "gb", "m-eurosat")
    fx_geobench.make_task(r / "gb", "m-cashew-plant")
    return r


@pytest.mark.parametrize(
    ("rel", "fmt"),
    [("es/eurosat_rgb", "eurosat"), ("dubai_aerial", "mask_folder"),
     ("index_masks", "mask_folder"), ("gt_classes", "geotiff_folder"),
     ("gt_pairs", "geotiff_pairs"), ("gb/classification_v1.0/m-eurosat", "geobench"),
     ("gb", "geobench")],
)  # fmt: skip
def test_detect_format(root: Path, rel: str, fmt: str) -> None:
    assert detect_format(root / rel) == fmt


def test_unknown_layout_lists_datasets_inside(root: Path, tmp_path: Path) -> None:
    with pytest.raises(
        DataFormatError, match=r"cannot tell .* holds datasets: eurosat_rgb \(eurosat\)"
    ):
        detect_format(root / "es")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=r"cannot tell the dataset layout of .*empty"):
        detect_format(tmp_path / "empty")
    with pytest.raises(DataFormatError, match="is a file"):
        detect_format(root / "es" / "eurosat_rgb_split.json")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        detect_format(tmp_path / "nope")


def test_official_zip_layout_is_eurosat(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "es" / "eurosat_rgb", tmp_path / "dl" / "2750")
    assert detect_format(tmp_path / "dl") == "eurosat"


def test_eurosat_summary_counts_and_splits(root: Path) -> None:
    r = inspect_path(root / "es" / "eurosat_rgb", samples=12)
    assert r.summary["classes (10)"] == dict.fromkeys(fx_eurosat.CLASSES, 5)
    splits = r.summary["splits"]
    assert (splits["train"], splits["val"], splits["test"], splits["unlabeled"]) == (20, 10, 10, 10)
    assert splits["from"].endswith("eurosat_rgb_split.json")
    assert len(r.samples) == 12 and len({int(s["label"]) for s in r.samples}) == 10
    assert "32x32 (12)" in r.summary["image sizes"]


def test_dubai_summary_uses_colour_table(root: Path) -> None:
    r = inspect_path(root / "dubai_aerial", samples=3, seed=1)
    assert "Dubai" in r.summary["masks"] and r.classes[0] == "Building"
    assert r.summary["groups"] == {"tile_1": 2, "tile_2": 2, "tile_8": 2}
    shares = r.summary["pixel shares"]
    assert "ignore" in shares and abs(sum(float(v[:-1]) for v in shares.values()) - 100) < 0.5


def test_index_and_unknown_colour_masks(root: Path, tmp_path: Path) -> None:
    r = inspect_path(root / "index_masks", samples=2)
    assert r.classes == ["0", "1", "2"] and "index masks" in r.summary["masks"]
    # colour masks with colours of no known table: the table is inferred from the masks
    shutil.copytree(root / "index_masks", tmp_path / "c")
    for p in (tmp_path / "c" / "masks").iterdir():
        ids = np.array(Image.open(p)).astype(np.int64)
        rgb = np.stack([(ids * 80) % 256, ids * 0 + 7, (255 - ids * 50) % 256], -1).astype(np.uint8)
        Image.fromarray(rgb).save(p)
    r = inspect_path(tmp_path / "c", samples=2)
    assert "inferred" in r.summary["masks"] and len(r.colors or []) == 4  # 3 ids + 255


def test_geotiff_summary_bands_and_meta(root: Path) -> None:
    r = inspect_path(root / "gt_classes", samples=6)
    assert r.summary["bands"].startswith("13 x uint16: B01") and "B08A" in r.summary["bands"]
    assert r.summary["rgb view"] == ["B04", "B03", "B02"]
    assert "georeferenced: 6/6" in r.summary["meta"] and "date 2018-07" in r.summary["meta"]
    assert r.summary["classes (3)"] == {"Forest": 5, "Pasture": 5, "SeaLake": 5}
    p = inspect_path(root / "gt_pairs", samples=2)
    assert p.summary["task type"] == "segmentation" and p.classes == ["0", "1", "2"]


def test_geobench_summary_from_reader(root: Path) -> None:
    r = inspect_path(root / "gb" / "segmentation_v1.0" / "m-cashew-plant", samples=2)
    assert r.summary["task type"] == "segmentation" and r.summary["splits"]["train"] == 3
    assert r.samples and "mask" in r.samples[0]
    multi = inspect_path(root / "gb")
    assert "several tasks" in multi.format and len(multi.summary["tasks"]) == 2


def test_grid_is_written_atomically(root: Path, tmp_path: Path) -> None:
    r = inspect_path(root / "dubai_aerial", samples=2)
    out = write_grid(r, tmp_path / "sub" / "grid.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]
    with pytest.raises(DataFormatError, match="no samples to draw"):
        write_grid(inspect_path(root / "gb"), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bad_arguments(root: Path) -> None:
    with pytest.raises(ConfigError, match="samples=0"):
        inspect_path(root / "index_masks", samples=0)
    with pytest.raises(ConfigError, match="format='jpeg'"):
        inspect_path(root / "index_masks", format="jpeg")


def test_real_eurosat_and_dubai(shared_data: Path) -> None:
    r = inspect_path(shared_data / "eurosat_rgb", samples=4)
    assert (
        r.summary["splits"]["unlabeled"] == 22000
        and sum(r.summary["classes (10)"].values()) == 27000
    )
    d = inspect_path(shared_data / "dubai_aerial", samples=1)
    assert d.summary["images"] == "54 image/mask pairs" and "Dubai" in d.summary["masks"]
