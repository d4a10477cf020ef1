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

from satdifuser.bench.common import budget_rows, cpu_description, default_cache_root
from satdifuser.bench.probe import ProbeConfig, ProbeResult, train_fusion_probe
from satdifuser.errors import DatasetNotFoundError

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


def open_eurosat(cfg: DemoConfig, log: Log) -> tuple[Any, Any]:
    """Train (first ``budget`` per class) and test splits; downloads when nothing is found."""
    from satdifuser.data.eurosat import EuroSAT
    from satdifuser.data.roots import resolve_data_root

    try:
        root = resolve_data_root(cfg.data, EuroSAT.folder_name)
    except DatasetNotFoundError:
        if not cfg.download:
            raise
        root = Path(cfg.download_root)
        log(f"EuroSAT not found locally: downloading the official archive into {root}")
    train = EuroSAT(root, split="train", budget=cfg.budget, download=cfg.download)
    test = EuroSAT(root, split="test")
    return train, test


def run_demo(cfg: DemoConfig, log: Log = print) -> dict[str, Any]:
    """Run the demo; returns the metrics payload (also written to ``cfg.out/metrics.json``)."""
    from satdifuser.bench.features import (
        diffusion_extractors,
        extract_all,
        load_backbone,
        tap_groups,
    )
    from satdifuser.tasks.report import markdown_report, split_metrics
    from satdifuser.viz import (
        atomic_write_json,
        atomic_write_text,
        plot_confusion_matrix,
        plot_fusion_weights,
    )

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    train_ds, test_ds = open_eurosat(cfg, log)
    classes = list(train_ds.classes)
    log(
        f"EuroSAT: {len(train_ds)} labelled training images ({cfg.budget}/class), "
        f"{len(test_ds)} test images; split from {train_ds.split_source}"
    )
    bb = load_backbone(cfg.backbone)
    groups = tap_groups(bb)
    taps = groups["resnet"] + groups["attention"]
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_root()
    log(f"backbone {bb.name}: taps {', '.join(taps)}; timesteps {list(cfg.timesteps)}")
    log(f"extracting features (cached in {cache}; a rerun reuses them)")
    t = time.perf_counter()
    extractors = diffusion_extractors(bb, taps, cfg.timesteps, cfg.pool)
    feats = extract_all(
        extractors,
        {"train": train_ds, "test": test_ds},
        cache,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
    )
    seconds["extract"] = time.perf_counter() - t
    train = feats["train"].rows(budget_rows(feats["train"].labels, cfg.budget))
    probe = ProbeConfig(fusion=cfg.fusion, epochs=cfg.epochs, min_steps=cfg.min_steps)
    log(f"training {cfg.fusion} fusion + linear head (CPU recipe: {probe.to_dict()})")
    t = time.perf_counter()
    result = _train(train, feats["test"], probe, cfg, classes)
    seconds["train+test"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0

    out = Path(cfg.out)
    scalars, per_class = split_metrics(result.metrics, "test")
    support = {c: int(result.confusion[i].sum()) for i, c in enumerate(classes)}
    fusion = result.model.fusion if result.model is not None else None
    weights = fusion.interpretable_weights() if fusion is not None else {}
    payload = {
        "stage": "test",
        "task": "EuroSAT scene classification (satdifuser demo)",
        "metrics": scalars,
        "per_class": per_class,
        "class_names": classes,
        "confusion_matrix": result.confusion.tolist(),
        "fusion_weights": {k: v.tolist() for k, v in weights.items()},
        "fusion_weight_axes": fusion.weight_axes() if fusion is not None else {},
        "backbone": cfg.backbone,
        "backbone_weights": bb.weights_id(),
        "taps": taps,
        "timesteps": list(cfg.timesteps),
        "pool": cfg.pool,
        "budget_per_class": cfg.budget,
        "train_images": len(train),
        "test_images": len(feats["test"]),
        "split": train_ds.split_source,
        "probe_config": probe.to_dict(),
        "seed": cfg.seed,
        "seconds": seconds,
        "machine": cpu_description(),
    }
    paths = {"metrics.json": atomic_write_json(out / "metrics.json", payload)}
    title = f"satdifuser demo: EuroSAT test, {cfg.fusion} on {cfg.backbone}"
    paths["metrics.md"] = atomic_write_text(
        out / "metrics.md", markdown_report(scalars, per_class, title, support)
    )
    if weights and fusion is not None:
        paths["fusion_weights.png"] = out / "fusion_weights.png"
        plot_fusion_weights(
            weights, paths["fusion_weights.png"], fusion.weight_axes(),
            title=f"{type(fusion).__name__} weights",
        )  # fmt: skip
    paths["confusion_matrix.png"] = out / "confusion_matrix.png"
    plot_confusion_matrix(
        result.confusion, paths["confusion_matrix.png"], classes, title="test confusion matrix"
    )
    log("")
    log(summary_table(scalars, per_class, classes, support))
    log(
        f"time: extract {seconds['extract'] / 60:.1f} min, train+test "
        f"{seconds['train+test'] / 60:.1f} min, total {seconds['total'] / 60:.1f} min"
    )
    for path in paths.values():
        log(f"wrote {path}")
    payload["paths"] = {k: str(v) for k, v in paths.items()}
    return payload


def _train(train: Any, test: Any, probe: ProbeConfig, cfg: DemoConfig, classes: list[str]
           ) -> ProbeResult:  # fmt: skip
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, unit="epoch", desc="train", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        return train_fusion_probe(train, None, test, probe, cfg.seed, classes, progress)
    finally:
        if bar is not None:
            bar.close()


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


__all__ = ["DemoConfig", "open_eurosat", "run_demo", "summary_table"]
