"""LightningDataModule for one GEO-Bench v1 task (deterministic, seeded loaders; YAML friendly).

YAML example::

    data:
      class_path: satdifuser.data.geobench_datamodule.GeoBenchDataModule
      init_args: {root: data/geobench, task: m-eurosat, batch_size: 32, image_size: 256}

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch.nn.functional as F
from torch.utils.data import DataLoader

from satdifuser._typing import Sample
from satdifuser.data.geobench import GeoBench
from satdifuser.data.loaders import seed_worker, seeded_loader
from satdifuser.errors import ConfigError


class ResizeImage:
    """Resize ``sample["image"]`` to ``size`` x ``size`` (bilinear, antialiased); masks untouched.

    SatDiFuser never resizes labels: segmentation logits are upsampled to the mask instead
    (method.md §2).
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, sample: Sample) -> Sample:
        img = sample["image"]
        if tuple(img.shape[-2:]) != (self.size, self.size):
            sample["image"] = F.interpolate(
                img[None], size=(self.size, self.size), mode="bilinear", antialias=True
            )[0]
        return sample


class GeoBenchDataModule(L.LightningDataModule):
    """Train/val/test loaders of one GEO-Bench task.

    Args:
        root: Folder holding ``classification_v1.0/``/``segmentation_v1.0/`` or a task folder.
        task: Task name (``m-eurosat`` ... ``m-chesapeake``).
        batch_size: Samples per batch.
        num_workers: Loader worker processes.
        partition: ``default`` or a train-size partition such as ``0.10x_train``.
        view: ``rgb`` (three bands in [0, 1]) or ``multispectral``.
        seed: Seed of the training shuffle (same seed, same order).
        bands: Band names (see :class:`~satdifuser.data.geobench.GeoBench`).
        image_size: Resize images to this side (e.g. 256 or 512); masks are never resized.
        ms_scaling: Multispectral scaling, ``raw`` or ``standardize``.
        fix_band_shift: Correct m-eurosat's band names.
        ignore_nodata: Map the task's "no data" class to ``ignore_index``.
    """

    def __init__(
        self,
        root: str | None = None,
        task: str = "m-eurosat",
        batch_size: int = 32,
        num_workers: int = 0,
        partition: str = "default",
        view: Literal["rgb", "multispectral"] = "rgb",
        seed: int = 0,
        bands: list[str] | None = None,
        image_size: int | None = None,
        ms_scaling: Literal["raw", "standardize"] = "standardize",
        fix_band_shift: bool = True,
        ignore_nodata: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ConfigError(
                f"batch_size={batch_size}, num_workers={num_workers}: need batch_size >= 1 and "
                "num_workers >= 0"
            )
        if image_size is not None and image_size < 1:
            raise ConfigError(f"image_size={image_size} must be a positive side length or null")
        self.save_hyperparameters()
        self.root, self.task, self.partition, self.view = root, task, partition, view
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.bands, self.image_size = bands, image_size
        self.ms_scaling, self.fix_band_shift, self.ignore_nodata = (
            ms_scaling, fix_band_shift, ignore_nodata,
        )  # fmt: skip
        self.datasets: dict[str, GeoBench] = {}

    def dataset(self, split: Literal["train", "val", "test"]) -> GeoBench:
        """The (cached) dataset of ``split``."""
        if split not in self.datasets:
            self.datasets[split] = GeoBench(
                self.root, task=self.task, split=split, partition=self.partition, view=self.view,
                bands=self.bands,
                transforms=ResizeImage(self.image_size) if self.image_size else None,
                ms_scaling=self.ms_scaling, fix_band_shift=self.fix_band_shift,
                ignore_nodata=self.ignore_nodata,
            )  # fmt: skip
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets the stage needs (``fit``, ``validate``, ``test``, ``predict``)."""
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",),
                  "predict": ("test",)}.get(stage or "", ("train", "val", "test"))  # fmt: skip
        for s in splits:
            self.dataset(s)  # type: ignore[arg-type]

    @property
    def _info(self) -> GeoBench:
        return next(iter(self.datasets.values())) if self.datasets else self.dataset("train")

    @property
    def num_classes(self) -> int:
        """Number of classes of the task."""
        return self._info.num_classes

    @property
    def task_type(self) -> str:
        """``classification``, ``multilabel`` or ``segmentation``."""
        return self._info.task_type

    @property
    def classes(self) -> list[str]:
        """Class names, index = class id."""
        return self._info.classes

    @property
    def ignore_index(self) -> int:
        """Mask value that losses and metrics must ignore."""
        return self._info.ignore_index

    def _loader(self, split: Literal["train", "val", "test"], shuffle: bool) -> DataLoader:
        # seeded_loader: the same batches for any num_workers (persistent workers included)
        return seeded_loader(
            self.dataset(split), self.batch_size, shuffle, self.seed, self.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training loader (order fixed by ``seed``)."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation loader (file order)."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test loader (file order)."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Same as :meth:`test_dataloader`."""
        return self._loader("test", shuffle=False)


__all__ = ["GeoBenchDataModule", "ResizeImage", "seed_worker"]
