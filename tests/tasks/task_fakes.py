"""Tiny extractor, data and trainer for the task and CLI tests (a few thousand parameters)."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from satdifuser.features.spec import FeatureInfo


class CountingExtractor(nn.Module):
    """Follows the FeatureExtractor contract; has parameters (to test freezing) and counts calls.

    Two timesteps x two taps: ``a`` at reduction 2 (4 channels), ``b`` at reduction 4 (6).
    """

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same weights every time, like a backbone from its config
            self._build()
        self.calls = 0

    def _build(self) -> None:
        self.conv_a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv_b = nn.Conv2d(3, 6, 3, stride=4, padding=1)
        self.bn = nn.BatchNorm2d(4)  # train mode would change its running stats
        self.feature_info = [
            FeatureInfo(tap, t, c, r) for t in (21, 161) for tap, c, r in (("a", 4, 2), ("b", 6, 4))
        ]

    def identity(self) -> str:
        return "counting-extractor-v1"

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        self.calls += 1
        a, b = self.bn(self.conv_a(images)), self.conv_b(images)
        return [a, b, 0.5 * a, 0.5 * b]


SMALL_GW = {"projection_dim": 8, "bottleneck_dim": 4, "num_groups": 2}


class TinyData(Dataset):
    """Class = brightest channel; masks split each image into two halves."""

    def __init__(self, n: int, kind: str = "cls", k: int = 3, size: int = 16) -> None:
        self.n, self.kind, self.k, self.size = n, kind, k, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        y = i % self.k
        img = torch.rand(3, self.size, self.size, generator=g) * 0.3
        img[y % 3] += 0.6
        out = {"image": img, "meta": torch.zeros(7), "id": f"img{i}"}
        if self.kind == "seg":
            mask = torch.zeros(self.size, self.size, dtype=torch.long)
            mask[:, self.size // 2 :] = y
            out["mask"] = mask
        elif self.kind == "multilabel":
            out["label"] = torch.tensor([int(y == j) | int(j == 0) for j in range(self.k)])
        else:
            out["label"] = y
        return out


class TinyDataModule(L.LightningDataModule):
    def __init__(self, kind: str = "cls", k: int = 3, n: int = 12, batch_size: int = 4) -> None:
        super().__init__()
        self.kind, self.num_classes, self.n, self.batch_size = kind, k, n, batch_size
        self.classes = [f"c{i}" for i in range(k)]
        self.task_type = {"cls": "classification", "seg": "segmentation"}.get(kind, kind)
        self.ignore_index = None

    def _loader(self, n: int, shuffle: bool = False) -> DataLoader:
        return DataLoader(TinyData(n, self.kind, self.num_classes), self.batch_size,
                          shuffle=shuffle)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.n, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(8)

    def test_dataloader(self) -> DataLoader:
        return self._loader(8)


def tiny_trainer(tmp_path: object, **kw: object) -> L.Trainer:
    defaults = dict(
        max_epochs=1, default_root_dir=str(tmp_path), logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_train_batches=2,
        limit_val_batches=1, num_sanity_val_steps=0,
    )  # fmt: skip
    defaults.update(kw)
    return L.Trainer(**defaults)
