"""``satdifuser demo``: shipped backbone + EuroSAT, extract, train GW + linear head, test, plots."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from satdifuser.errors import ConfigError

EPILOG = """data root: --data, else $SATDIFUSER_DATA, else a shared/data folder beside the project,
else the official EuroSAT archive (90 MB) is downloaded into the user cache folder.
Features are cached ($SATDIFUSER_CACHE or ~/.cache/satdifuser/features), so a rerun skips the
extraction; `satdifuser bench eurosat` shares the cache."""


def build_parser() -> argparse.ArgumentParser:
    """The options of ``satdifuser demo``."""
    p = argparse.ArgumentParser(
        prog="satdifuser demo",
        description="End-to-end demo: the shipped diffusion backbone as a frozen feature "
        "extractor on EuroSAT (GW fusion + linear head on 200 labels per class, fixed test "
        "split). A few minutes on an idle 2-core CPU.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backbone", default="satdifuser-eurosat-tiny", help="name or folder")
    p.add_argument("--data", default=None, help="data root holding eurosat_rgb/ (or 2750/)")
    p.add_argument(
        "--download",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="download EuroSAT (90 MB) when no data root holds it (default: yes)",
    )
    p.add_argument(
        "--out", default="satdifuser-demo", help="output folder (default ./satdifuser-demo)"
    )
    p.add_argument("--budget", type=int, default=200, help="labels per class (default 200)")
    p.add_argument("--fusion", default="global_weighted", help="concat, global_weighted, "
                   "local_weighted or moe (default global_weighted)")  # fmt: skip
    p.add_argument("--timesteps", default="10", help="diffusion timesteps (default 10)")
    p.add_argument("--pool", type=int, default=4, help="max side of pooled maps (default 4)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    p.add_argument("--min-steps", type=int, default=150, help="at least this many optimiser steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="feature cache folder")
    p.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser demo``."""
    from satdifuser.bench.demo import DemoConfig, run_demo

    args = build_parser().parse_args(argv)
    try:
        timesteps = tuple(int(t) for t in args.timesteps.split(",") if t.strip())
    except ValueError:
        raise ConfigError(
            f"--timesteps {args.timesteps!r} must be comma-separated integers, e.g. 10 or 10,50"
        ) from None
    for name, value in (
        ("--budget", args.budget),
        ("--pool", args.pool),
        ("--epochs", args.epochs),
    ):
        if value < 1:
            raise ConfigError(f"{name}={value} must be >= 1")
    if not timesteps:
        raise ConfigError("--timesteps is empty; give at least one timestep, e.g. 10")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    cfg = DemoConfig(
        backbone=args.backbone,
        data=args.data,
        download=args.download,
        out=Path(args.out),
        budget=args.budget,
        fusion=args.fusion,
        timesteps=timesteps,
        pool=args.pool,
        epochs=args.epochs,
        min_steps=max(0, args.min_steps),
        seed=args.seed,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    run_demo(cfg)
    return 0


__all__ = ["build_parser", "run"]
