"""``satdifuser bench dubai``: UPerNet on fused diffusion features vs EfficientNet-Lite0 stages.

Segmentation on the Dubai aerial imagery, split by tile (train 1, 2, 3, 4, 7; validate on 8 by
default). Both arms train the same trainable part (Global Weighted fusion + UPerNet, small widths
for a 2-core CPU budget) on top of a frozen extractor:

- ``satdifuser``: decoder ``conv2`` taps of a pixel diffusion UNet at several timesteps
  (SatDiFuser, Jia et al., ICCV 2025, arXiv 2503.07890);
- ``efficientnet``: the last block of every resolution stage of EfficientNet-Lite0 (ImageNet).

Images are downscaled by ``--scale``. Each arm is a :class:`~satdifuser.tasks.SegmentationTask`
trained by ``tasks.fit_and_test``: the features of the ``--window`` grid windows of the training
images are extracted once into the library's feature cache (``CachedDataModule``; reruns reuse
them), the task trains whole epochs over random ``--crop`` px crops of them (one crop of each
window per epoch, a new one every epoch: ``CachedDataModule(train_crop=...)``, each randomly
flipped and turned by quarter turns unless ``--no-flips``: ``train_flips``; at least
``--steps`` steps), is validated once after the last epoch on whole windows (no model selection
on the scored tile), and is tested on whole validation images with its sliding window
(overlapping windows averaged), logits upsampled to the native mask: every labelled native pixel
is scored. Outputs: ``results.json`` (raw figures, confusion,
wall and CPU seconds per phase), ``results.md`` (a ready-to-paste BENCHMARKS section), overlay
and fusion-weight PNGs, and each arm's saved model under ``runs/<arm>/model``.

Seeds: ``--seed S`` (default 0) is one run, seeded in full: the fusion / head initialisation and
the data order (batches, crops, flips). ``--seeds 0,1,2`` (not with ``--seed``; ``--seeds S`` is
``--seed S``) builds and extracts each arm once, then makes that full run for every seed: run
folders ``runs/<arm>/seed<S>``, PNGs ``overlay_<arm>_seed<S>.png`` and
``fusion_weights_<arm>_seed<S>.png``; ``results.json`` gives each arm's per-seed ``runs`` and
a ``summary`` (mean and sample std, n - 1, over seeds, of mIoU, OA and every class's IoU), and
``results.md`` the mean ± std table with the headline on the mean mIoU, then one row per seed.
``results.partial.json`` keeps finished arms, and the finished seeds of the running arm.

Deviations from the paper's segmentation recipe, all to fit ~15 minutes on 2 CPU cores: fusion
projection 32 (bottleneck 16, 4 GroupNorm groups) and UPerNet width 32 instead of 384 (96, 32
groups) and 512; a short AdamW schedule (lr 3e-3) instead of full schedules; images at x0.25;
random 128 px crops of the cached 256 px windows, randomly flipped and turned (the old recipe's
flips and quarter turns, of the cached maps and masks; ``--no-flips``), the only augmentation;
the finest (stride-1) decoder level and EfficientNet's head are left out (``--min-stride 2``, so
both heads run at stride 2). Every one of these is an option.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from satdifuser.bench.dubai_report import (
    PhaseClock,
    machine,
    markdown_section,
    seeds_entry,
    segmentation_metrics_of,
)
from satdifuser.data.dubai_aerial import DUBAI_CLASSES, DUBAI_COLORS
from satdifuser.data.scaled_tiles import FitTestDataModule, ScaledDubaiDataModule
from satdifuser.errors import ConfigError
from satdifuser.features.cache_root import default_cache_root
from satdifuser.features.cache_view import SelectMaps
from satdifuser.tasks.runner import seed_init
from satdifuser.viz import atomic_write_json, atomic_write_text, plot_fusion_weights

MODELS = ("satdifuser", "efficientnet")
IGNORE = 255

DEFAULTS: dict[str, Any] = {
    "scale": 0.25,
    "window": 256,
    "overlap": 0.25,
    "steps": 300,
    "crop": 128,
    "batch_size": 8,
    "overlays": 3,
    "train_limit": None,
    "val_limit": None,
}
QUICK: dict[str, Any] = {
    "scale": 1.0,
    "window": 32,
    "overlap": 0.5,
    "steps": 2,
    "crop": 16,  # half the window, as 128 of 256; arms with a coarser stride train whole windows
    "batch_size": 2,
    "overlays": 1,
    "train_limit": 2,
    "val_limit": 2,
}


MAX_SEED = 2**32 - 1  # numpy's (and Lightning's seed_everything's) bound


def _seed_list(args: argparse.Namespace) -> list[int]:
    """The run seeds: ``--seeds`` (distinct, in the given order), else ``[--seed]`` (default 0).

    Raises:
        ConfigError: When both are given, or ``--seeds`` is empty, not integers, has a value out
            of [0, 2**32 - 1] or one twice; when ``--seed`` is out of that range.
    """
    if args.seeds is None:
        seed = 0 if args.seed is None else args.seed
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"--seed={seed} must be in [0, {MAX_SEED}]")
        return [seed]
    if args.seed is not None:
        raise ConfigError(
            f"--seed {args.seed} and --seeds {args.seeds!r} exclude each other; give one seed "
            "as --seed S or --seeds S, several as --seeds 0,1,2"
        )
    items = [v.strip() for v in str(args.seeds).split(",")]
    seeds: list[int] = []
    problem = "no seed given" if not any(items) else ""
    for v in items if not problem else []:
        try:
            seed = int(v)
        except ValueError:
            problem = f"{v!r} is not an integer" if v else "an empty item"
            break
        if not 0 <= seed <= MAX_SEED:
            problem = f"{seed} is out of range"
        elif seed in seeds:
            problem = f"{seed} is given twice"
        if problem:
            break
        seeds.append(seed)
    if problem:
        raise ConfigError(f"--seeds {args.seeds!r}: {problem}; give distinct integers in [0, "
                          f"{MAX_SEED}] separated by commas, e.g. 0,1,2")  # fmt: skip
    return seeds


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers") from None


def build_parser() -> argparse.ArgumentParser:
    """The options of ``satdifuser bench dubai``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench dubai",
        description="Segmentation benchmark on the Dubai aerial tiles: GW fusion + UPerNet on "
        "satdifuser features vs on EfficientNet-Lite0 (ImageNet) stages; mIoU and per-class IoU "
        "over whole validation images (sliding window), overlays, JSON + markdown.",
    )
    a = p.add_argument
    a(
        "--data",
        default=None,
        help="data root holding dubai_aerial/ (else $SATDIFUSER_DATA, "
        "else shared/data found upward)",
    )
    a("--out", default="runs/bench-dubai", help="output folder (default runs/bench-dubai)")
    a(
        "--backbone",
        default="satdifuser-aerial-tiny",
        help="backbone name or pipeline folder (default: the shipped aerial backbone; "
        "satdifuser-eurosat-tiny is the Sentinel-2 one)",
    )
    a("--models", default=",".join(MODELS), help="comma list of satdifuser, efficientnet")
    a(
        "--train-tiles",
        type=_ints,
        nargs="+",
        default=[[1, 2, 3, 4, 7]],
        help="tile numbers, e.g. 1 2 3 4 7 (or 1,2,3,4,7)",
    )
    a("--val-tiles", type=_ints, nargs="+", default=[[8]], help="tile numbers, e.g. 8 or 5 6")
    g = p.add_argument_group("budget (defaults fit ~15 min on 2 CPU cores; --quick for tests)")
    g.add_argument("--scale", type=float, help="image resize factor (default 0.25)")
    g.add_argument("--window", type=int, help="training window (cached features) and sliding "
                   "evaluation window at that scale (default 256)")
    g.add_argument("--overlap", type=float, help="sliding-window overlap fraction (default 0.25)")
    g.add_argument("--steps", type=int, help="at least this many training steps per model "
                   "(whole epochs over the training windows; default 300)")
    g.add_argument("--crop", type=int, help="train on random crops of this side (px at that "
                   "scale) of the cached windows, a new crop of each window every epoch; a "
                   "multiple of the coarsest feature stride (default 128; 0: whole windows)")
    g.add_argument("--flips", action=argparse.BooleanOptionalAction, default=True,
                   help="turn each training crop (window) by a random flip / quarter turn, the "
                   "same for its maps and mask, new every epoch (default: on, the old recipe)")
    g.add_argument("--batch-size", type=int, help="crops (windows) per training step (default 8)")
    g.add_argument("--overlays", type=int, help="validation images drawn as overlays (default 3)")
    g.add_argument(
        "--quick",
        action="store_true",
        help="tiny run for tests: 2 train / 2 val images, 32 px windows at scale 1, 16 px crops "
        "(whole windows for an arm whose stride is coarser), 2 steps (explicit options still win)",
    )
    g.add_argument(
        "--limit-images",
        type=int,
        help="use only the first N images of each split (smoke tests; not comparable results)",
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--timesteps",
        type=_ints,
        nargs="+",
        default=[[21, 61, 161]],
        help="UNet timesteps, e.g. 21 61 161",
    )
    m.add_argument("--taps", default="up_blocks.*.conv2", help="comma list of tap patterns")
    m.add_argument(
        "--min-stride",
        type=int,
        default=2,
        help="drop feature maps finer than this stride (both arms; default 2)",
    )
    m.add_argument("--projection-dim", type=int, default=32)
    m.add_argument("--bottleneck-dim", type=int, default=16)
    m.add_argument("--head-channels", type=int, default=32)
    m.add_argument(
        "--fusion-groups",
        type=int,
        default=4,
        help="GroupNorm groups in the fusion projections (default 4: 8 / 4 channels per group at "
        "widths 32 / 16; 32 groups would normalise every channel on its own)",
    )
    m.add_argument("--lr", type=float, default=3e-3)
    m.add_argument("--weight-decay", type=float, default=1e-4)
    m.add_argument("--extract-batch", type=int, default=4, help="windows per extractor call")
    m.add_argument("--seed", type=int, default=None,
                   help="one run's seed: fusion / head initialisation and data order (crops, "
                   "flips, batches); default 0; the one-seed form of --seeds")  # fmt: skip
    m.add_argument("--seeds", default=None,
                   help="comma list of seeds, e.g. 0,1,2 (not with --seed): features are "
                   "extracted once per arm, then one full run per seed (what --seed S alone "
                   "gives) in runs/<arm>/seed<S>; the report adds mean ± sample std over seeds")
    m.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    m.add_argument("--cache-dir", default=None,
                   help="feature cache (default $SATDIFUSER_CACHE or the user cache folder)")
    m.add_argument("--no-progress", action="store_true", help="no extraction progress bars")
    return p


def resolve_options(args: argparse.Namespace) -> argparse.Namespace:
    """Fill budget options from the defaults (or the quick preset) and check every value."""
    for key in ("train_tiles", "val_tiles", "timesteps"):
        setattr(args, key, [v for group in getattr(args, key) for v in group])
    preset = QUICK if args.quick else DEFAULTS
    args.crop_preset = args.crop is None  # a preset crop may give way to an arm's stride
    for key, value in preset.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.limit_images is not None:
        if args.limit_images < 1:
            raise ConfigError(f"--limit-images={args.limit_images} must be >= 1")
        args.train_limit = args.val_limit = args.limit_images
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if not models or bad:
        raise ConfigError(f"--models {args.models!r}: use a comma list of {', '.join(MODELS)}")
    args.model_list = list(dict.fromkeys(models))
    if not args.train_tiles or not args.val_tiles:
        raise ConfigError("--train-tiles and --val-tiles need at least one tile number each")
    both = sorted(set(args.train_tiles) & set(args.val_tiles))
    if both:
        raise ConfigError(
            f"tile(s) {both} are in both --train-tiles {args.train_tiles} and --val-tiles "
            f"{args.val_tiles}; the split is by tile, so each tile goes to one side only"
        )
    checks = [
        ("--scale", 0 < args.scale <= 1, "in (0, 1]"),
        ("--overlap", 0 <= args.overlap < 1, "in [0, 1)"),
        ("--window", args.window >= 8, ">= 8"),
        ("--steps", args.steps >= 1, ">= 1"),
        ("--crop", 0 <= args.crop <= args.window, f"in [0, --window={args.window}]"),
        ("--batch-size", args.batch_size >= 1, ">= 1"),
        ("--overlays", args.overlays >= 0, ">= 0"),
        ("--min-stride", args.min_stride >= 1, ">= 1"),
        ("--extract-batch", args.extract_batch >= 1, ">= 1"),
        ("--threads", args.threads >= 1, ">= 1"),
        ("--fusion-groups", args.fusion_groups >= 1, ">= 1"),
    ]
    args.seeds = _seed_list(args)
    args.seed = args.seeds[0] if len(args.seeds) == 1 else None  # None: one per run, see seeds
    args.cache_dir = str(args.cache_dir or default_cache_root())
    for name, ok, want in checks:
        if not ok:
            raise ConfigError(f"{name}={getattr(args, name[2:].replace('-', '_'))} must be {want}")
    return args


def build_extractor(name: str, args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any]]:
    """The frozen extractor of one arm and a description of it for the report."""
    if name == "satdifuser":
        from satdifuser.backbones import create_backbone
        from satdifuser.features import FeatureExtractor

        bb = create_backbone(args.backbone)
        patterns = [t.strip() for t in args.taps.split(",") if t.strip()]
        probe = FeatureExtractor(bb, timesteps=args.timesteps, taps=patterns, image_size=0)
        keep = [
            n
            for n in probe.tap_names
            if next(f for f in probe.feature_info if f.tap == n).reduction >= args.min_stride
        ]
        if not keep:
            raise ConfigError(
                f"--min-stride {args.min_stride} drops every tap of {patterns} (strides "
                f"{sorted({f.reduction for f in probe.feature_info})}); lower --min-stride"
            )
        ex = FeatureExtractor(bb, timesteps=args.timesteps, taps=keep, image_size=0)
        info = {
            "backbone": args.backbone,
            "backbone_name": bb.name,
            "weights_id": bb.weights_id(),
            "pretrained": bool(getattr(bb, "pretrained", True)),
            "backbone_params": sum(p.numel() for p in bb.unet.parameters()),
            "timesteps": list(args.timesteps),
            "taps": keep,
            "spec": ex.spec.to_dict(),
            "total_downsample": bb.total_downsample,
        }
        return ex, info
    from satdifuser.baselines import EfficientNetLiteExtractor

    net = EfficientNetLiteExtractor(weights="imagenet", image_size=args.window, include_head=False)
    keep_idx = [i for i, f in enumerate(net.feature_info) if f.reduction >= args.min_stride]
    info = {
        "backbone": "efficientnet-lite0 (ImageNet)",
        "weights": "imagenet",
        "backbone_params": sum(p.numel() for p in net.parameters()),
        "stages": [net.feature_info[i].tap for i in keep_idx],
    }
    return SelectMaps(net, taps=info["stages"]), info


def _check_alignment(name: str, ex: nn.Module, args: argparse.Namespace, extra: int) -> None:
    align = max([f.reduction for f in ex.feature_info] + [extra])
    for opt, val in (("--window", args.window),):
        if val % align:
            raise ConfigError(
                f"{opt}={val} is not a multiple of {align} (the coarsest stride of the {name} "
                f"features); use e.g. {max(1, round(val / align)) * align}"
            )


def arm_crop(name: str, ex: nn.Module, args: argparse.Namespace) -> int | None:
    """The training crop of one arm: ``--crop`` (None for 0 or the whole window).

    Raises:
        ConfigError: When ``--crop`` is not a multiple of the arm's coarsest map stride (a
            preset crop, e.g. ``--quick``'s, then gives way to whole windows instead).
    """
    step = math.lcm(*(f.reduction for f in ex.feature_info))
    if not args.crop or args.crop == args.window:
        return None
    if args.crop % step == 0:
        return int(args.crop)
    if args.crop_preset:
        print(f"[{name}] crop {args.crop} px is finer than the {step} px feature stride; "
              "training on whole windows")  # fmt: skip
        return None
    raise ConfigError(
        f"--crop={args.crop} is not a multiple of {step} (the coarsest stride of the {name} "
        f"features); use e.g. {max(step, args.crop // step * step)}, or 0 for whole windows"
    )


def run_arm(name: str, args: argparse.Namespace, dm: ScaledDubaiDataModule, out: Path,
            on_seed: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Build and extract (cached) one arm once, then train and score it for every seed.

    The model is a :class:`~satdifuser.tasks.SegmentationTask` (GW fusion + UPerNet on the
    frozen extractor) trained by ``tasks.fit_and_test`` on the cached training windows and
    tested on whole validation images (sliding window, logits upsampled to the native mask).
    One seed gives today's single-run dict; several give :func:`seeds_entry`'s, and
    ``on_seed`` receives it after every finished seed (for ``results.partial.json``).
    """
    from satdifuser.features.cache import CachedDataModule

    clock = PhaseClock()
    with clock("build"):
        ex, info = build_extractor(name, args)
        _check_alignment(name, ex, args, info.get("total_downsample", 1))
        crop = arm_crop(name, ex, args)
    print(
        f"[{name}] {len(ex.feature_info)} maps, strides "
        f"{sorted({f.reduction for f in ex.feature_info})}; extracting training windows ..."
    )
    cached = CachedDataModule(dm, ex, args.cache_dir, extract_batch_size=args.extract_batch,
                              progress=not args.no_progress, train_crop=crop,
                              train_flips=args.flips)  # fmt: skip
    with clock("extract_train"):
        cached.setup("fit")
    n_train = len(cached.datasets["train"])
    epochs = max(1, math.ceil(args.steps / math.ceil(n_train / args.batch_size)))
    what = f"random {crop} px crops" if crop else "windows"
    what += ", randomly flipped and turned" if args.flips else ""
    steps = math.ceil(n_train / args.batch_size)
    print(f"[{name}] {n_train} training windows of {args.window} px (cached in "
          f"{cached.folders['train'].parent}); training {epochs} epochs of {steps} steps x "
          f"{args.batch_size} {what} ...")  # fmt: skip
    train = {"epochs": epochs, "windows": n_train, "crop": crop, "flips": bool(args.flips)}
    if len(args.seeds) == 1:  # one run: today's layout (runs/<arm>, overlay_<arm>.png)
        one = train_seed(name, args.seeds[0], args, dm, ex, cached, epochs, out, "", clock.seconds)
        one["train"] = {**train, **one["train"]}
        return {"extractor": info, **one, "seconds": {**clock.seconds, **one["seconds"]}}
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        one = train_seed(name, seed, args, dm, ex, cached, epochs, out, f"seed{seed}")
        runs.append({"seed": seed, **one})
        entry = seeds_entry(info, train, clock.seconds, runs, list(DUBAI_CLASSES))
        if on_seed is not None and len(runs) < len(args.seeds):
            on_seed(entry)
    s = entry["summary"]
    print(f"[{name}] over seeds {', '.join(map(str, args.seeds))}: mIoU "
          f"{s['miou']['mean']:.4f} ± {s['miou']['std']:.4f}  OA "
          f"{s['overall_accuracy']['mean']:.4f} ± {s['overall_accuracy']['std']:.4f} "
          "(mean ± sample std)")  # fmt: skip
    return entry


def train_seed(name: str, seed: int, args: argparse.Namespace, dm: ScaledDubaiDataModule,
               ex: nn.Module, cached: Any, epochs: int, out: Path, tag: str,
               shown: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:  # fmt: skip
    """One full run of an arm on its extracted features: the seed sets the data order (``dm``'s
    seed: batches, crops, flips) and the fusion / head initialisation, as ``--seed`` alone does.

    ``tag`` ("" for a one-seed run, else ``seed<S>``) names the run folder
    ``runs/<arm>[/<tag>]`` and the PNGs ``overlay_<arm>[_<tag>].png``; ``shown``: earlier
    phases of the arm, printed with this run's.
    """
    from satdifuser.tasks import SegmentationTask, fit_and_test
    from satdifuser.tasks.runner import score_fitted

    clock = PhaseClock()
    dm.seed = seed  # the data order; CachedDataModule reads it when it builds its loaders
    seed_init(seed)  # the seed decides the initialisation of fusion and head
    task = SegmentationTask(
        ex, len(DUBAI_CLASSES), fusion="global_weighted",
        fusion_args={"projection_dim": args.projection_dim, "bottleneck_dim": args.bottleneck_dim,
                     "num_groups": args.fusion_groups},
        head="upernet", head_args={"channels": args.head_channels}, ignore_index=IGNORE,
        class_names=list(DUBAI_CLASSES), optimizer="adamw", lr=args.lr,
        weight_decay=args.weight_decay, warmup_epochs=min(max(1, epochs // 20), epochs - 1),
        min_lr=0.0, warmup_start_lr=args.lr / 20, early_stopping_patience=None,
        sliding_window=args.window, sliding_overlap=args.overlap,
        sliding_batch_size=args.extract_batch, num_plot_samples=args.overlays,
    )  # fmt: skip
    data = FitTestDataModule(cached, dm)
    run_dir = out / "runs" / name / tag if tag else out / "runs" / name
    label, suffix = (f"{name} {tag}", f"_{tag}") if tag else (name, "")
    if tag:
        print(f"[{label}] training ...")
    with clock("train"):  # validated once, after the last epoch: no selection on the val tile
        result = fit_and_test(task, data, run_dir, max_epochs=epochs, seed=seed,
                              check_val_every_n_epoch=epochs, progress=False,
                              test=False)  # fmt: skip
    loss = task.trainer.callback_metrics.get("train/loss_epoch")
    print(f"[{label}] scoring {len(dm.dataset('test'))} whole images (window {args.window}, "
          f"overlap {args.overlap}) ...")  # fmt: skip
    with clock("eval"):
        score_fitted(task, data)
    metrics = segmentation_metrics_of(task.results.get("test", {}), task.confusion.get("test"),
                                      list(DUBAI_CLASSES), dm.native_pixels())  # fmt: skip
    files = []
    if task.examples:
        from satdifuser.viz import plot_segmentation_panels

        path = out / f"overlay_{name}{suffix}.png"
        plot_segmentation_panels(
            *zip(*[e[:3] for e in task.examples], strict=True), path=path,
            class_names=DUBAI_CLASSES, ignore_index=IGNORE, colors=DUBAI_COLORS,
            titles=[e[3] for e in task.examples],
        )  # fmt: skip
        files.append(path.name)
    fuser = task.fusion
    weights = fuser.interpretable_weights() if hasattr(fuser, "interpretable_weights") else {}
    if weights:
        path = out / f"fusion_weights_{name}{suffix}.png"
        plot_fusion_weights(weights, path, fuser.weight_axes(),
                            title=f"GW weights ({label})")  # fmt: skip
        files.append(path.name)
    phases = {**(shown or {}), **clock.seconds}
    print(
        f"[{label}] mIoU {metrics['miou']:.4f}  OA {metrics['overall_accuracy']:.4f}  "
        + "  ".join(f"{k} {v['wall_s']:.0f}s" for k, v in phases.items())
    )
    return {
        "trainable_params": sum(p.numel() for p in task.trainable_parameters()),
        "train": {"final_loss": float(loss or 0.0), "seconds": result.seconds.get("fit")},
        "metrics": metrics,
        "model_dir": str(result.model_dir) if result.model_dir else None,
        "fusion_weights": {k: v.tolist() for k, v in weights.items()},
        "seconds": clock.seconds,
        "files": files,
    }


def run(argv: list[str]) -> int:
    """Run the benchmark; returns 0. Raises SatdifuserError subclasses on bad input."""
    args = resolve_options(build_parser().parse_args(argv))
    if "efficientnet" in args.model_list:
        from satdifuser.baselines.efficientnet_lite import _import_efficientnet

        _import_efficientnet()  # fail before any work when the optional extra is missing
    torch.set_num_threads(args.threads)
    clock = PhaseClock()
    start = clock.start()
    with clock("load_data"):
        dm = ScaledDubaiDataModule(
            args.data, args.train_tiles, args.val_tiles, scale=args.scale, window=args.window,
            train_limit=args.train_limit, val_limit=args.val_limit, batch_size=args.batch_size,
            seed=args.seeds[0], ignore_index=IGNORE,
        )  # fmt: skip
        train, val = dm.dataset("train"), dm.dataset("test")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    native = dm.native_pixels()
    print(
        f"data {val.folder.root}: {len(train.image_ids)} train images (tiles "
        f"{args.train_tiles}), {len(val)} val images (tiles {args.val_tiles}, "
        f"{native / 1e6:.1f} Mpx native), scale {args.scale}; loaded in "
        f"{clock.seconds['load_data']['wall_s']:.1f}s"
    )
    results: dict[str, Any] = {
        "benchmark": "dubai",
        "command": "satdifuser bench dubai " + shlex.join(argv),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "data": {
            "root": str(val.folder.root),
            "train_tiles": args.train_tiles,
            "val_tiles": args.val_tiles,
            "train_images": list(train.image_ids),
            "val_images": list(val.image_ids),
            "val_native_pixels": native,
        },
        "options": {
            k: v for k, v in vars(args).items() if k not in {"model_list", "crop_preset"}
        },
        "classes": list(DUBAI_CLASSES),
        "models": {},
        "seconds": clock.seconds,
    }
    for name in args.model_list:

        def partial(entry: dict[str, Any], name: str = name) -> None:
            # keep finished seeds (the arm's "runs") if a later seed dies
            models = {**results["models"], name: entry}
            atomic_write_json(out / "results.partial.json", {**results, "models": models})

        results["models"][name] = run_arm(name, args, dm, out, on_seed=partial)
        # keep finished arms if a later one dies; results.json is written once, at the end
        atomic_write_json(out / "results.partial.json", results)
    clock.stop("total", start)
    atomic_write_text(out / "results.md", markdown_section(results))
    atomic_write_json(out / "results.json", results)
    (out / "results.partial.json").unlink(missing_ok=True)
    print(markdown_section(results))
    print(
        f"wrote {out / 'results.json'}, {out / 'results.md'} and PNGs "
        f"({clock.seconds['total']['wall_s']:.0f}s in all)"
    )
    return 0


__all__ = ["build_parser", "resolve_options", "run"]
