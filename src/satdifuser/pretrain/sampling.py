"""Generate images with a trained UNet (DDIM) and tile them into a PNG grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from satdifuser._atomic_io import atomic_path


@torch.no_grad()
def generate(
    unet,
    scheduler_config: dict,
    num_images: int = 16,
    num_steps: int = 50,
    seed: int = 0,
    bf16: bool = False,
) -> torch.Tensor:
    """Sample ``(N, 3, H, W)`` images in [0, 1] with DDIM from pure noise.

    Args:
        unet: A ``diffusers.UNet2DModel`` (usually holding EMA weights).
        scheduler_config: Config of the training ``DDPMScheduler`` (betas, prediction type).
        num_images: Number of images.
        num_steps: DDIM steps.
        seed: Seed of the starting noise (fixed, so grids of a run are comparable).
        bf16: bf16 autocast for the UNet forward passes.
    """
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(num_steps)
    param = next(unet.parameters())
    size = unet.config.sample_size
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((num_images, unet.config.in_channels, size, size), generator=gen)
    x = x.to(param.device)
    was_training = unet.training
    unet.eval()
    try:
        for t in scheduler.timesteps:
            with torch.autocast(param.device.type, dtype=torch.bfloat16, enabled=bf16):
                pred = unet(x.to(param.dtype), t).sample
            x = scheduler.step(pred.float(), t, x).prev_sample
    finally:
        unet.train(was_training)
    return ((x.float().clamp(-1, 1) + 1) / 2).cpu()


def save_grid(images: torch.Tensor, path: Path) -> Path:
    """Write ``(N, 3, H, W)`` images in [0, 1] as one near-square PNG grid (atomically)."""
    from PIL import Image

    n, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pad = 2
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    arr = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = arr[i]
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return path
