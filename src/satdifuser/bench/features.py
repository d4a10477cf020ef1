"""Extractor configurations of the EuroSAT benchmark and demo, and their cached features.

A diffusion configuration is (backbone, taps, timesteps, pooling). Each timestep is extracted and
cached on its own (``FeatureExtractor`` with one timestep, wrapped in a ``PooledExtractor``), so
the demo, the benchmark and its ablations share caches: a later run only extracts the timesteps
and splits it has not seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from satdifuser.backbones import DiffusionBackbone, create_backbone
from satdifuser.backbones.loading import build_unet
from satdifuser.bench.common import FeatureSet, cached_features
from satdifuser.errors import ConfigError
from satdifuser.features import FeatureExtractor
from satdifuser.features.pooling import PooledExtractor

Log = Callable[[str], None]


def tap_groups(backbone: DiffusionBackbone) -> dict[str, list[str]]:
    """Decoder taps of a backbone: ``resnet`` (last resnet of every up block) and ``attention``
    (every attention module of the up blocks; empty when the UNet has none there).

    For the shipped pixel ``UNet2DModel`` (up blocks AttnUp, Up, Up, Up) this is 4 resnet taps,
    one per resolution (8, 16, 32, 64 px for 64 px input), and 2 attention taps (8 px only).
    """
    names = [n for n, _ in backbone.unet.named_modules()]
    resnets: dict[str, str] = {}
    for n in names:
        m = re.fullmatch(r"(up_blocks\.\d+)\.resnets\.(\d+)", n)
        if m:
            resnets[m.group(1)] = n  # modules come in order: the last one wins
    attention = [n for n in names if re.fullmatch(r"up_blocks\.\d+\.attentions\.\d+", n)]
    return {"resnet": list(resnets.values()), "attention": attention}


def load_backbone(name_or_path: str) -> DiffusionBackbone:
    """``create_backbone`` with a name or a folder (e.g. an export of ``satdifuser pretrain``)."""
    return create_backbone(str(name_or_path))


def random_like(backbone: DiffusionBackbone, seed: int = 0) -> DiffusionBackbone:
    """The same UNet architecture and noise schedule with seeded random weights.

    A VAE, if any, is kept (only the diffusion UNet is re-initialised).
    """
    cfg = {k: v for k, v in dict(backbone.unet.config).items() if not k.startswith("_")}
    cfg["_class_name"] = type(backbone.unet).__name__
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, md = build_unet(cfg, None, f"{backbone.name} (random)")
    return DiffusionBackbone(
        unet,
        backbone.scheduler_config,
        vae=backbone.vae,
        metadata_embedding=md,
        sample_size=backbone.sample_size,
        name=f"{backbone.name}-random-seed{seed}",
        pretrained=False,
    )


def diffusion_extractors(
    backbone: DiffusionBackbone, taps: Sequence[str], timesteps: Sequence[int], pool: int
) -> list[PooledExtractor]:
    """One pooled single-timestep extractor per timestep (timestep order kept)."""
    if not taps:
        raise ConfigError(
            f"backbone {backbone.name!r} has no decoder taps to extract; pass --taps explicitly"
        )
    return [
        PooledExtractor(FeatureExtractor(backbone, timesteps=[int(t)], taps=list(taps)), pool)
        for t in timesteps
    ]


def extract_all(
    extractors: Sequence[nn.Module],
    datasets: dict[str, Any],
    cache_root: Path,
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> dict[str, FeatureSet]:
    """Cached features of every split, the extractors' maps concatenated (timestep-major)."""
    out: dict[str, FeatureSet] = {}
    for split, ds in datasets.items():
        sets = [
            cached_features(ex, ds, cache_root, split, batch_size=batch_size, progress=progress)
            for ex in extractors
        ]
        out[split] = FeatureSet.combine(sets)
    return out


def load_images(dataset: Any, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a dataset as uint8 ``(N, 3, H, W)`` and labels ``(N,)`` (for the CNN)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    xs, ys = [], []
    for batch in loader:
        xs.append((batch["image"] * 255).round().clamp(0, 255).to(torch.uint8))
        ys.append(batch["label"].long().reshape(-1))
    return torch.cat(xs), torch.cat(ys)


__all__ = [
    "diffusion_extractors",
    "extract_all",
    "load_backbone",
    "load_images",
    "random_like",
    "tap_groups",
]
