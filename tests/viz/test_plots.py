from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from satdifuser.errors import InputError, InputShapeError
from satdifuser.viz import (
    atomic_write_json,
    plot_confusion_matrix,
    plot_fusion_weights,
    plot_segmentation_panels,
)


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_fusion_weights_heatmap_and_bars(tmp_path: Path) -> None:
    w = {"weights": torch.softmax(torch.randn(12), 0).view(3, 4), "usage": torch.rand(5)}
    axes = {"weights": (["t=21", "t=61", "t=161"], ["a", "b", "c", "d"])}
    plot_fusion_weights(w, tmp_path / "w.png", axes)
    width, height = _png(tmp_path / "w.png")
    assert width > 100 and height > 100
    assert [p.name for p in tmp_path.iterdir()] == ["w.png"]  # no temporary files left
    with pytest.raises(InputError, match="no weights"):
        plot_fusion_weights({}, tmp_path / "x.png")


def test_confusion_matrix_plot_and_shape_errors(tmp_path: Path) -> None:
    cm = torch.tensor([[5, 1], [0, 4]])
    plot_confusion_matrix(cm, tmp_path / "cm.png", ["a", "b"])
    assert _png(tmp_path / "cm.png")[0] > 100
    with pytest.raises(InputShapeError, match="expected \\(K, K\\)"):
        plot_confusion_matrix(torch.zeros(2, 3), tmp_path / "bad.png")
    with pytest.raises(InputShapeError, match="3 class names for a 2x2"):
        plot_confusion_matrix(cm, tmp_path / "bad.png", ["a", "b", "c"])
    assert not (tmp_path / "bad.png").exists()


def test_segmentation_panels_draw_ignored_pixels_and_check_sizes(tmp_path: Path) -> None:
    img = torch.rand(3, 20, 24)
    gt = torch.randint(0, 3, (20, 24))
    gt[0, :5] = 255
    pred = torch.randint(0, 3, (20, 24))
    plot_segmentation_panels([img, img], [gt, gt], [pred, gt], tmp_path / "s.png",
                             ["x", "y", "z"], ignore_index=255, titles=["one", "two"])  # fmt: skip
    assert _png(tmp_path / "s.png")[1] > 200
    with pytest.raises(InputShapeError, match="differ"):
        plot_segmentation_panels([img], [gt], [pred[:10]], tmp_path / "b.png", ["x", "y", "z"])


def test_atomic_json_write_replaces_whole_file_and_nulls_nan(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    atomic_write_json(p, {"a": 1.0, "b": float("nan"), "c": [np.float64(2.5).item()]})
    assert p.read_text().count("null") == 1
    atomic_write_json(p, {"a": 2})
    assert '"a": 2' in p.read_text() and "b" not in p.read_text()
