from __future__ import annotations

import re
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
    assert r.summary["classes"] == dict.fromkeys(fx_eurosat.CLASSES, 5)
    assert r.summary["num_classes"] == 10
    splits = r.summary["splits"]
    assert (splits["train"], splits["val"], splits["test"], splits["unlabeled"]) == (20, 10, 10, 10)
    assert splits["from"].endswith("eurosat_rgb_split.json")
    assert len(r.samples) == 12 and len({int(s["label"]) for s in r.samples}) == 10
    assert "32x32 (12)" in r.summary["image_sizes"]


def test_dubai_summary_uses_colour_table(root: Path) -> None:
    r = inspect_path(root / "dubai_aerial", samples=3, seed=1)
    assert "Dubai" in r.summary["masks"] and r.classes[0] == "Building"
    assert r.summary["groups"] == {"tile_1": 2, "tile_2": 2, "tile_8": 2}
    shares = r.summary["pixel_shares"]
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
    assert r.summary["rgb_view"] == ["B04", "B03", "B02"]
    assert "georeferenced: 6/6" in r.summary["meta"] and "date 2018-07" in r.summary["meta"]
    assert r.summary["classes"] == {"Forest": 5, "Pasture": 5, "SeaLake": 5}
    p = inspect_path(root / "gt_pairs", samples=2)
    assert p.summary["task_type"] == "segmentation" and p.classes == ["0", "1", "2"]


def test_geobench_summary_from_reader(root: Path) -> None:
    r = inspect_path(root / "gb" / "segmentation_v1.0" / "m-cashew-plant", samples=2)
    assert r.summary["task_type"] == "segmentation" and r.summary["splits"]["train"] == 3
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
        and sum(r.summary["classes"].values()) == 27000
    )
    d = inspect_path(shared_data / "dubai_aerial", samples=1)
    assert d.summary["images"] == "54 image/mask pairs" and "Dubai" in d.summary["masks"]


def test_summary_keys_are_plain(root: Path) -> None:
    for rel in ("es/eurosat_rgb", "dubai_aerial", "gt_classes", "gt_pairs",
                "gb/segmentation_v1.0/m-cashew-plant", "gb"):  # fmt: skip
        keys = list(inspect_path(root / rel, samples=2).summary)
        assert all(re.fullmatch(r"[a-z_]+", k) for k in keys), (rel, keys)


def test_geobench_lists_every_band_and_every_class(tmp_path: Path) -> None:
    import h5py

    fx = fx_geobench.make_task(tmp_path, "m-chesapeake", n=(2, 1, 1))
    for sid in fx.ids["train"]:  # only water (1) and roads (6): five classes have no pixel
        with h5py.File(fx.task_dir / f"{sid}.hdf5", "r+") as h5:
            h5["label"][...] = np.where(np.arange(16)[None, :] < 8, 1, 6).repeat(16, 0)
    r = inspect_path(fx.task_dir, samples=2)
    s = r.summary
    assert "NearInfrared" in s["bands"] and s["bands"].startswith("4 in file")
    assert set(s["band_values"]) == {"Red", "Green", "Blue", "NearInfrared"}
    assert s["rgb_view"] == ["Red", "Green", "Blue"]
    assert s["num_classes"] == 7 and list(s["classes"]) == list(r.classes)
    assert s["classes"] == {"no data": 0, "water": 256, "tree-canopy-forest": 0,
                            "low-vegetation-field": 0, "barren-land": 0,
                            "impervious-other": 0, "impervious-roads": 256}  # fmt: skip
    assert s["nodata_class"].startswith("0 (no data)") and "verified" in s["class_names"]


def test_geobench_eurosat_shift_is_reported(root: Path) -> None:
    s = inspect_path(root / "gb" / "classification_v1.0" / "m-eurosat", samples=3).summary
    assert s["band_mapping"]["09 - Water vapour"] == "10 - SWIR - Cirrus"
    (warn,) = [w for w in s["warnings"] if w.startswith("band statistics")]
    assert "contradict the stored band names" in warn and "'10 - SWIR - Cirrus' (B10)" in warn
    assert warn.endswith("corrected names (band_mapping, fix_band_shift=True), which fit the "
                         "statistics")  # fmt: skip
    clean = inspect_path(root / "gb" / "segmentation_v1.0" / "m-cashew-plant", samples=2)
    assert not any("band statistics" in w for w in clean.summary.get("warnings", []))


def test_geotiff_band_order_check(tmp_path: Path) -> None:
    """EuroSAT-MS files store B8A last; descriptions claiming ESA order are contradicted."""
    import tifffile

    means = np.array([1354, 1118, 1042, 947, 1199, 1999, 2369, 2296, 732, 12, 1819, 1118, 2594])
    rng = np.random.default_rng(0)
    esa = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
           "B12"]  # fmt: skip
    for names, folder in ((esa, "wrong"), (esa[:8] + esa[9:] + ["B8A"], "right")):
        for cls in ("Forest", "River"):
            (tmp_path / folder / cls).mkdir(parents=True)
            for n in (1, 2):
                arr = means[:, None, None] * rng.uniform(0.8, 1.2, size=(13, 16, 16))
                tags = [*fx_geotiff.utm_tags(*fx_geotiff.UTM_TIE),
                        (42112, "s", 0, fx_geotiff.gdal_metadata(names, 0.0), True)]
                tifffile.imwrite(tmp_path / folder / cls / f"{cls}_{n}.tif",
                                 arr.astype(np.uint16), photometric="minisblack",
                                 planarconfig="separate", extratags=tags)  # fmt: skip
    bad = inspect_path(tmp_path / "wrong", samples=4).summary["warnings"]
    (warn,) = [w for w in bad if w.startswith("band statistics")]
    assert "band names (GDAL band descriptions)" in warn and "'B09' averages" in warn
    assert "fit the order B8A last (EuroSAT-MS GeoTIFFs)" in warn
    good = inspect_path(tmp_path / "right", samples=4).summary.get("warnings", [])
    assert not any(w.startswith("band statistics") for w in good)
