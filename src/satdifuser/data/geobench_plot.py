"""Figures and summaries of GEO-Bench samples (used by ``GeoBench.plot`` and ``data inspect``)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from satdifuser._typing import Sample
from satdifuser.data.geobench_format import list_partitions, load_label_map, load_partition

if TYPE_CHECKING:
    from satdifuser.data.geobench import GeoBench


def display_rgb(dataset: GeoBench, image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) array in [0, 1] for display: the RGB view as is, other views 2-98 % stretched."""
    idx = dataset.rgb_indices()
    img = image[idx] if idx is not None else image[:1].expand(3, -1, -1)
    arr = img.detach().float().cpu().numpy().transpose(1, 2, 0)
    if dataset.view != "rgb" or idx is None:
        lo, hi = np.nanpercentile(arr, 2), np.nanpercentile(arr, 98)
        arr = (arr - lo) / (hi - lo if hi > lo else 1.0)
    return np.clip(arr, 0.0, 1.0)


def plot_sample(dataset: GeoBench, sample: Sample, suptitle: str | None = None) -> Any:
    """A matplotlib Figure: image, and for segmentation the mask and the overlay."""
    from matplotlib.figure import Figure

    rgb = display_rgb(dataset, sample["image"])
    seg = "mask" in sample
    fig = Figure(figsize=(9 if seg else 3.2, 3.4))
    axes = fig.subplots(1, 3 if seg else 1, squeeze=False)[0]
    axes[0].imshow(rgb)
    if seg:
        mask = sample["mask"].cpu().numpy()
        shown = np.ma.masked_equal(mask, dataset.ignore_index)
        k = max(dataset.num_classes - 1, 1)
        axes[1].imshow(shown, cmap="tab20", vmin=0, vmax=max(k, 19), interpolation="nearest")
        axes[1].set_title("mask")
        axes[2].imshow(rgb)
        axes[2].imshow(shown, cmap="tab20", vmin=0, vmax=max(k, 19), alpha=0.45,
                       interpolation="nearest")  # fmt: skip
        axes[2].set_title("overlay")
        axes[0].set_title(str(sample.get("id", "")), fontsize=8)
    else:
        label = sample["label"]
        if label.ndim == 0:
            title = dataset.classes[int(label)]
        else:
            title = ", ".join(dataset.classes[i] for i in torch.nonzero(label).flatten().tolist())
        axes[0].set_title(f"{sample.get('id', '')}\n{title[:60]}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _name(dataset: GeoBench, k: int) -> str:
    if 0 <= k < dataset.num_classes:
        return dataset.classes[k]
    return "ignore" if k == dataset.ignore_index else str(k)


def summary(dataset: GeoBench, max_samples: int = 200) -> dict[str, Any]:
    """Facts about a split: sizes, bands, class counts and value ranges over the first samples.

    Args:
        dataset: The split to describe.
        max_samples: Read at most this many samples for counts and value ranges.
    """
    n = min(len(dataset), max_samples)
    counts: Counter[int] = Counter()
    lo, hi, sizes = np.inf, -np.inf, Counter()
    for i in range(n):
        s = dataset[i]
        img = s["image"]
        lo, hi = min(lo, float(img.min())), max(hi, float(img.max()))
        sizes[tuple(img.shape[-2:])] += 1
        if "mask" in s:
            vals, cnt = torch.unique(s["mask"], return_counts=True)
            counts.update({int(v): int(c) for v, c in zip(vals, cnt, strict=True)})
        elif s["label"].ndim == 0:
            counts[int(s["label"])] += 1
        else:
            counts.update(torch.nonzero(s["label"]).flatten().tolist())
    source = f"first {n} samples"
    label_map = load_label_map(dataset.task_dir) if dataset.task_type == "classification" else None
    if label_map is not None:  # whole split, without reading every file
        ids = set(dataset.ids)
        counts = Counter({k: len(ids.intersection(v)) for k, v in label_map.items()})
        source = "label_map.json (whole split)"
    # every class, zero counts included; values outside the table (e.g. ignore) after them
    keys = list(range(dataset.num_classes)) + sorted(k for k in counts if not
                                                     0 <= k < dataset.num_classes)  # fmt: skip
    return {
        "task": dataset.task,
        "task_dir": str(dataset.task_dir),
        "task_type": dataset.task_type,
        "split": dataset.split,
        "partition": dataset.partition,
        "partition_file": str(dataset.partition_file),
        "partitions": list_partitions(dataset.task_dir),
        "split_sizes": {k: len(v) for k, v in load_partition(dataset.task_dir,
                                                             dataset.partition)[1].items()},
        "num_samples": len(dataset),
        "samples_read": n,
        "num_classes": dataset.num_classes,
        "classes": dataset.classes,
        "classes_source": dataset.classes_source,
        "class_counts": {_name(dataset, k): counts.get(k, 0) for k in keys},
        "class_counts_source": source,
        "count_unit": "pixels" if dataset.task_type == "segmentation" else "samples",
        "view": dataset.view,
        "band_names": dataset.band_names,
        "band_order_source": dataset.layout.order_source,
        "image_sizes": {f"{h}x{w}": c for (h, w), c in sizes.items()},
        "value_range": (lo, hi),
    }


__all__ = ["display_rgb", "plot_sample", "summary"]
