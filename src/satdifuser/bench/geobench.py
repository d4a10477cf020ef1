"""``satdifuser bench geobench``: GEO-Bench's protocol (tasks x partitions x seeds x models).

Every run is one (task, partition, seed, model): a satdifuser task (classification,
multi-label or segmentation, chosen by the GEO-Bench task) on a frozen extractor, trained by
``tasks.fit_and_test`` (the code path of ``satdifuser fit`` + ``test``) on the library's
feature cache (``CachedDataModule`` over ``GeoBenchDataModule``), validated every epoch, the
best epoch tested. Features are extracted once per (task, partition, model) and shared by the
seeds (content-addressed, so reruns and resumes reuse them).

Models (``--models``, comma-separated specs):

- ``satdifuser:BACKBONE[:FUSION]``: a diffusion backbone (registered name or folder),
  FUSION one of concat, gw (default), lw, moe;
- ``random:BACKBONE[:FUSION]``: the same UNet with seeded random weights (``random_like``);
- ``efficientnet_lite0[:FUSION]``: EfficientNet-Lite0 (ImageNet) stage outputs, same fusion
  and head (needs the ``efficientnet`` extra).

Recipe per task type (``configs/geobench/*.yaml``, CPU-sized widths): classification and
multi-label: every map pooled to at most ``--pool`` x ``--pool``, channels standardised on the
training rows, fusion + linear head; segmentation: full maps, fusion + UPerNet head, logits
upsampled to the mask (nothing ignored: GEO-Bench's mIoU over all classes).

Output under ``--out``: ``runs/<task>/<partition>/<model>/seed<k>/result.json`` (written
atomically, last: a run with a complete result whose config hash matches is never redone, so a
killed sweep resumes where it stopped), ``runs.csv`` (one row per run and metric, rewritten
after every run), ``tables/<task>.md``, ``aggregate.csv`` / ``aggregate.md`` (GEO-Bench's
normalised per-task IQM and the IQM over tasks, bootstrap 95 % intervals; see
``satdifuser.tasks.aggregate``) and ``iqm.png``. A run whose partition is missing or has fewer
than ``--min-samples`` samples in a split is recorded as skipped (NA) instead of failing.
"""

from __future__ import annotations

import argparse
import sys
import time

from satdifuser.bench.geobench_report import finish
from satdifuser.bench.geobench_runs import DEFAULT_MODELS
from satdifuser.bench.geobench_sweep import GeoBenchSweep
from satdifuser.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    """The options of ``satdifuser bench geobench``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench geobench",
        description="GEO-Bench protocol: tasks x partitions x seeds x models through the fit "
        "path; runs.csv, per-task tables, normalised IQM with bootstrap 95%% CIs, plot. "
        "Resumable: finished runs are never redone.",
    )
    a = p.add_argument
    a(
        "--root",
        default=None,
        help="GEO-Bench root (classification_v1.0/ ...), a benchmark "
        "folder or a folder of task folders (default: $SATDIFUSER_DATA/geobench, $GEO_BENCH_DIR)",
    )
    a("--tasks", default=None, help="comma list of tasks (default: every task found)")
    a(
        "--partitions",
        default="default",
        help="comma list: default, 0.01x_train ... 1.00x_train (0.1x is short for 0.10x_train)",
    )
    a("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    a(
        "--models",
        default=DEFAULT_MODELS,
        help="comma list of satdifuser:BACKBONE[:FUSION], random:BACKBONE[:FUSION], "
        f"efficientnet_lite0[:FUSION]; FUSION concat|gw|lw|moe (default {DEFAULT_MODELS})",
    )
    a("--epochs", type=int, default=10, help="training epochs per run (default 10)")
    a("--out", default="runs/bench-geobench", help="output folder (default runs/bench-geobench)")
    a("--cache-dir", default=None, help="feature cache (default $SATDIFUSER_CACHE or user cache)")
    a("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    r = p.add_argument_group("recipe")
    r.add_argument("--timesteps", default="10", help="diffusion timesteps (default 10)")
    r.add_argument(
        "--taps",
        default=None,
        help="fnmatch tap patterns (default: decoder resnet + attention taps, as bench eurosat)",
    )
    r.add_argument(
        "--pool",
        type=int,
        default=4,
        help="classification maps pooled to at most N x N (default 4)",
    )
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--lr", type=float, default=1e-2)
    r.add_argument("--projection-dim", type=int, default=64)
    r.add_argument("--bottleneck-dim", type=int, default=32)
    r.add_argument("--head-channels", type=int, default=64, help="UPerNet width (segmentation)")
    r.add_argument("--random-seed", type=int, default=0, help="seed of random:... weights")
    r.add_argument("--effnet-size", type=int, default=224, help="EfficientNet input size")
    g = p.add_argument_group("aggregation")
    g.add_argument(
        "--normalizer",
        default="auto",
        help="auto (the benchmark's normalizer.json where it lists the task, else the "
        "sweep's min-max), sweep, or a normalizer.json path",
    )
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    g.add_argument(
        "--min-samples",
        type=int,
        default=1,
        help="skip (NA) a run when a split has fewer samples (default 1)",
    )
    return p


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser bench geobench`` (see ``--help``)."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads={args.threads} must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sweep = GeoBenchSweep(args, argv)
    if any(m.kind == "efficientnet_lite0" for m in sweep.models):
        from satdifuser.baselines.efficientnet_lite import _import_efficientnet

        _import_efficientnet()  # fail before any work when the optional extra is missing
    runs = sweep.execute()
    finish(sweep, runs, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))


__all__ = ["build_parser", "run"]
