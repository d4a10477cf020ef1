"""Run under ``torchrun --nproc_per_node 2``: a Lightning DDP fit (CPU, gloo) from the cache.

Usage: ``cache_ddp_fit.py DATA_ROOT CACHE_DIR OUT_DIR``. Each rank writes ``OUT_DIR/rank<r>.json``
with the world size, its training batches and the sample ids it trained on in epoch 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from lightning.pytorch import Callback, Trainer, seed_everything

from satdifuser.data.datamodule import EuroSATDataModule
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.extractor import FeatureExtractor
from satdifuser.tasks import ClassificationTask

SMALL_FUSION = {"projection_dim": 16, "bottleneck_dim": 8, "num_groups": 4}


class SeenIds(Callback):
    """Ids of the training samples of epoch 0 on this rank."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        if trainer.current_epoch == 0:
            self.ids += list(batch["id"])


def main(root: Path, cache: Path, out: Path) -> None:
    torch.set_num_threads(1)
    seed_everything(0)
    ex = FeatureExtractor("tiny-pixel", timesteps=[21, 61], image_size=16)
    dm = EuroSATDataModule(root, budget=None, batch_size=5)
    task = ClassificationTask(
        ex, num_classes=10, warmup_epochs=1, schedule_epochs=2, ignore_index=dm.ignore_index,
        fusion_args=SMALL_FUSION,
    )  # fmt: skip
    data = CachedDataModule(dm, ex, cache, shard_size=4, extract_batch_size=2, progress=False)
    seen = SeenIds()
    trainer = Trainer(
        max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=out,
        callbacks=[seen],
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    info = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "train_batches": trainer.num_training_batches,
        "ids": seen.ids,
        "metrics": metrics,
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:4]))
