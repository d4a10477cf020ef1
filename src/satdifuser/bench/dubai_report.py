"""Report pieces of ``satdifuser bench dubai``: overlay panels and the markdown section."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from satdifuser.bench.segmentation_common import ScaledImage

DISPLAY_SIDE = 640
"""Longest side of the images drawn in overlay PNGs."""


class PhaseClock:
    """Wall-clock and process CPU seconds per named phase (``seconds[name]``).

    CPU seconds count every thread of the process, so on a shared machine they show the work
    done while wall seconds show what the user waited.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}

    @staticmethod
    def start() -> tuple[float, float]:
        """A (wall, cpu) reading for :meth:`stop`."""
        return time.perf_counter(), time.process_time()

    def stop(self, name: str, start: tuple[float, float]) -> None:
        """Record the time since ``start`` under ``name``."""
        wall, cpu = self.start()
        self.seconds[name] = {"wall_s": wall - start[0], "cpu_s": cpu - start[1]}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name``."""
        start = self.start()
        yield
        self.stop(name, start)


def machine() -> dict[str, Any]:
    """CPU model, cores, torch version and threads."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_1min_at_start": load,
    }


def overlay_panel(im: ScaledImage, pred: Tensor) -> tuple[Tensor, Tensor, Tensor, str]:
    """(image, truth, prediction, title) of one validation image, shrunk for display.

    The prediction and truth are the native-resolution maps that were scored, subsampled
    (nearest) to at most :data:`DISPLAY_SIDE` pixels on the long side.
    """
    assert im.full_mask is not None
    h, w = im.full_mask.shape
    f = min(1.0, DISPLAY_SIDE / max(h, w))
    size = (max(1, round(h * f)), max(1, round(w * f)))
    img = F.interpolate(
        im.image[None], size=size, mode="bilinear", antialias=True, align_corners=False
    )[0].clamp(0, 1)

    def shrink(m: Tensor) -> Tensor:
        return F.interpolate(m[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()

    return img, shrink(torch.from_numpy(im.full_mask).long()), shrink(pred), im.id


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def markdown_section(results: dict[str, Any]) -> str:
    """A BENCHMARKS.md section: command, machine, date, setup, table of raw figures, timings."""
    o, m, d = results["options"], results["machine"], results["data"]
    classes = results["classes"]
    lines = [
        f"## Dubai aerial segmentation (`satdifuser bench dubai`), {results['date'][:10]}",
        "",
        f"- Command: `{results['command']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} with {m['threads']} "
        f"threads; date {results['date']}",
        f"- Data: train tiles {d['train_tiles']} ({len(d['train_images'])} images), val tiles "
        f"{d['val_tiles']} ({len(d['val_images'])} whole images, "
        f"{d['val_native_pixels'] / 1e6:.1f} Mpx scored at native resolution, black / unknown "
        "colours ignored)",
        f"- Setup: images x{o['scale']}, training crops {o['crop']} px from {o['window']} px "
        f"feature windows, {o['steps']} steps x {o['batch_size']} crops, AdamW lr {o['lr']}, "
        f"seed {o['seed']}; eval sliding window {o['window']} px, overlap {o['overlap']}; "
        f"GW fusion (projection {o['projection_dim']}, bottleneck {o['bottleneck_dim']}, "
        f"{o['fusion_groups']} GN groups) + "
        f"UPerNet ({o['head_channels']} ch); maps of stride >= {o['min_stride']}",
    ]
    for name, r in results["models"].items():
        ex = r["extractor"]
        if name == "satdifuser":
            lines.append(
                f"- satdifuser backbone: `{ex['backbone']}` (weights id {ex['weights_id']}, "
                f"{ex['backbone_params'] / 1e6:.2f} M params), timesteps {ex['timesteps']}, "
                f"{len(ex['taps'])} taps"
            )
        else:
            lines.append(f"- {name}: {ex['backbone']}, stages {', '.join(ex['stages'])}")
    lines += [
        "",
        "| model | mIoU | OA | " + " | ".join(classes) + " | trainable | final loss |",
        "|---|---|---|" + "---|" * len(classes) + "---|---|",
    ]
    for name, r in results["models"].items():
        mt = r["metrics"]
        per = " | ".join(_fmt(mt["iou"][c]) for c in classes)
        lines.append(
            f"| {name} | {_fmt(mt['miou'])} | {_fmt(mt['overall_accuracy'])} | {per} | "
            f"{r['trainable_params'] / 1e6:.2f} M | {r['train']['final_loss']:.3f} |"
        )
    lines += [
        "",
        "IoU / OA in %. Seconds per part, wall (process CPU, all threads):",
        "",
        "| model | build | extract train | train | eval |",
        "|---|---|---|---|---|",
    ]

    def t(entry: dict[str, float]) -> str:
        return f"{entry['wall_s']:.0f} ({entry['cpu_s']:.0f})"

    for name, r in results["models"].items():
        s = r["seconds"]
        lines.append(
            f"| {name} | {t(s['build'])} | {t(s['extract_train'])} | {t(s['train'])} | "
            f"{t(s['eval'])} |"
        )
    sec = results["seconds"]
    load = m.get("load_average_1min_at_start")
    lines += [
        "",
        f"Data loading {t(sec['load_data'])} s; total {t(sec['total'])} s"
        + (f"; 1-min load average at start {load:.1f}." if load is not None else "."),
        "",
    ]
    return "\n".join(lines)


__all__ = ["DISPLAY_SIDE", "PhaseClock", "machine", "markdown_section", "overlay_panel"]
