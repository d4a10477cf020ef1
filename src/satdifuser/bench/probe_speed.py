"""``satdifuser bench probe_speed``: wall time of a whole 40-epoch GW probe, reference vs cache.

Both sides train the same model (``ClassificationTask``'s GW fusion + linear head, Adam,
warm-up + cosine per epoch) on the same images, for ``--epochs`` epochs of train + val:

- reference-style: every batch of every epoch (training and validation) recomputes its
  features like the reference (VAE posterior sample, 10 full DDIM-inversion UNet passes at
  t = -1, 1, 21, ..., 161, taps at 21/61/161; ``method.md`` sections 1, 4, 11);
- satdifuser: one pass of :class:`FeatureExtractor` per image written to the on-disk cache
  (``build_feature_cache``, float16), then every epoch reads the cache.

``--measure-epochs E`` times E epochs of each side (the whole probe when E = ``--epochs``) and
extrapolates to ``--full-train``/``--full-val`` images and ``--epochs`` epochs with::

    T_ref  = epochs * (n_train * ref_train + n_val * ref_val)
    T_ours = (n_train + n_val) * ours_extract + epochs * (n_train * ours_train + n_val * ours_val)

where each term is a measured wall time per image (``ref_train`` = extraction + training step,
``ours_train`` = cache read + training step). Per-image training costs at small batches
overestimate ours, so the extrapolated ratio is conservative.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from satdifuser.bench.speed import REFERENCE_CALLS, _cpu_model, _mem_total_gb
from satdifuser.errors import ConfigError
from satdifuser.features.cache import build_feature_cache
from satdifuser.features.extractor import FeatureExtractor
from satdifuser.features.taps import installed_taps, latent_sizes, to_map
from satdifuser.tasks import ClassificationTask
from satdifuser.tasks.schedule import warmup_cosine_lr

TIMESTEPS = (21, 61, 161)


class ReferenceStyleExtractor(nn.Module):
    """The reference's per-batch extraction with our extractor's taps and output order.

    Args:
        fx: The extractor whose backbone, taps, working size and ``feature_info`` are reused.
        seed: Seed of the posterior sample.
    """

    def __init__(self, fx: FeatureExtractor, seed: int = 42) -> None:
        super().__init__()
        self.fx, self.seed = fx, seed
        self.feature_info = fx.feature_info

    def forward(self, images: Tensor, meta: Tensor | None = None) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> maps in ``feature_info`` order, 10 full UNet passes."""
        fx = self.fx
        bb = fx.backbone
        with torch.inference_mode():
            x = bb.encode(fx.prepare(images), "sample", self.seed).float()
            sizes = latent_sizes(x.shape[-2], x.shape[-1], len(bb.unet.down_blocks))  # type: ignore[arg-type]
            n = x.shape[0]
            cond = fx._prompt
            ehs = None if cond is None else cond.expand(n, -1, -1)
            labels = bb.metadata_labels(None, n, use_metadata=False)
            alphas = bb.alphas_cumprod.float()
            found: dict[int, dict[str, Tensor]] = {}
            for i, t in enumerate(REFERENCE_CALLS):
                taps = fx.tap_names if t in TIMESTEPS else []
                with installed_taps(bb.unet, taps) as store:
                    eps = bb.unet_forward(x, torch.full((n,), t), ehs, labels).float()
                if t in TIMESTEPS:
                    found[t] = {k: to_map(v.float(), sizes) for k, v in store.items()}
                t_next = REFERENCE_CALLS[i + 1] if i + 1 < len(REFERENCE_CALLS) else t + 20
                a = alphas[t] if t >= 0 else torch.tensor(1.0)
                a_next = alphas[t_next]
                x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        return [found[f.timestep][f.tap].clone() for f in self.feature_info]


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
    g = torch.Generator().manual_seed(offset)
    return torch.rand(n, 3, size, size, generator=g), torch.arange(n) % 10, "random"


def _epoch(
    task: ClassificationTask, loader: DataLoader, source: Any, opt: Any | None, bf16: bool
) -> tuple[float, float]:
    """One pass over ``loader``; trains when ``opt`` is given. Returns (wall, CPU) seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    task.fusion.train(opt is not None)
    task.head.train(opt is not None)
    for batch in loader:
        feats, y = source(batch)
        autocast = torch.autocast(feats[0].device.type, dtype=torch.bfloat16, enabled=bf16)
        if opt is None:
            with torch.no_grad(), autocast:
                task.forward_features(feats)
            continue
        with autocast:
            loss = task.loss_fn(task.forward_features(feats).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start, time.process_time() - cpu


def _probe(
    fx: FeatureExtractor, train: DataLoader, val: DataLoader, source: Any, epochs: int,
    args: argparse.Namespace,
) -> dict[str, float]:  # fmt: skip
    torch.manual_seed(0)
    fusion_args = {"projection_dim": args.projection_dim}
    task = ClassificationTask(fx, num_classes=10, fusion_args=fusion_args)
    opt = torch.optim.Adam(task.trainable_parameters(), lr=1e-2)
    bf16 = args.train_dtype == "bfloat16"
    out = dict.fromkeys(("train_s", "val_s", "train_cpu_s", "val_cpu_s"), 0.0)
    for e in range(epochs):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine_lr(e, 1e-2, 5, 2e-5, args.epochs, 1e-5)
        for phase, loader, o in (("train", train, opt), ("val", val, None)):
            wall, cpu = _epoch(task, loader, source, o, bf16)
            out[f"{phase}_s"] += wall
            out[f"{phase}_cpu_s"] += cpu
    return out


def build_parser() -> argparse.ArgumentParser:
    """Options of ``satdifuser bench probe_speed``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench probe_speed",
        description="Whole-probe wall time: reference-style recomputation vs extract-once cache.",
    )
    p.add_argument("--backbone", default="sd21", help="sd21 (random weights) or tiny-sd, ...")
    p.add_argument("--size", type=int, default=None, help="working size (256; tiny: default)")
    p.add_argument("--train-images", type=int, default=2, help="measured training images")
    p.add_argument("--val-images", type=int, default=2, help="measured validation images")
    p.add_argument("--measure-epochs", type=int, default=1, help="epochs timed on each side")
    p.add_argument("--epochs", type=int, default=40, help="epochs of the whole probe")
    p.add_argument("--full-train", type=int, default=2000, help="train images to extrapolate to")
    p.add_argument("--full-val", type=int, default=1000, help="val images to extrapolate to")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--projection-dim", type=int, default=384, help="GW projection (paper: 384)")
    p.add_argument("--train-dtype", choices=["float32", "bfloat16"], default="float32",
                   help="fusion+head precision, both sides (bfloat16: autocast)")  # fmt: skip
    p.add_argument("--root", default=None, help="EuroSAT root (random images when absent)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cache-dir", default=None, help="where the temporary cache goes")
    p.add_argument("--out", default="bench_probe_speed.json", help="JSON report")
    return p


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser bench probe_speed``."""
    args = build_parser().parse_args(argv)
    if min(args.train_images, args.val_images, args.measure_epochs, args.epochs) < 1:
        raise ConfigError("--train-images, --val-images, --measure-epochs, --epochs must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
        size = args.size or (None if args.backbone.startswith("tiny") else 256)  # paper's S
        fx = FeatureExtractor(args.backbone, timesteps=TIMESTEPS, image_size=size)
    build_s = time.perf_counter() - t0
    size = fx.spec.image_size
    xs, ys, source_name = _images(args.train_images, size, args.root, "train", 0)
    vx, vy, _ = _images(args.val_images, size, args.root, "val", 0)
    bs = args.batch_size
    E, total = args.measure_epochs, args.epochs
    print(f"{args.backbone}: {len(fx.feature_info)} maps, {size} px; {len(xs)} train + {len(vx)} "
          f"val images ({source_name}); timing {E} epoch(s) per side", flush=True)  # fmt: skip

    ref = ReferenceStyleExtractor(fx)
    loaders = [DataLoader(TensorDataset(a, b), batch_size=bs) for a, b in ((xs, ys), (vx, vy))]
    print("reference-style: features recomputed in every batch of every epoch ...", flush=True)
    r = _probe(fx, *loaders, lambda b: (ref(b[0]), b[1]), E, args)

    print("satdifuser: extract once into the cache, then train from it ...", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="probe-cache-", dir=args.cache_dir))
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        cached = []
        for name, (a, b) in (("train", (xs, ys)), ("val", (vx, vy))):
            ds = _ImageSet(a, b, name)
            cached.append(build_feature_cache(ds, fx, tmp / name, batch_size=bs))
        extract_s, extract_cpu = time.perf_counter() - t0, time.process_time() - c0
        cache_bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        cl = [DataLoader(c, batch_size=bs) for c in cached]
        o = _probe(fx, *cl, lambda b: (b["features"], b["label"]), E, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    nt, nv = len(xs), len(vx)
    per = {
        "ref_train": r["train_s"] / (E * nt),
        "ref_val": r["val_s"] / (E * nv),
        "ours_extract": extract_s / (nt + nv),
        "ours_train": o["train_s"] / (E * nt),
        "ours_val": o["val_s"] / (E * nv),
    }

    cpu = {
        "ref_train": r["train_cpu_s"] / (E * nt),
        "ref_val": r["val_cpu_s"] / (E * nv),
        "ours_extract": extract_cpu / (nt + nv),
        "ours_train": o["train_cpu_s"] / (E * nt),
        "ours_val": o["val_cpu_s"] / (E * nv),
    }

    def totals(ft: int, fv: int, per: dict[str, float] = per) -> tuple[float, float]:
        t_ref = total * (ft * per["ref_train"] + fv * per["ref_val"])
        t_ours = (ft + fv) * per["ours_extract"] + total * (
            ft * per["ours_train"] + fv * per["ours_val"]
        )
        return t_ref, t_ours

    measured = None
    if E == total:
        measured = {
            "ref_s": r["train_s"] + r["val_s"],
            "ours_s": extract_s + o["train_s"] + o["val_s"],
        }
        measured["speedup"] = measured["ref_s"] / measured["ours_s"]
        measured["ref_cpu_s"] = r["train_cpu_s"] + r["val_cpu_s"]
        measured["ours_cpu_s"] = extract_cpu + o["train_cpu_s"] + o["val_cpu_s"]
        measured["speedup_cpu"] = measured["ref_cpu_s"] / measured["ours_cpu_s"]
    full_ref, full_ours = totals(args.full_train, args.full_val)
    cpu_ref, cpu_ours = totals(args.full_train, args.full_val, cpu)
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
            "maps": len(fx.feature_info),
            "train_images": nt,
            "val_images": nv,
            "images": source_name,
            "measured_epochs": E,
            "epochs": total,
            "batch_size": bs,
            "projection_dim": args.projection_dim,
            "train_dtype": args.train_dtype,
            "backbone_build_s": round(build_s, 2),
            "cache_bytes": cache_bytes,
        },
        "raw_s": {
            "ref_train": r["train_s"],
            "ref_val": r["val_s"],
            "ours_extract": extract_s,
            "ours_train": o["train_s"],
            "ours_val": o["val_s"],
        },
        "cpu_s": {
            "ref_train": r["train_cpu_s"],
            "ref_val": r["val_cpu_s"],
            "ours_extract": extract_cpu,
            "ours_train": o["train_cpu_s"],
            "ours_val": o["val_cpu_s"],
        },
        "per_image_s": per,
        "per_image_cpu_s": cpu,
        "measured_whole_probe": measured,
        "extrapolated": {
            "train_images": args.full_train,
            "val_images": args.full_val,
            "epochs": total,
            "ref_s": full_ref,
            "ours_s": full_ours,
            "speedup": full_ref / full_ours,
            "ref_cpu_s": cpu_ref,
            "ours_cpu_s": cpu_ours,
            "speedup_cpu": cpu_ref / cpu_ours,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(f".{out.name}.tmp").write_text(json.dumps(report, indent=2) + "\n")
    os.replace(out.with_name(f".{out.name}.tmp"), out)
    print(format_report(report))
    print(f"report written to {out}")
    return 0


class _ImageSet(torch.utils.data.Dataset):
    """Images + labels as sample dicts with ids (what the cache builder reads)."""

    def __init__(self, images: Tensor, labels: Tensor, prefix: str) -> None:
        self.images, self.labels = images, labels
        self.ids = [f"{prefix}-{i:05d}" for i in range(len(images))]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "label": self.labels[i], "id": self.ids[i]}


def format_report(rep: dict[str, Any]) -> str:
    """Human-readable summary with the extrapolation formula and its numbers."""
    c, p, x, raw = rep["config"], rep["per_image_s"], rep["extrapolated"], rep["raw_s"]
    m = rep["machine"]
    lines = [
        f"{c['backbone']}, {c['image_size']} px, {c['maps']} maps, GW projection "
        f"{c['projection_dim']}, training {c['train_dtype']}; "
        f"{c['train_images']}+{c['val_images']} images, "
        f"{c['measured_epochs']} measured epoch(s); {m['cpu']}, {m['torch_threads']} threads, "
        f"load {m['load_average_start'][0]:.1f} -> {m['load_average_end'][0]:.1f}",
        f"raw seconds: reference train {raw['ref_train']:.2f}, val {raw['ref_val']:.2f}; "
        f"ours extract {raw['ours_extract']:.2f}, train {raw['ours_train']:.2f}, "
        f"val {raw['ours_val']:.2f}",
        "per image: " + ", ".join(f"{k} {v:.4f} s" for k, v in p.items()),
    ]
    if rep["measured_whole_probe"]:
        w = rep["measured_whole_probe"]
        lines.append(
            f"MEASURED whole {c['epochs']}-epoch probe: reference {w['ref_s']:.1f} s, "
            f"satdifuser {w['ours_s']:.1f} s -> {w['speedup']:.1f}x (process CPU time: "
            f"{w['ref_cpu_s']:.1f} s vs {w['ours_cpu_s']:.1f} s -> {w['speedup_cpu']:.1f}x)"
        )
    e, ft, fv = x["epochs"], x["train_images"], x["val_images"]
    lines += [
        f"extrapolated to {ft} train + {fv} val images, {e} epochs:",
        f"  T_ref  = {e} * ({ft} * {p['ref_train']:.4f} + {fv} * {p['ref_val']:.4f})"
        f" = {x['ref_s']:.0f} s",
        f"  T_ours = ({ft} + {fv}) * {p['ours_extract']:.4f} + {e} * ({ft} * {p['ours_train']:.4f}"
        f" + {fv} * {p['ours_val']:.4f}) = {x['ours_s']:.0f} s",
        f"  speed-up T_ref / T_ours = {x['speedup']:.1f}x (goal >= 100x: {x['speedup'] >= 100})",
        f"  same formula on process CPU time: {x['ref_cpu_s']:.0f} s / {x['ours_cpu_s']:.0f} s"
        f" = {x['speedup_cpu']:.1f}x",
    ]
    return "\n".join(lines)


__all__ = ["ReferenceStyleExtractor", "build_parser", "format_report", "run"]
