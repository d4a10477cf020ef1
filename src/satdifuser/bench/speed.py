"""``satdifuser bench speed``: feature-extraction cost on this CPU, reference vs ours.

(a) The reference pipeline (SatDiFuser, ``method.md`` sections 1 and 4): VAE posterior sample,
then 10 full UNet passes of DDIM inversion per image (t = -1, 1, 21, ..., 161, output treated as
epsilon as the reference does), the default 21 decoder taps hooked at 3 of them.
(b) Ours: :class:`~satdifuser.features.FeatureExtractor`, VAE posterior mean and ONE batched UNet
call for t = 21, 61, 161 that stops after the last tap, in float32 and bfloat16.

Both process the same batch of images (batched over images); times are medians over repeats after
one warm-up, per image. Also: FLOPs per image (``torch.utils.flop_counter``), the measured GEMM
rate of this machine per dtype, and the floor = FLOPs / GEMM rate. Default: SD 2.1 UNet + VAE
architecture with random weights at 256 px (costs do not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from satdifuser._atomic_io import atomic_write_text
from satdifuser._system import cpu_model
from satdifuser.backbones import DiffusionBackbone, create_backbone
from satdifuser.errors import ConfigError
from satdifuser.features import FeatureExtractor
from satdifuser.features.taps import installed_taps

TIMESTEPS = (21, 61, 161)
REFERENCE_CALLS = (-1, 1, 21, 41, 61, 81, 101, 121, 141, 161)  # method.md section 4
REFERENCE_TAPPED = (21, 61, 161)


# ----------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    return cpu_model()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return []


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_gb() -> float:
    """Peak resident set size of this process since the last reset, in GB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------------ measurement
def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, Any]:
    """Median wall time over ``repeats`` calls after ``warmup`` calls, and the peak RSS."""
    for _ in range(warmup):
        fn()
    resettable = reset_peak_rss()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "all_s": [round(t, 4) for t in times],
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "peak_rss_is_phase_peak": resettable,
    }


def gemm_rate(dtype: torch.dtype, n: int, repeats: int = 5, max_product_s: float = 5.0) -> float:
    """Measured dense matmul rate in FLOP/s for (n x n) @ (n x n) in ``dtype`` (best of repeats).

    A 256 x 256 probe first estimates the rate; ``n`` is reduced only when one product would
    take longer than ``max_product_s`` (slow software fallbacks such as bf16 on CPUs without
    bf16 instructions), and repeats are limited to about 10 s.
    """

    def best(size: int, reps: int) -> float:
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        with torch.inference_mode():
            torch.mm(a, b)
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                torch.mm(a, b)
                times.append(time.perf_counter() - start)
        return 2 * size**3 / min(times)

    probe = best(256, 3)
    size = n
    if 2 * n**3 / probe > max_product_s:
        size = int(max(256, (probe * max_product_s / 2) ** (1 / 3)))
    reps = max(2, min(repeats, int(10.0 / max(2 * size**3 / probe, 1e-3))))
    return best(size, reps)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call (matmuls, convolutions, attention) via ``FlopCounterMode``.

    The CPU flash-attention kernel has no formula in ``torch.utils.flop_counter``; it gets the
    same one as the other SDPA kernels.
    """
    from torch.utils import flop_counter

    aten = torch.ops.aten
    mapping = {}
    cpu_sdpa = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None and cpu_sdpa not in flop_counter.flop_registry:

        def sdpa(q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any) -> int:
            return int(flop_counter.sdpa_flop_count(q, k, v))  # shapes, via shape_wrapper

        mapping[cpu_sdpa] = sdpa
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def model_flops(
    bb: DiffusionBackbone, fx: FeatureExtractor, size: int, meta: bool = True
) -> tuple[int, int, int]:
    """FLOPs per image of the VAE encoder, one full UNet pass and our truncated batched pass.

    With ``meta`` they are counted on a weightless (meta-device) copy of the architecture, so
    nothing is computed (meta kernels are slow per op, so tiny models count faster for real).
    """
    from satdifuser.features.taps import installed_taps, run_until_taps

    assert bb.vae is not None
    device = torch.device("meta" if meta else "cpu")
    with device:
        unet = type(bb.unet).from_config(bb.unet.config) if meta else bb.unet  # type: ignore[attr-defined]
        vae = type(bb.vae).from_config(bb.vae.config) if meta else bb.vae  # type: ignore[attr-defined]
        image = torch.zeros(1, 3, size, size)
        side = size // bb.latent_downsample
        z = torch.zeros(1, bb.latent_channels, side, side)
        nt = len(fx.spec.timesteps)
        dim = bb.cross_attention_dim
        ehs = torch.zeros(1, 77, dim) if dim else None
        labels = None
        if bb.metadata_embedding is not None:
            labels = torch.zeros(1, bb.metadata_embedding.out_features)

    def unet_call(n: int) -> Any:
        kwargs = {} if ehs is None else {"encoder_hidden_states": ehs.expand(n, -1, -1)}
        if labels is not None:
            kwargs["class_labels"] = labels.expand(n, -1)
        t = torch.full((n,), 21, device=device)
        return unet(z.expand(n, -1, -1, -1), t, **kwargs)

    with torch.inference_mode():
        vae_flops = count_flops(lambda: vae.encode(image))
        full = count_flops(lambda: unet_call(1))
        with installed_taps(unet, fx.tap_names, fx._stop_after):
            ours_unet = count_flops(lambda: run_until_taps(lambda: unet_call(nt)))
    return vae_flops, full, vae_flops + ours_unet


# -------------------------------------------------------------------------- pipelines
def reference_pipeline(bb: DiffusionBackbone, tap_names: list[str], images: torch.Tensor) -> int:
    """The reference's extraction for a batch: posterior sample + 10 full inversion passes."""
    assert bb.vae is not None
    n = images.shape[0]
    gen = torch.Generator("cpu").manual_seed(42)
    alphas = bb.alphas_cumprod.float()
    with torch.inference_mode():
        dist = bb.vae.encode(images * 2 - 1).latent_dist
        x = (dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen)) * (
            bb.vae_scaling_factor
        )
        cond = bb.prompt_embedding("A satellite image")
        ehs = None if cond is None else cond.expand(n, -1, -1)
        labels = bb.metadata_labels(None, n, use_metadata=False)
        kept = 0
        for i, t in enumerate(REFERENCE_CALLS):
            taps = tap_names if t in REFERENCE_TAPPED else []
            with installed_taps(bb.unet, taps) as store:
                eps = bb.unet_forward(x, torch.full((n,), t), ehs, labels).float()
            kept += len(store)
            t_next = REFERENCE_CALLS[i + 1] if i + 1 < len(REFERENCE_CALLS) else t + 20
            a = alphas[t] if t >= 0 else torch.tensor(1.0)
            a_next = alphas[t_next]
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return kept


# ------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """Options of ``satdifuser bench speed``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench speed",
        description="Time the reference extraction pipeline against satdifuser's batched "
        "truncated pass on this CPU (SD 2.1 architecture, random weights, 256 px).",
    )
    p.add_argument("--quick", action="store_true", help="tiny backbone, 32 px (tests, CI)")
    p.add_argument("--backbone", default=None, help="backbone name/path (default sd21)")
    p.add_argument("--size", type=int, default=None, help="image size (default 256; quick 32)")
    p.add_argument("--images", type=int, default=2, help="images per batch (default 2)")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats (default 2)")
    p.add_argument(
        "--dtypes", default="float32,bfloat16", help="our pipeline's dtypes (comma list)"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs (default 1)")
    p.add_argument("--force", action="store_true", help="time slow dtypes too (see --dtypes)")
    p.add_argument("--skip-reference", action="store_true", help="time only our pipeline")
    p.add_argument("--gemm-size", type=int, default=None, help="GEMM size (default 2048)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--out", default="bench_speed.json", help="JSON output path")
    return p


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser bench speed``."""
    args = build_parser().parse_args(argv)
    if args.images < 1 or args.repeats < 1:
        raise ConfigError(
            f"--images {args.images} and --repeats {args.repeats} must be >= 1; e.g. --images 2"
        )
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in ("float32", "bfloat16", "float16")]
    if bad:
        raise ConfigError(f"--dtypes has {bad[0]!r}; use float32, bfloat16 or float16")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.backbone or ("tiny-sd" if args.quick else "sd21")
    size = args.size or (32 if args.quick else 256)
    gemm_n = args.gemm_size or (256 if args.quick else 2048)
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None

    print(f"building backbone {name} ...", flush=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
        bb = create_backbone(name)
    build_s = time.perf_counter() - t0
    if bb.vae is None:
        raise ConfigError(f"backbone {name!r} has no VAE; the speed benchmark needs a latent model")
    gen = torch.Generator("cpu").manual_seed(0)
    images = torch.rand(args.images, 3, size, size, generator=gen)

    extractors = {
        d: FeatureExtractor(bb, timesteps=TIMESTEPS, image_size=size, dtype=d) for d in dtypes
    }
    fx0 = next(iter(extractors.values()))
    tap_names = fx0.tap_names

    print("measuring GEMM rates ...", flush=True)
    gemm = {d: gemm_rate(getattr(torch, d), gemm_n) for d in dict.fromkeys(["float32", *dtypes])}

    print("counting FLOPs ...", flush=True)
    vae_flops, full_unet, ours_flops = model_flops(bb, fx0, size, meta=not args.quick)
    ref_flops = vae_flops + len(REFERENCE_CALLS) * full_unet

    results: list[dict[str, Any]] = []
    if not args.skip_reference:
        print(f"timing reference pipeline ({args.images} images x {args.repeats}) ...", flush=True)
        m = timed(lambda: reference_pipeline(bb, tap_names, images), args.repeats, args.warmup)
        results.append(
            {"pipeline": "reference", "dtype": "float32", "flops_per_image": ref_flops, **m}
        )
    skipped: dict[str, str] = {}
    for d, fx in extractors.items():
        if d != "float32" and not args.force and gemm[d] < 0.5 * gemm.get("float32", gemm[d]):
            skipped[d] = (
                f"this CPU has no fast {d} ({gemm[d] / 1e9:.2f} vs float32 "
                f"{gemm['float32'] / 1e9:.1f} GFLOP/s GEMM); --force times it anyway"
            )
            print(f"skipping ours ({d}): {skipped[d]}", flush=True)
            continue
        print(f"timing ours ({d}) ...", flush=True)
        m = timed(lambda fx=fx: fx(images), args.repeats, args.warmup)
        results.append({"pipeline": "ours", "dtype": d, "flops_per_image": ours_flops, **m})

    ref_per_image = None
    for r in results:
        r["s_per_image"] = r["median_s"] / args.images
        rate = gemm.get(r["dtype"]) or gemm.get("float32")
        r["floor_s_per_image"] = r["flops_per_image"] / rate if rate else None
        r["x_floor"] = r["s_per_image"] / r["floor_s_per_image"] if rate else None
        if r["pipeline"] == "reference":
            ref_per_image = r["s_per_image"]
    for r in results:
        r["speedup_vs_reference"] = (
            ref_per_image / r["s_per_image"] if ref_per_image is not None else None
        )
    ours = [r for r in results if r["pipeline"] == "ours"]
    if not ours:
        raise ConfigError("no dtype of --dtypes was timed; add float32 or pass --force")
    best = min(ours, key=lambda r: r["s_per_image"])
    goals = {
        "speedup_ge_5x": None
        if best["speedup_vs_reference"] is None
        else bool(best["speedup_vs_reference"] >= 5),
        "within_1_5x_of_floor": bool(best["x_floor"] is not None and best["x_floor"] <= 1.5),
        "best_dtype": best["dtype"],
    }
    report = {
        "command": "satdifuser bench speed " + " ".join(argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_model(),
            "cpu_flags": _cpu_flags(),
            "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "memory_gb": _mem_total_gb(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "config": {
            "backbone": name,
            "weights": "pretrained" if bb.pretrained else "random",
            "image_size": size,
            "images": args.images,
            "repeats": args.repeats,
            "timesteps": list(TIMESTEPS),
            "taps": len(tap_names),
            "stop_after": fx0._stop_after,
            "reference_calls": list(REFERENCE_CALLS),
            "backbone_build_s": round(build_s, 2),
        },
        "gemm_flops_per_s": {d: round(v) for d, v in gemm.items()},
        "flops": {
            "vae_encoder": vae_flops,
            "unet_full_pass": full_unet,
            "counted_on": "cpu" if args.quick else "meta",
        },
        "results": results,
        "skipped": skipped,
        "goals": goals,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    print(f"results written to {out}")
    return 0


def format_table(report: dict[str, Any]) -> str:
    """Human-readable summary of a report."""
    m, c = report["machine"], report["config"]
    lines = [
        f"{c['backbone']} ({c['weights']} weights), {c['image_size']} px, {c['images']} images, "
        f"median of {c['repeats']}; {m['cpu']}, {m['torch_threads']} threads, "
        f"load avg {m['load_average_start']} -> {m['load_average_end']}",
        "GEMM: "
        + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in report["gemm_flops_per_s"].items()),
        f"{'pipeline':<10} {'dtype':<9} {'s/image':>9} {'GFLOP/img':>10} {'floor s':>8} "
        f"{'x floor':>8} {'speed-up':>9} {'peak RSS GB':>12}",
    ]
    for r in report["results"]:
        sp = r["speedup_vs_reference"]
        lines.append(
            f"{r['pipeline']:<10} {r['dtype']:<9} {r['s_per_image']:>9.3f} "
            f"{r['flops_per_image'] / 1e9:>10.1f} {r['floor_s_per_image']:>8.3f} "
            f"{r['x_floor']:>8.2f} {'-' if sp is None else f'{sp:.2f}x':>9} "
            f"{r['peak_rss_gb']:>12.2f}"
        )
    for d, why in report.get("skipped", {}).items():
        lines.append(f"ours {d}: skipped: {why}")
    g = report["goals"]
    lines.append(
        f"goals: >=5x faster than reference: {g['speedup_ge_5x']}; within 1.5x of floor: "
        f"{g['within_1_5x_of_floor']} (best: ours {g['best_dtype']})"
    )
    return "\n".join(lines)


__all__ = ["build_parser", "format_table", "gemm_rate", "reference_pipeline", "run"]
