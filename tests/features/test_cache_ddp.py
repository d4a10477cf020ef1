"""A 2-process Lightning DDP fit (CPU, gloo) builds the cache collectively and trains from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddp_launch import folder_bytes, free_port
from fixtures.eurosat import make as fx
from satdifuser.data.datamodule import EuroSATDataModule
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.extractor import FeatureExtractor

SCRIPT = Path(__file__).with_name("cache_ddp_fit.py")


@pytest.mark.slow  # ~40 s: three interpreters importing Lightning on a 2-core machine
def test_two_process_ddp_fit_trains_from_the_single_process_cache(tmp_path: Path) -> None:
    root = fx.make(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(SCRIPT), str(root), str(tmp_path / "ddp"), str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["train_batches"] for r in ranks] == [2, 2]  # 20 images / 2 ranks / batch 5
    train_ids = EuroSATDataModule(root, budget=None).dataset("train").files
    assert not set(ranks[0]["ids"]) & set(ranks[1]["ids"])  # DistributedSampler: disjoint
    assert sorted(ranks[0]["ids"] + ranks[1]["ids"]) == sorted(train_ids)
    synced = [{k: v for k, v in r["metrics"].items() if "loss" not in k} for r in ranks]
    assert synced[0] == synced[1] and "val/overall_accuracy" in synced[0]  # torchmetrics sync
    ex = FeatureExtractor("tiny-pixel", timesteps=[21, 61], image_size=16)
    dm = EuroSATDataModule(root, budget=None, batch_size=5)
    one = CachedDataModule(
        dm, ex, tmp_path / "one", shard_size=4, extract_batch_size=2, progress=False
    )
    one.setup("fit")
    for split in ("train", "val"):
        assert folder_bytes(tmp_path / "ddp" / split) == folder_bytes(tmp_path / "one" / split)
