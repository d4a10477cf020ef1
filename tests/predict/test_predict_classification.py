"""Classification and multi-label prediction into a CSV, footprints of georeferenced inputs."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from predict_fakes import UTM_ORIGIN, FakeClassifier, write_geotiff

from satdifuser.data.crs import utm_to_lonlat
from satdifuser.predict import predict


def _solid(colour: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> np.ndarray:
    """(3, H, W) uint8 image of one colour."""
    return np.broadcast_to(np.array(colour, dtype=np.uint8)[:, None, None], (3, *size)).copy()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(np.moveaxis(_solid((200, 10, 10)), 0, -1)).save(root / "a_red.png")
    Image.fromarray(np.moveaxis(_solid((10, 10, 200), (20, 24)), 0, -1)).save(root / "b_blue.png")
    write_geotiff(root / "c_green.tif", _solid((10, 200, 10)))
    write_geotiff(root / "sub" / "d_plain.tif", _solid((10, 10, 190)), crs=None)
    (root / "notes.txt").write_text("not an image")
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_folder_of_pngs_and_geotiffs_gives_one_csv_in_input_order(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pred.csv"
    result = predict(FakeClassifier(), [folder], out, batch_size=2)
    rows = _rows(out)
    assert [Path(r["path"]).name for r in rows] == [
        "a_red.png", "b_blue.png", "c_green.tif", "d_plain.tif"
    ]  # fmt: skip
    assert [r["predicted"] for r in rows] == ["red", "blue", "green", "blue"]
    assert list(rows[0]) == ["path", "predicted", "prob_red", "prob_green", "prob_blue"]
    probs = np.array([[float(r[f"prob_{c}"]) for c in ("red", "green", "blue")] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert result.outputs == [out] and result.stats.tiles == 4


def test_footprints_geojson_holds_only_georeferenced_inputs_in_wgs84(
    folder: Path, tmp_path: Path
) -> None:
    fp = tmp_path / "fp.geojson"
    predict(FakeClassifier(), [folder], tmp_path / "out", footprints=fp)
    assert (tmp_path / "out" / "predictions.csv").is_file()
    features = json.loads(fp.read_text())["features"]
    assert [Path(f["properties"]["path"]).name for f in features] == ["c_green.tif"]
    props, ring = features[0]["properties"], features[0]["geometry"]["coordinates"][0]
    assert props["predicted"] == "green" and props["crs"] == "EPSG:32633"
    assert ring[0] == ring[-1] and len(ring) == 4 * 8 + 1
    lons, lats = zip(*ring, strict=True)
    west, north = utm_to_lonlat(*UTM_ORIGIN, zone=33, north=True)
    east, south = utm_to_lonlat(UTM_ORIGIN[0] + 160, UTM_ORIGIN[1] - 160, zone=33, north=True)
    bounds = (min(lons), min(lats), max(lons), max(lats))
    assert bounds == pytest.approx((west, south, east, north), abs=1e-6)
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    assert area2 > 0  # counter-clockwise exterior ring (RFC 7946)


def test_footprints_csv_has_wkt_polygons(folder: Path, tmp_path: Path) -> None:
    fp = tmp_path / "fp.csv"
    predict(FakeClassifier(), [folder / "c_green.tif"], tmp_path / "p.csv", footprints=fp)
    (row,) = _rows(fp)
    assert row["crs"] == "EPSG:32633" and row["footprint_wkt"].startswith("POLYGON ((15.")


def test_multilabel_predicts_every_class_above_threshold(tmp_path: Path) -> None:
    img = tmp_path / "x.png"
    Image.fromarray(np.moveaxis(_solid((255, 230, 0)), 0, -1)).save(img)
    predict(FakeClassifier("multilabel"), [img], tmp_path / "p.csv", threshold=0.5)
    assert _rows(tmp_path / "p.csv")[0]["predicted"] == "red;green"


def test_missing_input_and_empty_folder_are_named(tmp_path: Path) -> None:
    from satdifuser.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match=r"input .*nope\.png does not exist"):
        predict(FakeClassifier(), [tmp_path / "nope.png"], tmp_path / "p.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="holds no image files"):
        predict(FakeClassifier(), [tmp_path / "empty"], tmp_path / "p.csv")
