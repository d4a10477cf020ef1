"""Small stand-ins for the feature-cache tests: a deterministic extractor and a toy dataset."""

from __future__ import annotations

import hashlib

import torch
from torch import nn
from torch.utils.data import Dataset

from satdifuser.features.spec import FeatureInfo, FeatureSpec


class FakeExtractor(nn.Module):
    """Two conv "taps" at each timestep; same interface as ``FeatureExtractor``."""

    def __init__(self, timesteps: tuple[int, ...] = (10, 50), seed: int = 0, scale: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3 * scale)
        self.requires_grad_(False)
        self.spec = FeatureSpec(
            timesteps=timesteps, taps=("blocks.0.conv", "blocks.1.conv"), seed=seed
        )
        self.feature_info = [
            info
            for t in timesteps
            for info in (
                FeatureInfo("blocks.0.conv", t, 4, 1),
                FeatureInfo("blocks.1.conv", t, 6, 2),
            )
        ]
        self.calls = 0

    def identity(self) -> str:
        h = hashlib.sha256()
        for p in self.parameters():
            h.update(p.detach().numpy().tobytes())
        return self.spec.digest("fake", h.hexdigest())

    def forward(
        self, images: torch.Tensor, metadata: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        self.calls += 1
        out = []
        for t in self.spec.timesteps:
            f1 = torch.tanh(self.conv1(images * (1 + t / 100)))
            out += [f1, self.conv2(f1)]
        return out


class ToyDataset(Dataset):
    """``n`` random images (3, size, size) with ``label``, ``meta``, ``id`` (and ``mask``)."""

    def __init__(self, n: int = 10, size: int = 8, with_mask: bool = False, prefix: str = "img"):
        self.n, self.size, self.with_mask = n, size, with_mask
        self.ids = [f"{prefix}-{i:03d}" for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(1000 + i)
        image = torch.rand(3, self.size, self.size, generator=g)
        sample = {
            "image": image,
            "label": torch.tensor(i % 3),
            "meta": torch.zeros(7),
            "id": self.ids[i],
        }
        if self.with_mask:
            sample["mask"] = (image[0] > 0.5).long()
        return sample
