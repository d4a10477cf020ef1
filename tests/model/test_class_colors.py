"""class_colors: optional RGB per class, saved next to class_names and used by predict's PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_model import make_model

from satdifuser.cli.main import main
from satdifuser.errors import ConfigError
from satdifuser.model import SatDiFuserModel
from satdifuser.predict.writers import class_colours

COLORS = [[60, 16, 152], [132, 41, 246], [110, 193, 228]]


def _folder(tmp_path: Path, colors: list | None) -> Path:
    m = make_model("segmentation", pool=None)
    model = SatDiFuserModel(m.extractor, m.fusion, m.head, "segmentation", m.class_names,
                            m.standardizer, class_colors=colors)  # fmt: skip
    return model.save_pretrained(tmp_path / "model")


def _predict_png(folder: Path, tmp_path: Path) -> Image.Image:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    argv = ["predict", "--model", str(folder), str(tmp_path / "in.png"), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    return Image.open(out)


def test_class_colors_round_trip_and_paint_the_predicted_png(tmp_path: Path) -> None:
    folder = _folder(tmp_path, COLORS)
    config = json.loads((folder / "config.json").read_text())
    assert config["class_colors"] == COLORS
    loaded = SatDiFuserModel.from_pretrained(folder)
    assert loaded.class_colors == [tuple(c) for c in COLORS]
    img = _predict_png(folder, tmp_path)
    assert img.getpalette()[:9] == [v for c in COLORS for v in c]
    ids, rgb = np.asarray(img), np.asarray(img.convert("RGB"))
    assert set(np.unique(ids)) <= {0, 1, 2}
    for k in np.unique(ids):
        assert (rgb[ids == k] == COLORS[k]).all()


def test_old_config_without_the_key_loads_and_predicts_with_the_default_palette(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path, None)
    config = json.loads((folder / "config.json").read_text())
    assert config.pop("class_colors") is None
    (folder / "config.json").write_text(json.dumps(config))
    assert SatDiFuserModel.from_pretrained(folder).class_colors is None
    img = _predict_png(folder, tmp_path)
    assert img.getpalette()[:9] == [v for c in class_colours(3) for v in c]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (COLORS[:2], r"class_colors has 2 entries but the model has 3 classes"),
        ("#3C1098", r"class_colors has a str but the model has 3 classes"),
        ([*COLORS[:2], [0, 0, 256]], r"class_colors\[2\]=\[0, 0, 256\] is not \[r, g, b\]"),
        ([[-1, 0, 0], *COLORS[1:]], r"class_colors\[0\]=\[-1, 0, 0\] is not"),
        ([[0, 0, 0.5], [1, 2], [1, 2, 3]], r"class_colors\[0\]=.*\(2 bad entries\)"),
        ([[True, 0, 0], *COLORS[1:]], r"class_colors\[0\]=\[True, 0, 0\]"),
    ],
)
def test_bad_class_colors_is_one_config_error_on_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: object, match: str
) -> None:
    folder = _folder(tmp_path, None)
    config = json.loads((folder / "config.json").read_text())
    config["class_colors"] = bad
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=match) as info:
        SatDiFuserModel.from_pretrained(folder)
    assert str(info.value).startswith(str(folder / "config.json")) and "\n" not in str(info.value)
    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(png)
    assert main(["predict", "--model", str(folder), str(png), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ConfigError" in err[0] and "class_colors" in err[0]
    with pytest.raises(ConfigError, match=match):  # the constructor checks the same way
        m = make_model()
        SatDiFuserModel(m.extractor, m.fusion, m.head, "segmentation", m.class_names,
                        class_colors=bad)  # type: ignore[arg-type]  # fmt: skip
