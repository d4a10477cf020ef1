"""Report pieces of ``satdifuser bench dubai``: overlay panels and the markdown section."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from satdifuser._system import cpu_model


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
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_1min_at_start": load,
    }


def segmentation_metrics_of(
    flat: dict[str, float | None], confusion: Tensor | None, classes: list[str], native: int
) -> dict[str, Any]:
    """The task's flat ``test/...`` metrics as the report's dict: ``miou``, ``overall_accuracy``,
    ``mean_accuracy``, ``f1_macro``, ``iou`` / ``f1`` per class, ``confusion`` (rows: truth),
    ``pixels`` (scored) and ``ignored_pixels`` (of ``native`` pixels)."""
    out: dict[str, Any] = {
        k: float(flat.get(f"test/{k}") or 0.0)
        for k in ("miou", "overall_accuracy", "mean_accuracy", "f1_macro")
    }
    for key in ("iou", "f1"):
        out[key] = {c: flat.get(f"test/{key}/{c}") for c in classes}
    conf = confusion if confusion is not None else torch.zeros(len(classes), len(classes))
    out["confusion"] = conf.long().tolist()
    out["pixels"] = int(conf.sum())
    out["ignored_pixels"] = int(native) - out["pixels"]
    return out


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def _flips_text(models: dict[str, Any]) -> str:
    """How the samples were turned: every arm, some (named) or none (``train.flips``)."""
    flipped = [name for name, r in models.items() if r["train"].get("flips")]
    if not flipped:
        return ""
    text = ", randomly flipped and turned (one of the 8 flips / quarter turns, new every epoch)"
    return text if len(flipped) == len(models) else f"{text} for {', '.join(flipped)}"


def training_data(options: dict[str, Any], models: dict[str, Any]) -> str:
    """What each step trained on: random crops of the cached windows (per arm when they differ,
    e.g. ``--quick`` with an arm whose stride is coarser than the crop) or whole windows, and
    whether they were randomly flipped and turned (``--flips``)."""
    w, steps, batch = options["window"], options["steps"], options["batch_size"]
    crops = {name: r["train"].get("crop") for name, r in models.items()}
    turn = _flips_text(models)
    if not any(crops.values()):
        return (f"cached {w} px windows{turn} (whole epochs, at least {steps} steps x {batch} "
                "windows)")  # fmt: skip
    if len(set(crops.values())) == 1:
        return (f"random {next(iter(crops.values()))} px crops of the cached {w} px windows"
                f"{turn} (a new crop of each window every epoch; whole epochs, at least {steps} "
                f"steps x {batch} crops)")  # fmt: skip
    per = "; ".join(f"{name}: " + (f"random {c} px crops, new every epoch" if c else "whole")
                    for name, c in crops.items())  # fmt: skip
    return f"cached {w} px windows{turn} ({per}; whole epochs, at least {steps} steps x {batch})"


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
        f"- Setup: images x{o['scale']}, `SegmentationTask` trained by `tasks.fit_and_test` on "
        f"{training_data(o, results['models'])}, AdamW lr {o['lr']}, seed {o['seed']}, the last "
        f"epoch tested; eval sliding window {o['window']} px, overlap {o['overlap']}; "
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


__all__ = ["PhaseClock", "machine", "markdown_section", "segmentation_metrics_of", "training_data"]
