"""``satdifuser bench probe_speed``: a whole GW probe end to end, reference vs library path.

Both sides train the same model recipe (``bench.recipe``: GW fusion + linear head, Adam,
warm-up + cosine over ``--epochs``, batch ``--batch-size``) on the same images for the same
epochs, validating every epoch:

- reference (``satdifuser.baselines.reference_probe`` over :class:`ReferenceStyleExtractor`):
  every batch of every epoch, training and validation alike, recomputes full-size features the
  reference's way (VAE posterior sample, 10 DDIM-inversion UNet passes at t = -1, 1, 21, ..., 161,
  taps at 21/61/161; ``method.md`` sections 1, 4, 11); no standardiser (the reference has none);
- satdifuser, the path users call: ``FeatureExtractor(..., pool=--pool)`` -> one extraction into
  the content-addressed cache (``CachedDataModule``, a fresh cache folder, served from memory)
  -> ``ClassificationTask(standardize=True)`` trained by ``tasks.fit_and_test`` (the code path
  of ``satdifuser fit``), which also saves the best epoch's model in the run folder.

Each side is timed end to end (ours: extraction + standardiser + training + validation + saving
the model). By default the whole probe is run (``--measure-epochs`` = ``--epochs``); the
reference's first epoch gives a printed estimate of its duration before the rest runs.
``--measure-epochs E`` < ``--epochs`` runs E epochs and scales the epoch costs (labelled
ESTIMATED). ``--full-train``/``--full-val`` add one EXTRAPOLATED line, linear in the images.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from satdifuser._atomic_io import atomic_write_text
from satdifuser.baselines.reference_extractor import (
    REFERENCE_TIMESTEPS,
    ReferenceProbeResult,
    ReferenceStyleExtractor,
    reference_probe,
)
from satdifuser.bench.recipe import ProbeConfig, classification_task
from satdifuser.bench.speed import _cpu_model, _mem_total_gb
from satdifuser.errors import ConfigError
from satdifuser.features.atomic_io import check_writable_folder

TIMESTEPS = REFERENCE_TIMESTEPS
NUM_CLASSES = 10
DEFAULT_BACKBONE = "satdifuser-eurosat-tiny"


def _images(
    n: int, size: int, root: str | None, split: str, offset: int
) -> tuple[Tensor, Tensor, str]:
    """``n`` EuroSAT images of ``split`` (round-robin over classes) or random ones."""
    try:
        from satdifuser.data.eurosat import EuroSAT

        ds = EuroSAT(root, split=split)  # type: ignore[arg-type]
        by_class: dict[int, list[int]] = {}
        for i, t in enumerate(ds.targets):
            by_class.setdefault(t, []).append(i)
        order = [idx for group in zip(*by_class.values(), strict=False) for idx in group]
        picks = order[offset : offset + n]
        if len(picks) == n:
            imgs = torch.stack([ds[i]["image"] for i in picks])
            return (
                imgs,
                torch.tensor([ds.targets[i] for i in picks]),
                f"EuroSAT {split} ({ds.root})",
            )
    except Exception as exc:  # any data problem: fall back to random images
        warnings.warn(f"EuroSAT unavailable ({exc}); timing random images", stacklevel=2)
    g = torch.Generator().manual_seed(offset + (0 if split == "train" else 1))
    return torch.rand(n, 3, size, size, generator=g), torch.arange(n) % NUM_CLASSES, "random"


def build_parser() -> argparse.ArgumentParser:
    """Options of ``satdifuser bench probe_speed``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench probe_speed",
        description="Whole-probe wall time, end to end: the reference's per-batch recomputation "
        "vs the library path (pooled extraction once -> cache -> fit_and_test).",
    )
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="registered name or folder")
    p.add_argument("--size", type=int, default=None,
                   help="working size (default: the backbone's; the paper's S is 256)")  # fmt: skip
    p.add_argument("--pool", type=int, default=4,
                   help="max side of our pooled maps (default 4; 0 = full maps)")  # fmt: skip
    p.add_argument("--train-images", type=int, default=100, help="training images")
    p.add_argument("--val-images", type=int, default=50, help="validation images")
    p.add_argument("--epochs", type=int, default=40, help="epochs of the whole probe")
    p.add_argument("--measure-epochs", type=int, default=None,
                   help="epochs run per side (default: --epochs, the whole probe)")  # fmt: skip
    p.add_argument("--full-train", type=int, default=0,
                   help="also extrapolate to this many train images (0: off)")  # fmt: skip
    p.add_argument("--full-val", type=int, default=0, help="... and val images (0: off)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="train/val batch, both sides (reference EuroSAT: 32)")  # fmt: skip
    p.add_argument("--extract-batch-size", type=int, default=16, help="our one-off extraction")
    p.add_argument("--projection-dim", type=int, default=384, help="GW projection (paper: 384)")
    p.add_argument("--bottleneck-dim", type=int, default=96, help="GW bottleneck (paper: 96)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    p.add_argument("--root", default=None, help="EuroSAT root (random images when absent)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cache-dir", default=None, help="where the temporary (fresh) cache goes")
    p.add_argument("--run-dir", default=None,
                   help="run folder of our fit (default: next to --out, dated)")  # fmt: skip
    p.add_argument("--out", default="bench_probe_speed.json", help="JSON report")
    return p


def _check(args: argparse.Namespace) -> int:
    E = args.epochs if args.measure_epochs is None else args.measure_epochs
    small = {"--train-images": args.train_images, "--val-images": args.val_images,
             "--epochs": args.epochs, "--measure-epochs": E, "--batch-size": args.batch_size,
             "--extract-batch-size": args.extract_batch_size,
             "--projection-dim": args.projection_dim,
             "--bottleneck-dim": args.bottleneck_dim}  # fmt: skip
    bad = [f"{k} {v}" for k, v in small.items() if v < 1]
    if bad:
        raise ConfigError(f"{', '.join(bad)}: must be >= 1")
    if E > args.epochs:
        raise ConfigError(f"--measure-epochs {E} exceeds --epochs {args.epochs}")
    if args.pool < 0 or min(args.full_train, args.full_val) < 0:
        raise ConfigError("--pool, --full-train, --full-val must be >= 0 (0: off)")
    # the folders are made before anything runs: a 40-epoch reference side must never be lost
    # to a missing or unwritable output folder at the end
    for flag, folder in (("--cache-dir", args.cache_dir), ("--out", Path(args.out).parent),
                         ("--run-dir", args.run_dir)):  # fmt: skip
        if folder:
            check_writable_folder(Path(folder), flag, create=True)
    return E


def _recipe(args: argparse.Namespace, standardize: bool) -> ProbeConfig:
    """The shared recipe: exactly ``--epochs`` epochs (no minimum step count)."""
    groups = math.gcd(32, args.projection_dim, args.bottleneck_dim)
    return ProbeConfig(
        fusion="global_weighted", projection_dim=args.projection_dim,
        bottleneck_dim=args.bottleneck_dim, num_groups=groups, epochs=args.epochs,
        min_steps=1, batch_size=args.batch_size, standardize=standardize,
    )  # fmt: skip


def _say(text: str) -> None:
    print(text, flush=True)


def _reference_side(
    fx: Any, xs: Tensor, ys: Tensor, vx: Tensor, vy: Tensor, E: int, args: argparse.Namespace
) -> tuple[ReferenceProbeResult, float | None]:
    """The reference protocol for E epochs; prints an estimate after the first epoch."""
    from satdifuser.data import TensorImageDataset, seeded_loader
    from satdifuser.tasks.runner import seed_init

    seed_init(args.seed)
    task, _ = classification_task(fx, _recipe(args, standardize=False), NUM_CLASSES, len(xs))
    task.hparams["schedule_epochs"] = args.epochs
    train = TensorImageDataset(xs, ys, "train", num_classes=NUM_CLASSES)
    val = TensorImageDataset(vx, vy, "val", num_classes=NUM_CLASSES)
    bs = args.batch_size
    loaders = seeded_loader(train, bs, True, args.seed), seeded_loader(val, bs, False, args.seed)
    estimate: list[float] = []

    def on_epoch(epoch: int, r: ReferenceProbeResult) -> None:
        if epoch == 0:
            est = r.epoch_s[0] * E
            estimate.append(est)
            end = datetime.now() + timedelta(seconds=est - r.epoch_s[0])
            _say(f"  reference epoch 1/{E}: {r.epoch_s[0]:.1f} s (train {r.train_s:.1f}, "
                 f"val {r.val_s:.1f}) -> ESTIMATE for {E} epochs: {est:.0f} s ({est / 60:.1f} min),"
                 f" done about {end:%H:%M}")  # fmt: skip
        elif (epoch + 1) % max(1, E // 10) == 0 or epoch + 1 == E:
            _say(f"  reference epoch {epoch + 1}/{E}: {r.wall_s:.0f} s so far, "
                 f"val accuracy {r.val_accuracy[-1]:.3f}")  # fmt: skip

    ref = ReferenceStyleExtractor(fx, seed=42)
    return reference_probe(task, ref, *loaders, epochs=E, on_epoch=on_epoch), (
        estimate[0] if estimate else None
    )


def _our_side(
    fx: Any, xs: Tensor, ys: Tensor, vx: Tensor, vy: Tensor, E: int, args: argparse.Namespace,
    run_dir: Path,
) -> dict[str, Any]:  # fmt: skip
    """The library path, timed end to end: extract once (fresh cache), then fit_and_test."""
    from satdifuser.data import TensorDataModule, TensorImageDataset
    from satdifuser.features.cache import CachedDataModule
    from satdifuser.tasks.runner import fit_and_test, seed_init

    train = TensorImageDataset(xs, ys, "train", num_classes=NUM_CLASSES)
    val = TensorImageDataset(vx, vy, "val", num_classes=NUM_CLASSES)
    tmp = Path(tempfile.mkdtemp(prefix="probe-cache-", dir=args.cache_dir))
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        data = CachedDataModule(
            TensorDataModule(train, val, batch_size=args.batch_size, seed=args.seed), fx, tmp,
            in_memory=True, extract_batch_size=args.extract_batch_size, progress=False,
        )  # fmt: skip
        data.setup("fit")
        t1, c1 = time.perf_counter(), time.process_time()
        cache_bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        seed_init(args.seed)
        task, _ = classification_task(fx, _recipe(args, standardize=True), NUM_CLASSES, len(xs))
        task.hparams["schedule_epochs"] = args.epochs
        result = fit_and_test(task, data, run_dir, max_epochs=E, seed=args.seed,
                              progress=False, test=False)  # fmt: skip
        t2, c2 = time.perf_counter(), time.process_time()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    acc = result.val.get("val/overall_accuracy")
    return {
        "path": f"FeatureExtractor(pool={args.pool or None}) -> CachedDataModule(in_memory, fresh "
        "cache) -> ClassificationTask(standardize=True) -> tasks.fit_and_test",
        "wall_s": t2 - t0,
        "cpu_s": c2 - c0,
        "extract_s": t1 - t0,
        "extract_cpu_s": c1 - c0,
        "fit_s": t2 - t1,
        "fit_cpu_s": c2 - c1,
        "epochs": E,
        "cache_bytes": cache_bytes,
        "val_accuracy_last": None if acc is None else float(acc),
        "best_epoch": result.best_epoch,
        "run_dir": str(run_dir),
        "model_dir": None if result.model_dir is None else str(result.model_dir),
    }


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser bench probe_speed``."""
    from satdifuser.backbones import create_backbone
    from satdifuser.features.extractor import FeatureExtractor

    args = build_parser().parse_args(argv)
    E = _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir) if args.run_dir else out.with_name(f"{out.stem}-run-{stamp}")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
        bb = create_backbone(args.backbone)
        fx_full = FeatureExtractor(bb, timesteps=TIMESTEPS, image_size=args.size)
        fx_ours = FeatureExtractor(bb, timesteps=TIMESTEPS, image_size=args.size,
                                   pool=args.pool or None)  # fmt: skip
    build_s = time.perf_counter() - t0
    size = fx_full.spec.image_size
    xs, ys, source_name = _images(args.train_images, size, args.root, "train", 0)
    vx, vy, _ = _images(args.val_images, size, args.root, "val", 0)
    nt, nv = len(xs), len(vx)
    _say(f"{args.backbone}: {len(fx_full.feature_info)} maps, {size} px, our pool "
         f"{args.pool or 'off (full maps)'}; {nt} train + {nv} val images ({source_name}); "
         f"{E} of {args.epochs} epochs per side, batch {args.batch_size}")  # fmt: skip

    # ours first: it is short, so a problem on our side shows before the long reference side
    _say("satdifuser: pooled extraction once into a fresh cache, then fit_and_test ...")
    ours = _our_side(fx_ours, xs, ys, vx, vy, E, args, run_dir)
    _say(f"  satdifuser: {ours['wall_s']:.1f} s wall (extract {ours['extract_s']:.1f}, fit "
         f"{ours['fit_s']:.1f}), {ours['cpu_s']:.1f} s CPU")  # fmt: skip
    _say("reference: full features recomputed in every batch of every epoch (10 UNet passes) ...")
    ref, estimate = _reference_side(fx_full, xs, ys, vx, vy, E, args)
    _say(f"  reference: {ref.wall_s:.1f} s wall, {ref.cpu_s:.1f} s CPU")

    reference = {
        "protocol": "features recomputed per batch (train and val), full maps, no standardiser, "
        "satdifuser.baselines.reference_probe",
        "wall_s": ref.wall_s,
        "cpu_s": ref.cpu_s,
        "train_s": ref.train_s,
        "val_s": ref.val_s,
        "train_cpu_s": ref.train_cpu_s,
        "val_cpu_s": ref.val_cpu_s,
        "epochs": E,
        "first_epoch_s": ref.epoch_s[0],
        "estimate_from_first_epoch_s": estimate,
        "val_accuracy_last": ref.val_accuracy[-1],
    }

    def ratio(a: float, b: float) -> float | None:
        return a / b if b > 0 else None

    measured = estimated = extrapolated = None
    if E == args.epochs:
        measured = {
            "ref_s": ref.wall_s, "ours_s": ours["wall_s"],
            "speedup": ratio(ref.wall_s, ours["wall_s"]),
            "ref_cpu_s": ref.cpu_s, "ours_cpu_s": ours["cpu_s"],
            "speedup_cpu": ratio(ref.cpu_s, ours["cpu_s"]),
        }  # fmt: skip
    else:
        k = args.epochs / E
        ref_s, ours_s = ref.wall_s * k, ours["extract_s"] + ours["fit_s"] * k
        ref_c, ours_c = ref.cpu_s * k, ours["extract_cpu_s"] + ours["fit_cpu_s"] * k
        estimated = {"epochs": args.epochs, "from_epochs": E, "ref_s": ref_s, "ours_s": ours_s,
                     "speedup": ratio(ref_s, ours_s), "ref_cpu_s": ref_c, "ours_cpu_s": ours_c,
                     "speedup_cpu": ratio(ref_c, ours_c)}  # fmt: skip
    if args.full_train and args.full_val:
        ft, fv, e = args.full_train, args.full_val, args.epochs
        ref_full = e * (ft * ref.train_s / (E * nt) + fv * ref.val_s / (E * nv))
        per_image = ours["extract_s"] + e * ours["fit_s"] / E
        ours_full = (ft + fv) * per_image / (nt + nv)
        extrapolated = {"train_images": ft, "val_images": fv, "epochs": e, "ref_s": ref_full,
                        "ours_s": ours_full, "speedup": ratio(ref_full, ours_full),
                        "note": "not measured: linear in images"}  # fmt: skip
    report = {
        "command": "satdifuser bench probe_speed " + " ".join(argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "memory_gb": _mem_total_gb(),
            "torch": torch.__version__,
            "load_average_start": load0,
            "load_average_end": os.getloadavg(),
        },
        "config": {
            "backbone": args.backbone,
            "image_size": size,
            "maps": len(fx_full.feature_info),
            "timesteps": list(TIMESTEPS),
            "pool": args.pool,
            "train_images": nt,
            "val_images": nv,
            "images": source_name,
            "epochs": args.epochs,
            "measured_epochs": E,
            "batch_size": args.batch_size,
            "extract_batch_size": args.extract_batch_size,
            "recipe": _recipe(args, standardize=True).to_dict(),
            "seed": args.seed,
            "backbone_build_s": round(build_s, 2),
        },
        "reference": reference,
        "ours": ours,
        "measured_whole_probe": measured,
        "estimated_whole_probe": estimated,
        "extrapolated": extrapolated,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    _say(format_report(report))
    _say(f"report written to {out}")
    return 0


def _acc(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}x"


def format_report(rep: dict[str, Any]) -> str:
    """Human-readable summary: measured (or estimated) whole probe, then any extrapolation."""
    c, m, r, o = rep["config"], rep["machine"], rep["reference"], rep["ours"]
    lines = [
        f"{c['backbone']}, {c['image_size']} px, {c['maps']} maps, our pool {c['pool'] or 'off'}, "
        f"GW projection {c['recipe']['projection_dim']}; {c['train_images']}+{c['val_images']} "
        f"images ({c['images']}), {c['measured_epochs']}/{c['epochs']} epochs; {m['cpu']}, "
        f"{m['torch_threads']} threads, load {m['load_average_start'][0]:.1f} -> "
        f"{m['load_average_end'][0]:.1f}",
        f"reference: {r['wall_s']:.1f} s wall (train {r['train_s']:.1f}, val {r['val_s']:.1f}), "
        f"{r['cpu_s']:.1f} s CPU, val accuracy {_acc(r['val_accuracy_last'])}",
        f"satdifuser: {o['wall_s']:.1f} s wall (extract {o['extract_s']:.1f}, fit_and_test "
        f"{o['fit_s']:.1f}), {o['cpu_s']:.1f} s CPU, val accuracy {_acc(o['val_accuracy_last'])}",
    ]
    for key, label in (("measured_whole_probe", "MEASURED"),
                       ("estimated_whole_probe", "ESTIMATED")):  # fmt: skip
        w = rep.get(key)
        if not w:
            continue
        goal = w["speedup"] is not None and w["speedup"] >= 100
        lines.append(
            f"{label} whole {c['epochs']}-epoch probe: reference {w['ref_s']:.1f} s, satdifuser "
            f"{w['ours_s']:.1f} s -> {_x(w['speedup'])} (goal >= 100x: {goal}); process CPU "
            f"{w['ref_cpu_s']:.1f} s vs {w['ours_cpu_s']:.1f} s -> {_x(w['speedup_cpu'])}"
        )
    x = rep.get("extrapolated")
    if x:
        lines.append(
            f"EXTRAPOLATED (not measured; linear in images) to {x['train_images']} train + "
            f"{x['val_images']} val images, {x['epochs']} epochs: reference {x['ref_s']:.0f} s, "
            f"satdifuser {x['ours_s']:.0f} s -> {_x(x['speedup'])}"
        )
    return "\n".join(lines)


__all__ = ["build_parser", "format_report", "run"]
