"""``bench probe_speed`` plumbing: the reference-style extractor feeds the same model; the report's
extrapolation is the printed formula applied to the measured per-image costs (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from satdifuser.bench.probe_speed import ReferenceStyleExtractor, run
from satdifuser.features.extractor import FeatureExtractor


def test_reference_style_extractor_returns_our_feature_layout() -> None:
    fx = FeatureExtractor("tiny-sd", timesteps=[21, 61, 161])
    ref = ReferenceStyleExtractor(fx)
    images = torch.rand(2, 3, 32, 32)
    ours, theirs = fx(images), ref(images)
    assert [t.shape for t in theirs] == [t.shape for t in ours]
    assert not torch.allclose(theirs[0], ours[0])  # 10-step inversion + posterior sample differ


def test_probe_speed_report_applies_its_formula(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["--backbone", "tiny-sd", "--train-images", "2", "--val-images", "1", "--epochs", "2",
            "--measure-epochs", "2", "--batch-size", "2", "--projection-dim", "16",
            "--root", str(tmp_path / "absent"), "--threads", "1", "--out", str(out),
            "--full-train", "30", "--full-val", "20"]  # fmt: skip
    assert run(argv) == 0
    rep = json.loads(out.read_text())
    p, raw, x = rep["per_image_s"], rep["raw_s"], rep["extrapolated"]
    assert rep["config"]["images"] == "random" and rep["config"]["cache_bytes"] > 0
    assert abs(p["ref_train"] * 2 * 2 - raw["ref_train"]) < 1e-9  # 2 epochs x 2 images
    assert abs(x["ref_s"] - 2 * (30 * p["ref_train"] + 20 * p["ref_val"])) < 1e-6
    ours = 50 * p["ours_extract"] + 2 * (30 * p["ours_train"] + 20 * p["ours_val"])
    assert abs(x["ours_s"] - ours) < 1e-6
    c = rep["per_image_cpu_s"]
    assert abs(x["ref_cpu_s"] - 2 * (30 * c["ref_train"] + 20 * c["ref_val"])) < 1e-6
    w = rep["measured_whole_probe"]
    assert abs(w["ref_s"] - raw["ref_train"] - raw["ref_val"]) < 1e-9 and w["speedup"] > 0
