"""``satdifuser extract`` on tiny generated EuroSAT with the tiny-pixel backbone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ddp_launch import folder_bytes
from fixtures.eurosat import make as fx
from one_thread import _one_thread  # noqa: F401 (autouse fixture)
from satdifuser.cli.main import main
from satdifuser.features.cache import CachedFeatureDataset
from satdifuser.features.extractor import FeatureExtractor

ARGS = ["--backbone", "tiny-pixel", "--timesteps", "21,61", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make(tmp_path_factory.mktemp("eurosat"))


def _extract(root: Path, cache: Path, *extra: str) -> int:
    return main(["extract", *ARGS, "--root", str(root), "--cache-dir", str(cache), *extra])


def _folders(cache: Path, split: str) -> list[Path]:
    """The content-addressed folders of ``split`` under ``cache`` (``<split>-<key>``)."""
    return sorted(p for p in cache.glob(f"{split}-*") if p.is_dir())


def test_extract_prints_the_estimate_and_serves_the_online_features(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _extract(root, tmp_path, "--split", "val", "--batch-size", "4") == 0
    out = capsys.readouterr().out
    # tiny-pixel at 32 px: per timestep 2 x 32ch @16^2 + 2 x 16ch @32^2; fp16; + int64 label
    per = 2 * (2 * 32 * 16 * 16 + 2 * 16 * 32 * 32) * 2 + 8
    assert f"estimated size {per * 10 / 1e6:.2f} MB" in out and "cache complete" in out
    (folder,) = _folders(tmp_path, "val")
    cached = CachedFeatureDataset(folder)
    ex = FeatureExtractor("tiny-pixel", timesteps=[21, 61])
    from satdifuser.data.eurosat import EuroSAT

    ds = EuroSAT(root, split="val")
    assert cached.ids == ds.files and len(cached) == 10
    images = torch.stack([ds[i]["image"] for i in range(4)])
    online = ex(images)
    for i in range(4):
        assert int(cached[i]["label"]) == int(ds[i]["label"])
        for a, b in zip(cached[i]["features"], online, strict=True):
            torch.testing.assert_close(a, b[i], rtol=2e-3, atol=2e-3)
    assert _extract(root, tmp_path, "--split", "val", "--batch-size", "4") == 0
    assert "nothing to do" in capsys.readouterr().out


def test_another_config_gets_its_own_folder_and_a_small_budget_is_refused(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _extract(root, tmp_path, "--split", "test", "--limit", "3") == 0
    (first,) = _folders(tmp_path, "test")
    before = folder_bytes(first)
    capsys.readouterr()
    # content-addressed: another seed or another subset never reuses (or touches) that cache
    assert _extract(root, tmp_path, "--split", "test", "--limit", "3", "--seed", "1") == 0
    assert _extract(root, tmp_path, "--split", "test", "--limit", "4") == 0
    assert len(_folders(tmp_path, "test")) == 3 and folder_bytes(first) == before
    assert _extract(root, tmp_path / "b", "--split", "test", "--max-gb", "0.00001") == 2
    err = capsys.readouterr().err
    assert "InsufficientDiskError" in err and "exceeds --max-gb 1e-05" in err
    assert not (tmp_path / "b").exists()


def test_extract_killed_with_sigkill_resumes_to_an_identical_cache(
    root: Path, tmp_path: Path
) -> None:
    common = ["--split", "all", "--batch-size", "2", "--shard-size", "2"]
    assert _extract(root, tmp_path / "ref", *common) == 0
    cache = tmp_path / "killed"
    cmd = [sys.executable, "-m", "satdifuser", "extract", *ARGS, "--root", str(root),
           "--cache-dir", str(cache), *common]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    (ref,) = _folders(tmp_path / "ref", "all")
    first = cache / ref.name / "shard-00000.safetensors"  # same config, same key
    deadline = time.monotonic() + 300
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    )
    shards = sorted((cache / ref.name).glob("shard-*.safetensors"))
    assert not (cache / ref.name / "index.json").exists() and 1 <= len(shards) < 25
    assert _extract(root, cache, *common) == 0
    assert folder_bytes(cache / ref.name) == folder_bytes(ref)


def test_extract_from_a_fit_config_is_reused_by_fit(root: Path, tmp_path: Path) -> None:
    from satdifuser.data.datamodule import EuroSATDataModule
    from satdifuser.features.cache import CachedDataModule

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "model:\n  class_path: satdifuser.tasks.ClassificationTask\n  init_args:\n"
        "    num_classes: 10\n    extractor:\n"
        "      class_path: satdifuser.features.FeatureExtractor\n"
        "      init_args: {backbone: tiny-pixel, timesteps: [21, 61], image_size: 16}\n"
        f"data:\n  class_path: satdifuser.data.EuroSATDataModule\n  init_args: {{root: {root}}}\n"
    )
    argv = ["extract", "--config", str(cfg), "--split", "val", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--no-progress", "--threads", "1"]) == 0
    ex = FeatureExtractor("tiny-pixel", timesteps=[21, 61], image_size=16)
    ex.forward = lambda *a, **k: pytest.fail("the cache was rebuilt")  # type: ignore[method-assign]
    dm = CachedDataModule(EuroSATDataModule(root), ex, tmp_path / "c", progress=False)
    dm.setup("validate")
    assert len(dm.datasets["val"]) == 10
