"""Report pieces of ``satdifuser bench dubai``: metrics, the mean ± std over seeds and the markdown
section."""

from __future__ import annotations

import os
import platform
import statistics
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


STD_NOTE = "sample standard deviation over seeds (n - 1 in the denominator)"


def seed_stats(values: list[float | None]) -> dict[str, Any]:
    """``mean`` and sample ``std`` (n - 1) of the defined ``values`` (a class absent from a
    run's truth and prediction has IoU None), their number ``n`` and the ``values`` by seed.
    ``mean`` is None without any value, ``std`` None with fewer than two."""
    known = [float(v) for v in values if v is not None]
    return {
        "mean": statistics.fmean(known) if known else None,
        "std": statistics.stdev(known) if len(known) > 1 else None,
        "n": len(known),
        "values": list(values),
    }


def seed_summary(runs: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """Mean and sample std over the seed ``runs`` (each with ``seed``, ``metrics``, ``train``) of
    mIoU, OA, mean accuracy, macro F1, the IoU of every class and the final training loss."""
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs], "std": STD_NOTE}
    for key in ("miou", "overall_accuracy", "mean_accuracy", "f1_macro"):
        out[key] = seed_stats([r["metrics"][key] for r in runs])
    out["iou"] = {c: seed_stats([r["metrics"]["iou"][c] for r in runs]) for c in classes}
    out["final_loss"] = seed_stats([r["train"]["final_loss"] for r in runs])
    return out


def seeds_entry(extractor: dict[str, Any], train: dict[str, Any],
                seconds: dict[str, dict[str, float]], runs: list[dict[str, Any]],
                classes: list[str]) -> dict[str, Any]:  # fmt: skip
    """The ``results.json`` entry of an arm run with several seeds.

    Args:
        extractor: The arm's extractor description.
        train: What every seed trained on (``epochs``, ``windows``, ``crop``, ``flips``).
        seconds: The arm's shared phases (``build``, ``extract_train``).
        runs: One single-run dict per finished seed, with its ``seed``.
        classes: Class names, for the per-class IoU summary.

    Returns:
        ``extractor``, ``trainable_params``, ``train``, ``seeds``, ``summary`` (see
        :func:`seed_summary`), ``runs`` (each seed's ``train``, ``metrics``, ``model_dir``,
        ``fusion_weights``, ``seconds``, ``files``), ``seconds`` (the shared phases, then
        ``train`` and ``eval`` summed over seeds) and ``files`` (every seed's PNGs).
    """
    summed = {
        phase: {k: sum(r["seconds"][phase][k] for r in runs) for k in ("wall_s", "cpu_s")}
        for phase in ("train", "eval")
    }
    return {
        "extractor": extractor,
        "trainable_params": runs[0]["trainable_params"],
        "train": dict(train),
        "seeds": [r["seed"] for r in runs],
        "summary": seed_summary(runs, classes),
        "runs": [{k: v for k, v in r.items() if k != "trainable_params"} for r in runs],
        "seconds": {**seconds, **summed},
        "files": [f for r in runs for f in r["files"]],
    }


def _header(classes: list[str], seed: bool = False) -> list[str]:
    """The head of a per-arm metrics table (with a seed column for per-seed rows)."""
    cols = ["model", *(["seed"] if seed else []), "mIoU", "OA", *classes]
    cols += ["final loss"] if seed else ["trainable", "final loss"]
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]


def _cells(mt: dict[str, Any], classes: list[str]) -> str:
    """``mIoU | OA | IoU per class`` of one run's metrics, in percent."""
    per = " | ".join(_fmt(mt["iou"][c]) for c in classes)
    return f"{_fmt(mt['miou'])} | {_fmt(mt['overall_accuracy'])} | {per}"


def _pm(stat: dict[str, Any]) -> str:
    """``43.1 ± 1.6`` (percent) of a :func:`seed_stats` dict."""
    if stat["mean"] is None:
        return "n/a"
    return _fmt(stat["mean"]) + ("" if stat["std"] is None else f" ± {_fmt(stat['std'])}")


def _seed_tables(results: dict[str, Any]) -> list[str]:
    """Several seeds: mean ± std per arm, the headline on the mean mIoU, each seed's row."""
    classes, models = results["classes"], results["models"]
    seeds = results["options"]["seeds"]
    lines = _header(classes)
    for name, r in models.items():
        sm = r["summary"]
        per = " | ".join(_pm(sm["iou"][c]) for c in classes)
        lines.append(
            f"| {name} | {_pm(sm['miou'])} | {_pm(sm['overall_accuracy'])} | {per} | "
            f"{r['trainable_params'] / 1e6:.2f} M | {sm['final_loss']['mean']:.3f} |"
        )
    means = {name: r["summary"]["miou"] for name, r in models.items()}
    head = ", ".join(f"{name} {_pm(st)}" for name, st in means.items())
    if len(means) == 2:
        (a, sa), (b, sb) = means.items()
        head += f"; {a} - {b}: {100 * (sa['mean'] - sb['mean']):+.1f} points"
    lines += [
        "",
        f"IoU / OA in %, mean ± std over the {len(seeds)} seeds {', '.join(map(str, seeds))} "
        f"(sample standard deviation, n - 1). Headline, mean mIoU: {head}.",
        "",
        "Per seed:",
        "",
        *_header(classes, seed=True),
    ]
    for name, r in models.items():
        for run in r["runs"]:
            lines.append(
                f"| {name} | {run['seed']} | {_cells(run['metrics'], classes)} | "
                f"{run['train']['final_loss']:.3f} |"
            )
    return lines


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
    seeds = o.get("seeds") or [o["seed"]]
    several = len(seeds) > 1
    seed_text = (
        f"seeds {', '.join(map(str, seeds))} (one full run each: head initialisation and data "
        "order; features extracted once per arm)"
        if several
        else f"seed {o['seed']}"
    )
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
        f"{training_data(o, results['models'])}, AdamW lr {o['lr']}, {seed_text}, the last "
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
    lines.append("")
    if several:
        lines += _seed_tables(results)
        lines += ["", "Seconds per part, wall (process CPU, all threads):"]
    else:
        lines += _header(classes)
        for name, r in results["models"].items():
            lines.append(
                f"| {name} | {_cells(r['metrics'], classes)} | "
                f"{r['trainable_params'] / 1e6:.2f} M | {r['train']['final_loss']:.3f} |"
            )
        lines += ["", "IoU / OA in %. Seconds per part, wall (process CPU, all threads):"]
    each = f" ({len(seeds)} seeds)" if several else ""
    lines += [
        "",
        f"| model | build | extract train | train{each} | eval{each} |",
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


__all__ = [
    "PhaseClock",
    "machine",
    "markdown_section",
    "seed_stats",
    "seed_summary",
    "seeds_entry",
    "segmentation_metrics_of",
    "training_data",
]
