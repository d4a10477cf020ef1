"""Train from the feature cache: wrap any LightningDataModule so its batches carry ``features``.

Batches then hold ``features`` (list of (B, C, H, W) float32 maps in ``feature_info`` order),
``label`` or ``mask``, ``id`` (and ``image`` when ``keep_image``); tasks use ``features`` instead
of running the extractor. In ``setup()`` every rank builds (or verifies and reuses) the cache of
each split the stage needs; under DDP each rank extracts its own shards. ``train_crop`` trains a
segmentation model on random crops of the cached windows, ``train_flips`` on random flips and
quarter turns of them (see ``cache_crop``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from satdifuser.data.loaders import seeded_loader
from satdifuser.data.wrapping import WrappingDataModule
from satdifuser.errors import ConfigError
from satdifuser.features.cache_crop import (
    TrainTransform,
    check_crop_step,
    check_train_crop,
    check_train_flips,
    crop_loader,
    train_transform,
)
from satdifuser.features.cache_dataset import CachedFeatureDataset
from satdifuser.features.cache_memory import InMemoryFeatures, in_memory_loader
from satdifuser.features.cache_plan import check_deterministic, make_plan, select_taps, split_folder
from satdifuser.features.cache_store import FeatureCacheBuilder
from satdifuser.features.spec import FeatureInfo

_STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}
_FORWARDED = ("num_classes", "classes", "task_type", "ignore_index")


class CachedDataModule(WrappingDataModule):
    """Serve a wrapped datamodule's splits from an on-disk feature cache.

    Args:
        datamodule: The datamodule whose splits are cached; it must expose ``dataset(split)``
            (``FolderDataModule``, ``GeoBenchDataModule``) or ``<split>_dataloader()``. Its
            ``num_classes``, ``classes``, ``task_type`` and ``ignore_index`` are forwarded.
        extractor: The ``FeatureExtractor`` whose features are cached (the task's own).
        cache_dir: Root folder of the content-addressed cache: split ``s`` is cached in
            ``cache_dir/<s>-<key>``, the key covering the extractor (weights + feature spec),
            the dataset and every option that changes its images or labels, the sample ids,
            the storage dtype and kept taps. A changed option means a new folder (re-extract),
            never stale features.
        dtype: Storage dtype: ``float16`` (default), ``bfloat16`` or ``float32``.
        keep_taps: fnmatch patterns of taps to keep (all when None); see :attr:`feature_info`.
        extract_batch_size: Batch size of the one-off extraction.
        shard_size: Rows per shard (auto when None).
        max_gb: Refuse to build a split whose estimated size exceeds this many GB.
        overwrite: Rebuild a cache made with another configuration instead of refusing.
        keep_image: Also serve ``image`` (read from the wrapped dataset; for plots).
        progress: Show the extraction progress bar.
        in_memory: Serve each split from memory (one tensor slice per batch, the fast path for
            pooled features); None: when the split's cache is at most ``memory_limit_gb``.
        memory_limit_gb: Size limit of the automatic in-memory choice.
        train_crop: Segmentation only: train on random ``train_crop`` x ``train_crop`` pixel crops
            of the cached training windows (the same crop of every map, at its stride, and of
            the mask; a new crop each epoch, a pure function of the wrapped datamodule's
            ``seed``, the epoch and the row). A multiple of the coarsest feature stride, at most
            the window. Validation and test are never cropped; the cache is the same with or
            without crops. None: whole windows.
        train_flips: Segmentation only: also turn each served training sample (crop or whole
            window) by a random element of the dihedral group (left-right / up-down flips and,
            for square samples, quarter turns), the same for every map, the mask and the kept
            image; a pure function of the seed, the epoch and the row, drawn independently of
            the crop offset. Validation and test are never turned; the cache is the same.

    Raises:
        CacheMismatchError: In ``setup()``, when ``cache_dir`` holds another configuration.
        ConfigError: When a split is not deterministic (random augmentation or crops), or
            ``train_crop`` does not fit the cached training windows, or ``train_crop`` or
            ``train_flips`` is set for samples without masks (checked in ``setup()``).

    .. versionchanged:: 0.3
        ``train_crop`` and ``train_flips``.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        datamodule: LightningDataModule,
        extractor: Any,
        cache_dir: str | Path,
        dtype: str = "float16",
        keep_taps: Sequence[str] | None = None,
        extract_batch_size: int = 16,
        shard_size: int | None = None,
        max_gb: float | None = None,
        overwrite: bool = False,
        keep_image: bool = False,
        progress: bool = True,
        in_memory: bool | None = None,
        memory_limit_gb: float = 2.0,
        train_crop: int | None = None,
        train_flips: bool = False,
    ) -> None:
        super().__init__()
        self.datamodule = datamodule
        self.extractor = extractor
        self.cache_dir = Path(cache_dir)
        self.dtype, self.keep_taps = dtype, list(keep_taps) if keep_taps else None
        self.extract_batch_size, self.shard_size, self.max_gb = (
            extract_batch_size,
            shard_size,
            max_gb,
        )
        self.overwrite, self.keep_image, self.progress = overwrite, keep_image, progress
        self.in_memory, self.memory_limit_gb = in_memory, float(memory_limit_gb)
        self.train_crop = check_train_crop(train_crop)
        self.train_flips = check_train_flips(train_flips)
        self.transform: TrainTransform | None = None  # set up with the training split
        self.folders: dict[str, Path] = {}
        self.memory: dict[str, InMemoryFeatures] = {}
        info = list(extractor.feature_info)
        self._feature_info = [info[i] for i in select_taps(info, self.keep_taps)]
        self.datasets: dict[str, CachedFeatureDataset] = {}

    # ------------------------------------------------------------- forwarding
    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The maps in ``batch["features"]`` (the extractor's, filtered by ``keep_taps``)."""
        return list(self._feature_info)

    # ------------------------------------------------------------------ setup
    def source_dataset(self, split: str) -> Any:
        """The wrapped datamodule's dataset of ``split``."""
        dm = self.datamodule
        if callable(getattr(dm, "dataset", None)):
            return dm.dataset(split)  # type: ignore[attr-defined]
        dm.setup({"train": "fit", "val": "validate"}.get(split, split))
        loader = getattr(dm, f"{split}_dataloader")()
        return loader.dataset

    def _device(self) -> torch.device | None:
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else None

    def setup(self, stage: str | None = None) -> None:
        """Build or reuse the caches of the splits ``stage`` needs (every rank must call it)."""
        for split in _STAGE_SPLITS.get(stage or "", ("train", "val", "test")):
            if split in self.datasets:
                continue
            if split == "train" and getattr(self.datamodule, "augment", False):
                raise ConfigError(
                    "the wrapped datamodule has augment=True, but a feature cache stores one fixed "
                    "view of each image; set augment: false or train without the cache"
                )
            source = self.source_dataset(split)
            check_deterministic(source, split)
            if split == "train" and (self.train_crop is not None or self.train_flips):
                self._check_crop_source(source)
            plan = make_plan(
                source, self.extractor, dtype=self.dtype, keep_taps=self.keep_taps,
                batch_size=self.extract_batch_size, shard_size=self.shard_size,
            )  # fmt: skip
            folder = split_folder(self.cache_dir, split, plan)
            builder = FeatureCacheBuilder(
                source, self.extractor, folder, dtype=self.dtype,
                keep_taps=self.keep_taps, batch_size=self.extract_batch_size,
                shard_size=self.shard_size, device=self._device(),
            )  # fmt: skip
            builder.prepare(overwrite=self.overwrite, max_gb=self.max_gb)
            builder.run(progress=self.progress)
            self.folders[split] = folder
            self.datasets[split] = CachedFeatureDataset(
                folder,
                expected=builder.plan,
                source=source if self.keep_image else None,
                extra_keys=("image",) if self.keep_image else (),
            )
            memory = self.in_memory
            if memory is None:
                memory = builder.plan.estimated_bytes <= self.memory_limit_gb * 1e9
            if memory and not self.keep_image:
                self.memory[split] = InMemoryFeatures(self.datasets[split])
            if split == "train":
                self.transform = self._transform(self._served(split))

    def _check_crop_source(self, source: Any) -> None:
        """Before extraction: the training samples have masks, and ``train_crop`` fits them
        (exactly checked on the cached maps by :meth:`_transform`)."""
        sample = source[0]
        if "mask" not in sample:
            if self.train_crop is not None:
                raise ConfigError(
                    f"train_crop={self.train_crop} crops segmentation masks, but the training "
                    "samples have none (classification); set train_crop: null"
                )
            raise ConfigError(
                "train_flips=true flips segmentation samples (maps and mask), but the training "
                "samples have no mask (classification); set train_flips: false"
            )
        if self.train_crop is None:
            return
        crop = int(self.train_crop)
        h, w = (int(v) for v in torch.as_tensor(sample["mask"]).shape[-2:])
        size = getattr(getattr(self.extractor, "spec", None), "image_size", None)
        if not size or size == h == w:  # maps at the window's own size: strides = reductions
            check_crop_step(crop, math.lcm(1, *(f.reduction for f in self._feature_info)))
        if crop > min(h, w):
            raise ConfigError(
                f"train_crop={crop} is larger than the {h}x{w} px training windows; use at most "
                f"{min(h, w)} (or null for whole windows)"
            )

    def _served(self, split: str) -> CachedFeatureDataset | InMemoryFeatures:
        return self.memory[split] if split in self.memory else self.datasets[split]

    def _transform(self, data: CachedFeatureDataset | InMemoryFeatures) -> TrainTransform | None:
        """The crops and turns of the cached training maps (strides from their actual sizes)."""
        if self.train_crop is None and not self.train_flips:
            return None
        sample = data[0]
        return train_transform(self.train_crop, self.train_flips,
                               [tuple(f.shape) for f in sample["features"]],
                               tuple(sample["mask"].shape))  # fmt: skip

    # ---------------------------------------------------------------- loaders
    def _loader(self, split: str, train: bool) -> DataLoader[Any]:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate"}.get(split, split))
        dm = self.datamodule
        batch = int(getattr(dm, "batch_size", 32))
        if not train:
            batch = int(getattr(dm, "eval_batch_size", None) or batch)
        seed, workers = int(getattr(dm, "seed", 0)), int(getattr(dm, "num_workers", 0))
        if split == "train" and self.transform is not None:
            return crop_loader(self._served(split), self.transform, batch, seed, workers)
        if split in self.memory:
            return in_memory_loader(self.memory[split], batch, train, seed)
        return seeded_loader(self.datasets[split], batch, train, seed, workers)

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled cached training split (seeded like the wrapped datamodule), random crops of
        it with ``train_crop``, random flips and turns with ``train_flips``."""
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Cached validation split, in order."""
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Cached test split, in order."""
        return self._loader("test", False)

    def predict_dataloader(self) -> DataLoader[Any]:
        """Same as :meth:`test_dataloader`."""
        return self.test_dataloader()


__all__ = ["CachedDataModule"]
