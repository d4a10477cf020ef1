"""One run of ``satdifuser bench geobench``: the library task, trained and tested on cached data.

Classification and multi-label: fusion + linear head on standardised pooled maps; segmentation:
fusion + UPerNet head (see ``satdifuser.bench.geobench``). Training is ``tasks.fit_and_test``, the
code path of ``satdifuser fit`` + ``test``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from satdifuser.bench.geobench_runs import Recipe, Run
from satdifuser.tasks.runner import seed_init


def _scalar_metrics(test: dict[str, float | None]) -> dict[str, float]:
    return {k.split("/", 1)[1]: float(v) for k, v in test.items()
            if k.startswith("test/") and k.count("/") == 1 and v is not None}  # fmt: skip


def build_task(task_type: str, extractor: Any, num_classes: int, recipe: Recipe, fusion: str,
               ignore_index: int, class_names: list[str], n_train: int) -> Any:  # fmt: skip
    """The library task of one run (classification, multi-label or segmentation)."""
    from satdifuser.bench.recipe import ProbeConfig, fusion_args
    from satdifuser.tasks import (
        ClassificationTask,
        MultiLabelClassificationTask,
        SegmentationTask,
    )

    cfg = ProbeConfig(fusion=fusion, projection_dim=recipe.projection_dim,
                      bottleneck_dim=recipe.bottleneck_dim, num_groups=recipe.num_groups,
                      epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                      min_lr=recipe.min_lr)  # fmt: skip
    warmup = max(1, recipe.epochs // 8)
    steps = recipe.epochs * math.ceil(max(1, n_train) / recipe.batch_size)
    common: dict[str, Any] = dict(
        fusion=fusion, fusion_args=fusion_args(cfg, steps), lr=recipe.lr,
        min_lr=recipe.min_lr, warmup_epochs=min(warmup, max(0, recipe.epochs - 1)),
        warmup_start_lr=min(2e-5, recipe.lr), early_stopping_patience=None,
        class_names=class_names,
    )  # fmt: skip
    if task_type == "segmentation":
        return SegmentationTask(extractor, num_classes, head="upernet",
                                head_args={"channels": recipe.head_channels},
                                ignore_index=ignore_index, **common)  # fmt: skip
    if task_type == "multilabel":
        return MultiLabelClassificationTask(extractor, num_classes, standardize=True, **common)
    return ClassificationTask(extractor, num_classes, head="linear", standardize=True,
                              ignore_index=ignore_index, **common)  # fmt: skip


def train_run(run: Run, data: Any, extractor: Any, info: dict[str, Any], recipe: Recipe
              ) -> dict[str, Any]:  # fmt: skip
    """Train and test one run on its cached data; the result fields (no file written)."""
    from satdifuser.tasks import fit_and_test

    data.datamodule.seed = run.seed  # batch order of this seed (the cache is shared)
    seed_init(run.seed)  # the seed also decides the initialisation of fusion and head
    task = build_task(info["task_type"], extractor, info["num_classes"], recipe,
                      run.model.fusion, info["ignore_index"], info["classes"],
                      info["sizes"]["train"])  # fmt: skip
    t0 = time.perf_counter()
    result = fit_and_test(task, data, run.folder, max_epochs=recipe.epochs, seed=run.seed,
                          progress=False)  # fmt: skip
    metrics = _scalar_metrics(result.test)
    return {"status": "ok", "metrics": metrics,
            "best_epoch": result.best_epoch, "seconds": time.perf_counter() - t0,
            "model_dir": str(result.model_dir) if result.model_dir else None}  # fmt: skip


__all__ = ["build_task", "train_run"]
