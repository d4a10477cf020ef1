"""Images already in memory as a dataset and a data module (benchmarks, tests, notebooks).

:class:`TensorImageDataset` serves ``(N, C, H, W)`` images in [0, 1] and their labels as the
usual sample dicts with stable ids, so the feature cache (``CachedDataModule``) and the tasks
take them like any folder dataset. Its cache identity is a digest of the pixels and labels:
other tensors never reuse a cache built for these. :class:`TensorDataModule` puts such
datasets behind the data-module interface (``dataset(split)``, seeded loaders).

Example::

    >>> train = TensorImageDataset(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]),
    ...                            "train", num_classes=2)
    >>> dm = TensorDataModule(train, val=train, batch_size=2)

.. versionadded:: 0.2
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from satdifuser._typing import Sample
from satdifuser.data.datamodule import FolderDataModule, Stage
from satdifuser.errors import ConfigError


def _digest(t: Tensor) -> str:
    data = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{data.dtype}|{tuple(data.shape)}|".encode())
    h.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class TensorImageDataset(Dataset[Sample]):
    """In-memory images and labels as sample dicts: ``image``, ``label``, ``id`` (and ``meta``).

    Args:
        images: ``(N, C, H, W)`` float images in [0, 1].
        labels: ``(N,)`` integer class ids.
        prefix: Id prefix: sample ``i`` has id ``f"{prefix}-{i:05d}"``.
        num_classes: Number of classes (None: ``max(labels) + 1``).
        classes: Class names (None: ``"0"``, ``"1"``, ...).
        meta: Optional ``(N, 7)`` DiffusionSat metadata rows.

    Raises:
        ConfigError: Shapes or counts disagree, or a label is outside ``[0, num_classes)``.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor | Sequence[int],
        prefix: str = "sample",
        num_classes: int | None = None,
        classes: Sequence[str] | None = None,
        meta: Tensor | None = None,
    ) -> None:
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
            raise ConfigError(
                f"images {tuple(images.shape)} and labels {tuple(labels.shape)}: need (N, C, H, W) "
                "images and N labels, N >= 1"
            )
        if meta is not None and (meta.ndim != 2 or len(meta) != len(images)):
            raise ConfigError(f"meta {tuple(meta.shape)} must be (N, 7) with N = {len(images)}")
        n_cls = int(num_classes) if num_classes is not None else int(labels.max()) + 1
        if int(labels.min()) < 0 or int(labels.max()) >= n_cls:
            raise ConfigError(
                f"labels span {int(labels.min())}..{int(labels.max())} but num_classes={n_cls}"
            )
        if classes is not None and len(classes) != n_cls:
            raise ConfigError(f"{len(classes)} class names for num_classes={n_cls}")
        self._images, self._labels, self._meta = images, labels, meta
        self.prefix = prefix
        self.num_classes = n_cls
        self.classes = list(classes) if classes is not None else [str(i) for i in range(n_cls)]
        self.ids = [f"{prefix}-{i:05d}" for i in range(len(images))]

    @property
    def images(self) -> Tensor:
        """The images, ``(N, C, H, W)``."""
        return self._images

    @property
    def targets(self) -> list[int]:
        """Labels as a list (like the folder datasets)."""
        return [int(v) for v in self._labels]

    def cache_identity(self) -> dict[str, Any]:
        """What the feature cache keys this dataset by: digests of pixels, labels and metadata."""
        return {
            "images": _digest(self._images),
            "labels": _digest(self._labels),
            "meta": None if self._meta is None else _digest(self._meta),
            "prefix": self.prefix,
            "num_classes": self.num_classes,
        }

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, i: int) -> Sample:
        sample: dict[str, Any] = {
            "image": self._images[i],
            "label": self._labels[i],
            "id": self.ids[i],
        }
        if self._meta is not None:
            sample["meta"] = self._meta[i]
        return sample


class TensorDataModule(FolderDataModule):
    """Ready-made datasets (e.g. :class:`TensorImageDataset`) behind the data-module interface.

    Args:
        train: Training dataset.
        val: Validation dataset.
        test: Test dataset (None: none; ``dataset("test")`` then raises).
        batch_size: Training batch size.
        num_workers: Loader worker processes.
        seed: Seed of the training order.
        eval_batch_size: Validation/test batch size (None: ``batch_size``).
    """

    def __init__(
        self,
        train: Dataset[Sample],
        val: Dataset[Sample],
        test: Dataset[Sample] | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        eval_batch_size: int | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, seed, eval_batch_size)
        self._given: dict[str, Dataset[Sample] | None] = {"train": train, "val": val,
                                                          "test": test}  # fmt: skip

    def make_dataset(self, split: Stage) -> Dataset[Sample]:
        """The dataset given for ``split``."""
        ds = self._given.get(split)
        if ds is None:
            raise ConfigError(f"TensorDataModule has no {split!r} dataset; pass {split}=...")
        return ds


__all__ = ["TensorDataModule", "TensorImageDataset"]
