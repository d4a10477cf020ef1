"""One summariser per format for ``data inspect`` (see :mod:`satdifuser.data.inspect`)."""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satdifuser._typing import Sample
from satdifuser.data.band_checks import check_bands
from satdifuser.data.inspect import InspectReport
from satdifuser.errors import DataFormatError, SatdifuserError


def _pick(n: int, k: int, seed: int) -> list[int]:
    """``k`` distinct indices of ``range(n)``, seeded, sorted."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n, size=min(n, k), replace=False).tolist())


def _round_robin(targets: Sequence[int], k: int, seed: int) -> list[int]:
    """Up to ``k`` indices, cycling over classes so every class shows up."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    pools = {c: list(rng.permutation(v)) for c, v in sorted(by_class.items())}
    out: list[int] = []
    while len(out) < k and any(pools.values()):
        for c in list(pools):
            if pools[c] and len(out) < k:
                out.append(int(pools[c].pop()))
    return out


def _sizes(shapes: Sequence[tuple[int, int]]) -> str:
    c = Counter(f"{w}x{h}" for h, w in shapes)
    if len(c) <= 4:
        return ", ".join(f"{s} ({n})" for s, n in c.most_common())
    hs, ws = [h for h, _ in shapes], [w for _, w in shapes]
    return f"{len(c)} sizes, width {min(ws)}..{max(ws)}, height {min(hs)}..{max(hs)}"


def _ranges(arrays: Sequence[np.ndarray], names: Sequence[str]) -> str:
    """Per-band ``name min..max`` over (C, H, W) arrays."""
    stack_min = np.min([a.reshape(a.shape[0], -1).min(1) for a in arrays], axis=0)
    stack_max = np.max([a.reshape(a.shape[0], -1).max(1) for a in arrays], axis=0)
    fmt = (lambda v: f"{v:g}") if arrays[0].dtype.kind == "f" else (lambda v: str(int(v)))
    parts = [
        f"{n} {fmt(lo)}..{fmt(hi)}" for n, lo, hi in zip(names, stack_min, stack_max, strict=False)
    ]
    return ", ".join(parts)


def _collect(ds: Any, idx: Sequence[int]) -> tuple[list[Sample], list[str]]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        samples = [ds[i] for i in idx]
    return samples, [str(w.message) for w in rec]


def _pixel_counts(samples: Sequence[Sample], classes: Sequence[str], ignore: int) -> dict[str, str]:
    counts: Counter[int] = Counter()
    for s in samples:
        v, c = torch.unique(s["mask"], return_counts=True)
        counts.update(dict(zip(v.tolist(), c.tolist(), strict=True)))
    total = sum(counts.values()) or 1
    keys = list(range(len(classes))) + sorted(k for k in counts if not 0 <= k < len(classes))
    out = {}
    for k in keys:  # every class, 0.0% included, then ignore / unknown values
        name = "ignore" if k == ignore else (classes[k] if 0 <= k < len(classes) else str(k))
        out[name] = f"{100 * counts.get(k, 0) / total:.1f}%"
    return out


def _meta_line(meta: torch.Tensor) -> str:
    lon, lat, gsd, cloud, y, m, d = meta.tolist()
    parts = []
    if not math.isnan(lon):
        parts.append(f"lon {lon:.4f} lat {lat:.4f}")
    if not math.isnan(gsd):
        parts.append(f"GSD {gsd:g} m")
    if not math.isnan(cloud):
        parts.append(f"cloud {cloud:.2f}")
    if not math.isnan(y):
        parts.append(f"date {int(y):04d}-{int(m):02d}-{int(d):02d}")
    return ", ".join(parts) or "none (all NaN)"


def inspect_eurosat(path: Path, k: int, seed: int) -> InspectReport:
    """Class folders of JPEG/PNG images (EuroSAT layout)."""
    from satdifuser.data.eurosat import EuroSAT
    from satdifuser.data.splits import SPLITS, default_split, load_split_file, scan_class_folders

    ds = EuroSAT(path, split="all")
    if ds.split_file is not None:
        data, source = load_split_file(ds.split_file), str(ds.split_file)
    else:
        data = default_split(scan_class_folders(ds.image_dir, ds.suffixes))
        source = "no split file found: the deterministic default split"
    splits = {s: len(data[s]) for s in SPLITS if s in data}
    idx = _round_robin(ds.targets, k, seed)
    samples, warns = _collect(ds, idx)
    raw = [np.round(s["image"].numpy() * 255).astype(np.uint8) for s in samples]
    summary: dict[str, Any] = {
        "task_type": "classification",
        "images": f"{len(ds)} in {ds.image_dir}",
        "num_classes": ds.num_classes,
        "classes": ds.class_counts(),
        "splits": {**splits, "from": source},
        "bands": "3 (R, G, B), 8-bit",
        "image_sizes": f"{_sizes([tuple(s['image'].shape[1:]) for s in samples])} "
        f"[{len(samples)} sampled]",
        "value_ranges": f"{_ranges(raw, ['R', 'G', 'B'])} (raw 8-bit, sampled); "
        "samples are /255 in [0, 1]",
        "meta": _meta_line(samples[0]["meta"]),
    }
    if warns:
        summary["warnings"] = warns
    return InspectReport(
        str(path), "eurosat (image class folders)", summary, ds.classes, samples=samples
    )


def _mask_folder_table(path: Path, first_mask: Path) -> tuple[str, dict[str, Any]]:
    """Pick how to read the masks: Dubai table, inferred colour table, or index masks."""
    from satdifuser.data.dubai_aerial import DUBAI_CLASSES, DUBAI_COLORS, DUBAI_IGNORE_COLORS
    from satdifuser.data.image_io import read_mask_pixels
    from satdifuser.data.mask_codec import ColorTable

    pixels = read_mask_pixels(first_mask)
    grey = pixels.ndim == 3 and bool(
        (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()
    )
    if pixels.ndim == 2 or grey:
        return "index", {}
    table = ColorTable(DUBAI_COLORS, DUBAI_IGNORE_COLORS)
    _, unknown = table.encode(pixels, 255)
    if sum(unknown.values()) <= 0.01 * pixels.shape[0] * pixels.shape[1]:
        return "dubai", dict(
            classes=list(DUBAI_CLASSES),
            colors=list(DUBAI_COLORS),
            ignore_colors=list(DUBAI_IGNORE_COLORS),
        )
    return "colour", {}


def _infer_colours(ds_paths: Sequence[Path]) -> list[str]:
    from satdifuser.data.image_io import read_mask_pixels
    from satdifuser.data.mask_codec import pack_rgb

    counts: Counter[int] = Counter()
    for p in ds_paths:
        v, c = np.unique(pack_rgb(read_mask_pixels(p)), return_counts=True)
        counts.update(dict(zip(v.tolist(), c.tolist(), strict=True)))
    return [f"#{code:06X}" for code, _ in counts.most_common(64)]


def _infer_ids(masks: Sequence[np.ndarray], ignore: int = 255) -> list[str]:
    top = max((int(m[m != ignore].max()) for m in masks if (m != ignore).any()), default=0)
    return [str(i) for i in range(top + 1)]


def inspect_mask_folder(path: Path, k: int, seed: int) -> InspectReport:
    """Image/mask folders (index or colour-coded masks)."""
    from satdifuser.data.image_io import image_size, read_mask_pixels
    from satdifuser.data.mask_folder import MaskFolder

    probe = MaskFolder(path, classes=["probe"])  # discovery only; masks not read yet
    idx = _pick(len(probe), k, seed)
    kind, kw = _mask_folder_table(path, probe.masks[0])
    if kind == "colour":
        colors = _infer_colours([probe.masks[i] for i in idx])
        kw = dict(colors=colors, classes=colors)
        note = f"colour-coded, table inferred from {len(idx)} masks (pass colors= to MaskFolder)"
    elif kind == "index":
        ids = _infer_ids([read_mask_pixels(probe.masks[i], palette_as_rgb=False) for i in idx])
        kw = dict(classes=ids)
        note = "index masks (single channel); class ids seen in the sampled masks"
    else:
        note = "colour-coded, Dubai aerial colour table (satdifuser.data.DubaiAerial)"
    ds = MaskFolder(path, **kw)
    samples, warns = _collect(ds, idx)
    groups = Counter(
        p.relative_to(path).parts[0] if len(p.relative_to(path).parts) > 2 else "."
        for p in ds.images
    )
    raw = [np.round(s["image"].numpy() * 255).astype(np.uint8) for s in samples]
    summary: dict[str, Any] = {
        "task_type": "segmentation",
        "images": f"{len(ds)} image/mask pairs",
        "groups": dict(sorted(groups.items())),
        "masks": note,
        "num_classes": ds.num_classes,
        "classes": ds.classes,
        "pixel_shares": _pixel_counts(samples, ds.classes, ds.ignore_index),
        "bands": "3 (R, G, B), 8-bit",
        "image_sizes": _sizes([image_size(p) for p in ds.images]) + " [all images]",
        "value_ranges": f"{_ranges(raw, ['R', 'G', 'B'])} (raw 8-bit, {len(samples)} sampled)",
        "splits": "by group (e.g. tiles) or a split file; none is stored in the folder",
    }
    if warns:
        summary["warnings"] = warns
    return InspectReport(
        str(path), "mask_folder", summary, ds.classes, ds.colors, ds.ignore_index, samples
    )


def inspect_geotiff(path: Path, k: int, seed: int) -> InspectReport:
    """GeoTIFF class folders or image/mask pairs."""
    from satdifuser.data.geotiff_folder import GeoTiffFolder
    from satdifuser.data.geotiff_io import band_count, read_geotiff

    pairs = (path / "images").is_dir() and (path / "masks").is_dir()
    kw: dict[str, Any] = {}
    if pairs:
        masks = sorted((path / "masks").iterdir())[: max(k, 1)]
        arrs = [read_geotiff(m)[0] for m in masks if m.suffix.lower() in (".tif", ".tiff")]
        kw["classes"] = _infer_ids([a[0] for a in arrs if a is not None])
    ds = GeoTiffFolder(path, layout="pairs" if pairs else "classes", split="all", **kw)
    idx = _round_robin(ds.targets, k, seed) if ds.targets else _pick(len(ds), k, seed)
    samples, warns = _collect(ds, idx)
    raws = [ds.read_raw(i) for i in idx]
    dims = [band_count(ds.files[i]) for i in idx]
    georef = sum(1 for s in samples if not math.isnan(float(s["meta"][0])))
    warns += check_bands(ds.band_names, raws, f"band names ({ds.band_names_source})")
    summary: dict[str, Any] = {"task_type": ds.task_type, "images": f"{len(ds)} GeoTIFFs"}
    if ds.task_type == "classification":
        counts = Counter(ds.targets)
        summary["num_classes"] = ds.num_classes
        summary["classes"] = {c: counts[i] for i, c in enumerate(ds.classes)}
        summary["splits"] = "no split file stored; default split or split_file="
    else:
        summary["num_classes"] = ds.num_classes
        summary["classes"] = ds.classes
        summary["pixel_shares"] = _pixel_counts(samples, ds.classes, ds.ignore_index)
    summary.update(
        {
            "bands": f"{dims[0][0]} x {ds.dtype}: {', '.join(ds.band_names)} "
            f"({ds.band_names_source})",
            "rgb_view": [ds.band_names[b] for b in ds.bands],
            "image_sizes": f"{_sizes([(h, w) for _, h, w, _ in dims])} [{len(dims)} sampled]",
            "value_ranges": f"{_ranges(raws, ds.band_names)} (raw, {len(raws)} sampled)",
            "scaling": f"{ds.scale} (see GeoTiffFolder scale=/value_range=)",
            "meta": f"{_meta_line(samples[0]['meta'])} [georeferenced: {georef}/{len(samples)}]",
        }
    )
    _, first = read_geotiff(ds.files[idx[0]], with_pixels=False)
    if first.crs is not None and first.bounds_lonlat is not None:
        w, s, e, n = first.bounds_lonlat
        summary["crs"] = f"{first.crs}, footprint lon {w:.4f}..{e:.4f} lat {s:.4f}..{n:.4f} [1st]"
    if warns:
        summary["warnings"] = warns
    fmt = "geotiff_pairs" if pairs else "geotiff_folder (class folders)"
    return InspectReport(str(path), fmt, summary, ds.classes, None, ds.ignore_index, samples)


def _geobench_bands(
    ms: Any, idx: Sequence[int]
) -> tuple[dict[str, Any], list[str]]:
    """Every band of the task (stored descriptors, 3-D datasets with their channel count), raw
    value ranges over the sampled images, and the Sentinel-2 plausibility warnings."""
    from satdifuser.data import geobench_format as gfmt
    from satdifuser.data.geobench_bands import BandEntry, build_layout

    # the file's own order (the reader may have renamed and re-sorted m-eurosat's bands)
    entries: list[BandEntry] = build_layout(gfmt.open_record(ms.files[0]), ms.specs).entries
    pos = {(e.dataset, e.channel): i for i, e in enumerate(ms.selected)}
    perm = [pos[(e.dataset, e.channel)] for e in entries]
    raws = [ms[i]["image"].numpy()[perm] for i in idx]
    physical = [ms.selected[p].label for p in perm]
    datasets = list(dict.fromkeys(e.dataset for e in entries))
    chans = Counter(e.dataset for e in entries)
    listed = [d if chans[d] == 1 else f"{d} ({chans[d]} channels)" for d in datasets]
    stack = np.concatenate([r.reshape(r.shape[0], -1) for r in raws], 1)
    ranges: dict[str, str] = {}
    for d in datasets:
        rows = [i for i, e in enumerate(entries) if e.dataset == d]
        v = stack[rows]
        ranges[d] = f"{v.min():.4g}..{v.max():.4g} mean {v.mean():.4g}"
    out: dict[str, Any] = {
        "bands": f"{len(datasets)} in file ({ms.layout.order_source}): {', '.join(listed)}",
        "band_values": ranges,
    }
    stored = [e.dataset if e.channel is None else f"{e.dataset}[{e.channel}]" for e in entries]
    warns = check_bands(stored, raws, "stored band names")
    if ms.layout.shifted:
        out["band_mapping"] = {  # stored descriptor -> band it holds (fix_band_shift=True)
            e.dataset: p for e, p in zip(entries, physical, strict=True) if e.label != p
        }
        fixed = check_bands(physical, raws, "corrected band names")
        if warns and not fixed:
            warns = [w + "; satdifuser reads these bands under their corrected names "
                     "(band_mapping, fix_band_shift=True), which fit the statistics"
                     for w in warns]  # fmt: skip
        else:
            warns += fixed
    return out, warns


def inspect_geobench(path: Path, k: int, seed: int) -> InspectReport:
    """A GEO-Bench v1 task folder (several tasks: listed, one to inspect is asked for)."""
    from satdifuser.data import geobench_format as gfmt
    from satdifuser.data.geobench import GeoBench
    from satdifuser.data.geobench_plot import summary as gb_summary

    if not gfmt.is_task_dir(path):
        from satdifuser.data.geobench import find_tasks

        found = find_tasks(path)  # two levels: root/benchmark/task or benchmark/task
        tasks = [f"{name} ({d.relative_to(path)})" for name, d in sorted(found.items())]
        first = next(iter(found.values()), None)
        return InspectReport(
            str(path),
            "geobench (several tasks)",
            {
                "tasks": tasks or "none found",
                "next": f"inspect one task folder, e.g. {first}" if first else "",
            },
        )
    sizes: dict[str, Any] = {}
    first: GeoBench | None = None
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for split in ("train", "val", "test"):
            try:
                ds = GeoBench(path, split=split)
            except SatdifuserError as exc:
                sizes[split] = f"absent ({type(exc).__name__})"
                continue
            sizes[split] = len(ds)
            first = first or ds
        if first is not None:
            ms = GeoBench(path, split=first.split, view="multispectral", ms_scaling="raw")
    if first is None:
        raise DataFormatError(f"GEO-Bench task {path} has no readable split ({sizes})")
    facts = gb_summary(first, max_samples=k)
    idx = _pick(len(first), k, seed)
    samples, warns = _collect(first, idx)
    band_facts, band_warns = _geobench_bands(ms, idx)
    warns = list(dict.fromkeys([str(w.message) for w in rec] + warns + band_warns))
    nodata = first.nodata_class
    summary: dict[str, Any] = {
        "task": facts["task"],
        "task_type": facts["task_type"],
        "splits": {**sizes, "partition": facts["partition"]},
        "partitions": gfmt.list_partitions(first.task_dir),
        "num_classes": facts["num_classes"],
        "classes": facts["class_counts"] or dict.fromkeys(facts["classes"], 0),
        "class_counts": f"over {facts['samples_read']} {facts['split']} samples, in "
        f"{facts['count_unit']} ({facts['class_counts_source']})",
        "class_names": facts["classes_source"],
        "nodata_class": (
            f"{nodata} ({first.classes[nodata]}): counted as a class (GEO-Bench); "
            "ignore_nodata=True maps it to the ignore index (PANGAEA)"
        )
        if nodata is not None
        else "none",
        **band_facts,
        "rgb_view": [e.label for e in first.selected],
        "image_sizes": facts["image_sizes"],
        "value_ranges": "{:g}..{:g} (RGB view, after scaling)".format(*facts["value_range"]),
        "meta": _meta_line(samples[0]["meta"]),
    }
    if warns:
        summary["warnings"] = warns
    return InspectReport(
        str(path),
        "geobench (task folder)",
        json.loads(json.dumps(summary, default=str)),
        list(first.classes),
        None,
        int(first.ignore_index),
        samples,
    )


__all__ = ["inspect_eurosat", "inspect_geobench", "inspect_geotiff", "inspect_mask_folder"]
