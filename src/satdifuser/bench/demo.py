"""The end-to-end demo behind ``satdifuser demo``: shipped backbone + EuroSAT, in minutes on a CPU.

Steps: find (or download) EuroSAT, extract and cache pooled diffusion features of the labelled
training images (200 per class) and of the fixed test split, train GW fusion + a linear head on
them, test, and write ``metrics.json``, ``metrics.md``, ``fusion_weights.png`` and
``confusion_matrix.png``. The extractor configuration equals the main configuration of
``satdifuser bench eurosat``, so both share the feature cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satdifuser.bench.common import cpu_description
from satdifuser.bench.recipe import ProbeConfig
from satdifuser.errors import DatasetNotFoundError
from satdifuser.features.cache_root import default_cache_root
from satdifuser.tasks.runner import seed_init

Log = Callable[[str], None]


@dataclass
class DemoConfig:
    """Options of the demo (the CLI flags of ``satdifuser demo``).

    Args:
        backbone: Registered backbone name or folder.
        data: Data root, or None for ``$SATDIFUSER_DATA`` / ``shared/data`` / download.
        download: Download EuroSAT (90 MB) when it is not found.
        download_root: Where a download goes when no data root is given.
        out: Output folder.
        budget: Labelled training images per class.
        fusion: Fusion registry name.
        timesteps: Diffusion timesteps.
        pool: Max side of the pooled feature maps.
        epochs: Training epochs.
        min_steps: Lower bound on optimiser steps (raises the epochs for small budgets).
        seed: Training seed.
        cache_dir: Feature cache folder (None: the user cache folder).
        batch_size: Extraction batch size.
        progress: Show progress bars.
    """

    backbone: str = "satdifuser-eurosat-tiny"
    data: str | None = None
    download: bool = True
    download_root: Path = field(default_factory=lambda: default_cache_root().parent / "data")
    out: Path = Path("satdifuser-demo")
    budget: int = 200
    fusion: str = "global_weighted"
    timesteps: tuple[int, ...] = (10,)
    pool: int = 4
    epochs: int = 30
    min_steps: int = ProbeConfig.min_steps
    seed: int = 0
    cache_dir: Path | None = None
    batch_size: int = 32
    progress: bool = True


def demo_recipe(cfg: DemoConfig, backbone: Any, root: Path) -> tuple[Any, Any]:
    """The task and data module of the demo: exactly what ``configs/eurosat_shipped.yaml``
    builds (``fit`` on that config trains the same model)."""
    from satdifuser.bench.features import tap_groups
    from satdifuser.bench.recipe import epochs_for
    from satdifuser.data import EuroSATDataModule
    from satdifuser.features import FeatureExtractor
    from satdifuser.features.cache import CachedDataModule
    from satdifuser.tasks import ClassificationTask

    groups = tap_groups(backbone)
    extractor = FeatureExtractor(
        backbone, timesteps=list(cfg.timesteps), taps=groups["resnet"] + groups["attention"],
        image_size=backbone.sample_size, pool=cfg.pool,
    )  # fmt: skip
    dm = EuroSATDataModule(root=root, budget=cfg.budget, batch_size=64, seed=cfg.seed,
                           download=cfg.download)  # fmt: skip
    for split in ("train", "val", "test"):  # find (or download) and check the data first
        dm.dataset(split)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_root()
    data = CachedDataModule(dm, extractor, cache, extract_batch_size=cfg.batch_size,
                            progress=cfg.progress)  # fmt: skip
    fusion_args = {"projection_dim": 64, "bottleneck_dim": 32, "num_groups": 8}
    if cfg.fusion == "concat":
        fusion_args.pop("bottleneck_dim")
    epochs = epochs_for(cfg.budget * 10, cfg.epochs, 64, cfg.min_steps)
    task = ClassificationTask(
        extractor, 10, fusion=cfg.fusion, fusion_args=fusion_args, head="linear", lr=1e-2,
        warmup_epochs=max(1, epochs // 8), early_stopping_patience=None, standardize=True,
    )  # fmt: skip
    task.hparams["max_epochs"] = epochs
    return task, data


def run_demo(cfg: DemoConfig, log: Log = print) -> dict[str, Any]:
    """Run the demo; returns the metrics payload (also written to ``cfg.out/metrics.json``).

    The model is trained by the library's task + data module (``tasks.fit_and_test``, the path
    of ``satdifuser fit``/``test``) and saved as ``cfg.out/model`` for ``satdifuser predict``.
    """
    from satdifuser.bench.features import load_backbone
    from satdifuser.data.eurosat import EuroSAT
    from satdifuser.data.roots import resolve_data_root
    from satdifuser.tasks import fit_and_test
    from satdifuser.tasks.report import markdown_report
    from satdifuser.viz import (
        atomic_write_json,
        atomic_write_text,
        plot_confusion_matrix,
        plot_fusion_weights,
    )

    t0 = time.perf_counter()
    try:
        root = resolve_data_root(cfg.data, EuroSAT.folder_name)
    except DatasetNotFoundError:
        if not cfg.download:
            raise
        root = Path(cfg.download_root)
        log(f"EuroSAT not found locally: downloading the official archive into {root}")
    bb = load_backbone(cfg.backbone)
    seed_init(cfg.seed)  # initialisation of fusion and head, as fit's seed_everything does
    task, data = demo_recipe(cfg, bb, root)
    epochs = int(task.hparams["max_epochs"])
    out = Path(cfg.out)
    log(f"backbone {bb.name}: taps {', '.join(task.extractor.spec.taps)}; timesteps "
        f"{list(cfg.timesteps)}; maps pooled to at most {cfg.pool} x {cfg.pool}")  # fmt: skip
    log(f"features cached in {data.cache_dir} (a rerun reuses them); then {cfg.fusion} fusion + "
        f"linear head, {epochs} epochs on {cfg.budget} labels per class")  # fmt: skip
    result = fit_and_test(task, data, out, max_epochs=epochs, seed=cfg.seed,
                          progress=cfg.progress)  # fmt: skip
    seconds = {**result.seconds, "total": time.perf_counter() - t0}
    train_ds = data.source_dataset("train")
    classes = list(task.class_names)
    scalars, per_class = split_test_metrics(result.test)
    confusion = result.confusion
    support = (
        {c: int(confusion[i].sum()) for i, c in enumerate(classes)} if confusion is not None else {}
    )
    fusion = task.fusion
    weights = fusion.interpretable_weights() if hasattr(fusion, "interpretable_weights") else {}
    payload = {
        "stage": "test",
        "task": "EuroSAT scene classification (satdifuser demo)",
        "metrics": scalars,
        "per_class": per_class,
        "class_names": classes,
        "confusion_matrix": confusion.tolist() if confusion is not None else None,
        "fusion_weights": {k: v.tolist() for k, v in weights.items()},
        "fusion_weight_axes": fusion.weight_axes() if hasattr(fusion, "weight_axes") else {},
        "backbone": cfg.backbone,
        "backbone_weights": bb.weights_id(),
        "taps": list(task.extractor.spec.taps),
        "timesteps": list(cfg.timesteps),
        "pool": cfg.pool,
        "budget_per_class": cfg.budget,
        "train_images": len(train_ds),
        "test_images": int(confusion.sum()) if confusion is not None else None,
        "split": getattr(train_ds, "split_source", None),
        "recipe": {
            "epochs": epochs,
            "best_epoch": result.best_epoch,
            "fusion": cfg.fusion,
            "fusion_args": fusion.init_config,
            "standardize": True,
            "lr": 1e-2,
            "batch_size": 64,
            "warmup_epochs": int(task.hparams["warmup_epochs"]),
            "val_every": 1,
        },
        "validation": result.val,
        "model_dir": str(result.model_dir) if result.model_dir else None,
        "seed": cfg.seed,
        "seconds": seconds,
        "machine": cpu_description(),
    }
    paths = {"metrics.json": atomic_write_json(out / "metrics.json", payload)}
    title = f"satdifuser demo: EuroSAT test, {cfg.fusion} on {cfg.backbone}"
    paths["metrics.md"] = atomic_write_text(
        out / "metrics.md", markdown_report(scalars, per_class, title, support)
    )
    if weights:
        paths["fusion_weights.png"] = out / "fusion_weights.png"
        plot_fusion_weights(
            weights, paths["fusion_weights.png"], fusion.weight_axes(),
            title=f"{type(fusion).__name__} weights",
        )  # fmt: skip
    if confusion is not None:
        paths["confusion_matrix.png"] = out / "confusion_matrix.png"
        plot_confusion_matrix(
            confusion, paths["confusion_matrix.png"], classes, title="test confusion matrix"
        )
    log("")
    log(summary_table(scalars, per_class, classes, support))
    log(
        f"time: fit (extract + train) {seconds['fit'] / 60:.1f} min, test "
        f"{seconds.get('test', 0) / 60:.1f} min, total {seconds['total'] / 60:.1f} min"
    )
    for path in paths.values():
        log(f"wrote {path}")
    if result.model_dir:
        log(f"model: {result.model_dir} (satdifuser predict --model {result.model_dir} IMAGES...)")
    payload["paths"] = {k: str(v) for k, v in paths.items()}
    return payload


def split_test_metrics(
    flat: dict[str, float | None],
) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """``test/accuracy/<class>``-style keys -> scalars and ``{metric: {class: value}}``."""
    from satdifuser.tasks.report import split_metrics

    return split_metrics(flat, "test")


def summary_table(
    scalars: dict[str, float | None],
    per_class: dict[str, dict[str, float | None]],
    classes: list[str],
    support: dict[str, int],
) -> str:
    """Plain-text table: overall accuracy, macro F1, per-class accuracy and F1 (percent)."""

    def pct(v: float | None) -> str:
        return "  n/a" if v is None else f"{100 * v:6.2f}"

    width = max(len(c) for c in classes) + 2
    lines = [
        f"overall accuracy {pct(scalars.get('overall_accuracy'))} %   "
        f"macro F1 {pct(scalars.get('f1_macro'))} %",
        "",
        f"{'class':<{width}}{'accuracy %':>11}{'F1 %':>9}{'images':>8}",
    ]
    for c in classes:
        acc = per_class.get("accuracy", {}).get(c)
        f1 = per_class.get("f1", {}).get(c)
        lines.append(f"{c:<{width}}{pct(acc):>11}{pct(f1):>9}{support.get(c, 0):>8}")
    return "\n".join(lines)


__all__ = ["DemoConfig", "demo_recipe", "run_demo", "summary_table"]
