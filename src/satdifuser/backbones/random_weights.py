"""The same UNet architecture with seeded random weights: the "no pre-training" control."""

from __future__ import annotations

import torch

from satdifuser.backbones.base import DiffusionBackbone
from satdifuser.backbones.loading import build_unet


def random_like(backbone: DiffusionBackbone, seed: int = 0) -> DiffusionBackbone:
    """The same UNet architecture and noise schedule as ``backbone`` with seeded random weights.

    A VAE, if any, is kept (only the diffusion UNet is re-initialised); the name says the seed,
    and the weights id differs from the pre-trained one (so caches never mix them).
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


__all__ = ["random_like"]
