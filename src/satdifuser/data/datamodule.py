"""LightningDataModules for EuroSAT and GeoTIFF folders, and their shared base.

Every data module has plain typed constructor arguments (usable from LightningCLI YAML), builds
its datasets lazily, and hands out deterministic loaders (:func:`seeded_loader`): the same
``seed`` gives the same order, crops and augmentations. Each exposes ``num_classes``,
``classes``, ``task_type`` and ``ignore_index`` (and ``class_colors`` when the masks have a colour
table).

YAML example::

    data:
      class_path: satdifuser.data.EuroSATDataModule
      init_args: {root: ../shared/data, budget: 10, batch_size: 64, seed: 0}

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from satdifuser._typing import PathLike, Sample
from satdifuser.data.eurosat import EuroSAT
from satdifuser.data.geotiff_folder import GeoTiffFolder
from satdifuser.data.loaders import seeded_loader
from satdifuser.data.plotting import hex_to_rgb
from satdifuser.data.transforms import RandomFlipRotate, Resize, compose
from satdifuser.errors import ConfigError

Stage = Literal["train", "val", "test"]


class FolderDataModule(LightningDataModule):
    """Base: lazily built ``train``/``val``/``test`` datasets and seeded loaders.

    Subclasses implement :meth:`make_dataset`. Evaluation loaders use ``eval_batch_size``.

    Args:
        batch_size: Training batch size.
        num_workers: Loader worker processes.
        seed: Seed of shuffling, crops and augmentations.
        eval_batch_size: Batch size of validation/test loaders (None: ``batch_size``).
    """

    task_type: ClassVar[str] = "classification"

    def __init__(
        self, batch_size: int, num_workers: int, seed: int, eval_batch_size: int | None = None
    ) -> None:
        super().__init__()
        if (
            batch_size < 1
            or num_workers < 0
            or (eval_batch_size is not None and eval_batch_size < 1)
        ):
            raise ConfigError(
                f"batch_size={batch_size}, eval_batch_size={eval_batch_size}, num_workers="
                f"{num_workers}: batch sizes must be >= 1 and num_workers >= 0"
            )
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.eval_batch_size = eval_batch_size or batch_size
        self.datasets: dict[str, Dataset[Sample]] = {}

    def make_dataset(self, split: Stage) -> Dataset[Sample]:
        """Build the dataset of ``split`` (subclasses)."""
        raise NotImplementedError

    def dataset(self, split: Stage) -> Any:
        """The (cached) dataset of ``split``."""
        if split not in self.datasets:
            self.datasets[split] = self.make_dataset(split)
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``fit``, ``validate``, ``test``, ``predict``)."""
        needed: dict[str, tuple[Stage, ...]] = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
        }
        for split in needed.get(stage or "", ("train", "val", "test")):
            self.dataset(split)

    @property
    def _info(self) -> Any:
        return next(iter(self.datasets.values())) if self.datasets else self.dataset("train")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return int(self._info.num_classes)

    @property
    def classes(self) -> list[str]:
        """Class names, index = class id."""
        return list(self._info.classes)

    @property
    def class_colors(self) -> list[tuple[int, int, int]] | None:
        """RGB per class id when the dataset has a colour table (``colors``), else None."""
        colors = getattr(self._info, "colors", None)
        return [hex_to_rgb(c) for c in colors] if colors else None

    @property
    def ignore_index(self) -> int:
        """Mask value that losses and metrics ignore (segmentation)."""
        return int(getattr(self._info, "ignore_index", 255))

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training loader (order, crops and augmentations fixed by ``seed``)."""
        return seeded_loader(
            self.dataset("train"), self.batch_size, True, self.seed, self.num_workers
        )

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation loader (file order)."""
        return seeded_loader(
            self.dataset("val"), self.eval_batch_size, False, self.seed, self.num_workers
        )

    def test_dataloader(self) -> DataLoader[Any]:
        """Test loader (file order)."""
        return seeded_loader(
            self.dataset("test"), self.eval_batch_size, False, self.seed, self.num_workers
        )

    def predict_dataloader(self) -> DataLoader[Any]:
        """Same as :meth:`test_dataloader`."""
        return self.test_dataloader()


class EuroSATDataModule(FolderDataModule):
    """EuroSAT RGB with a label budget: ``train`` = first ``budget`` per class of the split's
    train list, ``val``/``test`` whole (see :class:`~satdifuser.data.eurosat.EuroSAT`).

    Args:
        root: Data root (argument, ``$SATDIFUSER_DATA``, ``../shared/data``).
        budget: Labelled training images per class (None: the whole train split).
        batch_size: Batch size.
        num_workers: Loader worker processes.
        seed: Seed of shuffling and augmentation.
        split_file: JSON split file (None: found beside the images, else the default split).
        image_size: Resize images to this side (None: keep 64 px).
        augment: Random flips and 90-degree rotations of training images.
        download: Download the official zip when the images are missing.
    """

    def __init__(
        self,
        root: PathLike | None = None,
        budget: int | None = 200,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        split_file: PathLike | None = None,
        image_size: int | None = None,
        augment: bool = False,
        download: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.save_hyperparameters()
        self.root, self.budget, self.split_file = root, budget, split_file
        self.image_size, self.augment, self.download = image_size, augment, download

    def make_dataset(self, split: Literal["train", "val", "test", "unlabeled"]) -> EuroSAT:  # type: ignore[override]
        """EuroSAT ``split`` (``unlabeled`` too: the pool for generative pre-training)."""
        train = split == "train"
        tf = compose(
            Resize(self.image_size) if self.image_size else None,
            RandomFlipRotate() if (self.augment and train) else None,
        )
        return EuroSAT(
            self.root,
            split=split,
            budget=self.budget if train else None,
            split_file=self.split_file,
            download=self.download,
            transforms=tf,
        )


class GeoTiffFolderDataModule(FolderDataModule):
    """A GeoTIFF folder (class folders or image/mask pairs) as train/val/test loaders.

    Class folders split like EuroSAT (split file or default split, label budget on train);
    the pairs layout needs a ``split_file`` with ``train``/``val``/``test`` lists.

    Args:
        root: Folder holding the layout.
        classes: Class names (required for pairs).
        split_file: JSON split file.
        budget: Labelled training images per class (class folders).
        view: ``rgb`` or ``all`` bands.
        rgb: Three band names or indices for the RGB view.
        band_names: Names of the bands when the files lack descriptions.
        scale: ``fixed`` or ``percentile``.
        value_range: Raw (low, high) mapped to [0, 1] by ``fixed``.
        batch_size: Batch size.
        num_workers: Loader worker processes.
        seed: Seed of shuffling and augmentation.
        image_size: Resize images to this side (None: keep).
        augment: Random flips and 90-degree rotations of training samples.
        ignore_index: Mask value for unlabelled pixels (pairs).
    """

    def __init__(
        self,
        root: PathLike,
        classes: list[str] | None = None,
        split_file: PathLike | None = None,
        budget: int | None = None,
        view: Literal["rgb", "all"] = "rgb",
        rgb: list[str | int] | None = None,
        band_names: list[str] | None = None,
        scale: Literal["fixed", "percentile"] = "fixed",
        value_range: tuple[float, float] | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        image_size: int | None = None,
        augment: bool = False,
        ignore_index: int = 255,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.save_hyperparameters()
        self.kw: dict[str, Any] = dict(
            classes=classes,
            split_file=split_file,
            view=view,
            rgb=rgb,
            band_names=band_names,
            scale=scale,
            value_range=value_range,
            ignore_index=ignore_index,
        )
        self.root, self.budget, self.image_size, self.augment = root, budget, image_size, augment

    def make_dataset(self, split: Stage) -> GeoTiffFolder:  # type: ignore[override]
        """GeoTIFF ``split``."""
        train = split == "train"
        tf = compose(
            Resize(self.image_size) if self.image_size else None,
            RandomFlipRotate() if (self.augment and train) else None,
        )
        ds = GeoTiffFolder(
            self.root, split=split, budget=self.budget if train else None, transforms=tf, **self.kw
        )
        if ds.layout == "pairs" and self.kw["split_file"] is None:
            raise ConfigError(
                f"{self.root} has image/mask pairs: pass split_file= a JSON with train/val/test "
                "lists, so the splits do not share images"
            )
        return ds

    def input_contract(self) -> dict[str, Any]:
        """How raw files become model input (saved with the model, applied by ``predict``)."""
        import numpy as np

        from satdifuser.data.bands import default_range

        ds = self.dataset("train")
        value_range = self.kw["value_range"] or default_range(np.dtype(ds.dtype))
        return {
            "channels": len(ds.bands),
            "band_names": [ds.band_names[i] for i in ds.bands],
            "raster": {
                "bands": [int(i) for i in ds.bands],
                "file_bands": len(ds.band_names),
                "scale": self.kw["scale"],
                "value_range": [float(v) for v in value_range],
                "percentiles": list(getattr(ds, "percentiles", (2.0, 98.0))),
            },
        }

    @property
    def task_type(self) -> str:  # type: ignore[override]
        """``classification`` or ``segmentation`` (from the folder layout)."""
        return str(self._info.task_type)


__all__ = ["EuroSATDataModule", "FolderDataModule", "GeoTiffFolderDataModule"]
