"""Extractor configurations of the EuroSAT benchmark and the demo (which taps, which timesteps).

A diffusion configuration is (backbone, taps, timesteps, pooling): one
:class:`~satdifuser.features.FeatureExtractor` whose pooling is part of its spec, so its features
are cached once (content-addressed, shared by ``demo``, ``bench eurosat`` and ``fit``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from satdifuser.backbones import DiffusionBackbone, create_backbone
from satdifuser.backbones.random_weights import random_like
from satdifuser.errors import ConfigError
from satdifuser.features import FeatureExtractor


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


def diffusion_extractor(
    backbone: DiffusionBackbone,
    taps: Sequence[str],
    timesteps: Sequence[int],
    pool: int,
    ensemble: int = 1,
) -> FeatureExtractor:
    """The benchmark's extractor: ``taps`` at ``timesteps``, maps pooled to at most pool x pool
    (at the backbone's own image size, like the demo); ``ensemble`` noise draws averaged."""
    if not taps:
        raise ConfigError(
            f"backbone {backbone.name!r} has no decoder taps to extract; pass --taps explicitly"
        )
    return FeatureExtractor(
        backbone, timesteps=[int(t) for t in timesteps], taps=list(taps),
        image_size=backbone.sample_size, pool=pool, ensemble=int(ensemble),
    )  # fmt: skip


__all__ = ["diffusion_extractor", "load_backbone", "random_like", "tap_groups"]
