"""LightningDataModules for segmentation folders: crops for training, whole images for evaluation.

Training reads random (or grid) crops of ``crop_size``; validation and test read whole images
(batch size 1, sizes differ), to be predicted window by window with
:func:`satdifuser.data.tiling.sliding_window_predict` (``SegmentationTask(sliding_window=
crop_size, sliding_overlap=eval_overlap)``), so metrics are per whole image.

YAML example::

    data:
      class_path: satdifuser.data.DubaiAerialDataModule
      init_args: {root: ../shared/data, train_tiles: [1, 2, 3, 4, 7], val_tiles: [8],
                  crop_size: 256, crops_per_image: 4, batch_size: 8}

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from satdifuser._typing import PathLike
from satdifuser.data.datamodule import FolderDataModule, Stage
from satdifuser.data.dubai_aerial import DubaiAerial
from satdifuser.data.mask_folder import MaskFolder
from satdifuser.data.transforms import RandomFlipRotate
from satdifuser.errors import ConfigError

DEFAULT_TRAIN_TILES: tuple[int, ...] = (1, 2, 3, 4, 7)
DEFAULT_VAL_TILES: tuple[int, ...] = (8,)


class MaskFolderDataModule(FolderDataModule):
    """A :class:`~satdifuser.data.mask_folder.MaskFolder` split by groups or by a split file.

    Args:
        root: Folder holding the groups (or ``images/`` + ``masks/``).
        classes: Class names (id order).
        colors: ``#RRGGBB`` per class for colour-coded masks (None: index masks).
        ignore_colors: Colours meaning "no label".
        train_groups: Groups (subfolders) for training.
        val_groups: Groups for validation.
        test_groups: Groups for testing (None: the validation groups).
        split_file: JSON with ``train``/``val``/``test`` image lists (instead of groups).
        crop_size: Training crop side; also the evaluation window.
        crops_per_image: Random crops per training image per epoch.
        train_mode: ``random`` or ``grid`` training crops.
        batch_size: Training batch size (evaluation uses 1: whole images).
        num_workers: Loader worker processes.
        seed: Seed of shuffling, crops and augmentation.
        ignore_index: Mask value for unlabelled pixels.
        eval_overlap: Overlap fraction for sliding-window evaluation (read by the task config).
        augment: Random flips and 90-degree rotations of training crops.
        cache: Keep decoded images/masks in memory (per worker process).
        gsd: Ground sample distance in metres for ``meta``.
    """

    task_type: ClassVar[str] = "segmentation"

    def __init__(
        self,
        root: PathLike | None = None,
        classes: list[str] | None = None,
        colors: list[str] | None = None,
        ignore_colors: list[str] | None = None,
        train_groups: list[str] | None = None,
        val_groups: list[str] | None = None,
        test_groups: list[str] | None = None,
        split_file: PathLike | None = None,
        crop_size: int = 256,
        crops_per_image: int = 4,
        train_mode: Literal["random", "grid"] = "random",
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
        ignore_index: int = 255,
        eval_overlap: float = 0.5,
        augment: bool = False,
        cache: bool = False,
        gsd: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, seed, eval_batch_size=1)
        self.save_hyperparameters()
        if split_file is None and (train_groups is None or val_groups is None):
            if type(self) is MaskFolderDataModule:
                raise ConfigError(
                    "MaskFolderDataModule needs train_groups and val_groups (e.g. [tile_1], "
                    "[tile_8]) or a split_file with train/val/test lists"
                )
        if not 0.0 <= eval_overlap < 1.0:
            raise ConfigError(f"eval_overlap={eval_overlap} must be in [0, 1)")
        if train_mode not in ("random", "grid"):
            raise ConfigError(f"train_mode={train_mode!r} is not one of 'random', 'grid'")
        self.root, self.split_file = root, split_file
        self.groups: dict[str, list[str] | None] = {
            "train": train_groups,
            "val": val_groups,
            "test": test_groups or val_groups,
        }
        self.crop_size, self.crops_per_image, self.train_mode = (
            crop_size,
            crops_per_image,
            train_mode,
        )
        self.eval_overlap, self.augment, self.cache = eval_overlap, augment, cache
        self.kw: dict[str, Any] = dict(
            classes=classes,
            colors=colors,
            ignore_colors=ignore_colors,
            ignore_index=ignore_index,
            gsd=gsd,
        )

    def _mode_kw(self, split: Stage) -> dict[str, Any]:
        train = split == "train"
        return dict(
            mode=self.train_mode if train else "whole",
            crop_size=self.crop_size if train else None,
            crops_per_image=self.crops_per_image,
            cache=self.cache,
            transforms=RandomFlipRotate() if (self.augment and train) else None,
        )

    def make_dataset(self, split: Stage) -> MaskFolder:  # type: ignore[override]
        """``train``: crops; ``val``/``test``: whole images."""
        if self.split_file is not None:
            return MaskFolder(
                self.root,
                split_file=self.split_file,
                split=split,
                **self.kw,
                **self._mode_kw(split),
            )
        return MaskFolder(self.root, groups=self.groups[split], **self.kw, **self._mode_kw(split))


class DubaiAerialDataModule(MaskFolderDataModule):
    """Dubai aerial segmentation split by tile: train tiles 1, 2, 3, 4, 7 and val tile 8 by
    default. The shared data has no held-out test tile, so ``test`` defaults to the val tiles
    (report it as such, or pass other tiles of the release as ``test_tiles``).

    Args:
        root: Data root holding ``dubai_aerial/`` (or that folder).
        train_tiles: Training tile numbers (None: 1, 2, 3, 4, 7).
        val_tiles: Validation tile numbers (None: 8).
        test_tiles: Test tile numbers (None: the validation tiles).
        crop_size: Training crop side; also the evaluation window.
        crops_per_image: Random crops per training image per epoch.
        train_mode: ``random`` or ``grid`` training crops.
        batch_size: Training batch size (evaluation uses 1).
        num_workers: Loader worker processes.
        seed: Seed of shuffling, crops and augmentation.
        ignore_index: Mask value for unlabelled pixels.
        eval_overlap: Overlap fraction for sliding-window evaluation.
        augment: Random flips and 90-degree rotations of training crops.
        cache: Keep decoded images/masks in memory (per worker process, ~250 MB for train).
    """

    def __init__(
        self,
        root: PathLike | None = None,
        train_tiles: list[int] | None = None,
        val_tiles: list[int] | None = None,
        test_tiles: list[int] | None = None,
        crop_size: int = 256,
        crops_per_image: int = 4,
        train_mode: Literal["random", "grid"] = "random",
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
        ignore_index: int = 255,
        eval_overlap: float = 0.5,
        augment: bool = False,
        cache: bool = False,
    ) -> None:
        super().__init__(
            root=root,
            crop_size=crop_size,
            crops_per_image=crops_per_image,
            train_mode=train_mode,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            ignore_index=ignore_index,
            eval_overlap=eval_overlap,
            augment=augment,
            cache=cache,
        )
        self.save_hyperparameters()
        val = list(val_tiles or DEFAULT_VAL_TILES)
        self.tiles: dict[str, list[int]] = {
            "train": list(train_tiles or DEFAULT_TRAIN_TILES),
            "val": val,
            "test": list(test_tiles or val),
        }
        overlap = set(self.tiles["train"]) & (set(self.tiles["val"]) | set(self.tiles["test"]))
        if overlap:
            raise ConfigError(
                f"tiles {sorted(overlap)} are in train and in val/test; split by tile keeps "
                "them apart (choose disjoint train_tiles and val_tiles)"
            )

    def make_dataset(self, split: Stage) -> DubaiAerial:  # type: ignore[override]
        """Tiles of ``split``; crops for train, whole images otherwise."""
        return DubaiAerial(
            self.root,
            tiles=self.tiles[split],
            ignore_index=int(self.kw["ignore_index"]),
            **self._mode_kw(split),
        )


__all__ = ["DubaiAerialDataModule", "MaskFolderDataModule"]
