"""Segmentation images at a working scale: grid windows for training, whole images for scoring.

Large aerial tiles are often worked on downscaled (CPU budgets). :class:`ScaledTiles` resizes the
images of a :class:`~satdifuser.data.mask_folder.MaskFolder` by ``scale`` (antialiased bilinear;
masks nearest) and serves either ``window``-square grid windows (last flush with the edge; image
padded with 0 and mask with ``ignore_index`` when smaller) or whole images whose ``mask`` stays at
native resolution, so a sliding-window prediction upsampled to the mask is scored on every native
labelled pixel (``SegmentationTask(sliding_window=...)``). The resize (bilinear, antialiased,
``align_corners=False``) is the one ``satdifuser.model.resample`` repeats at prediction: data
modules expose ``scale`` as ``resample``, which the task saves in the model's input contract.
:class:`ScaledDubaiDataModule` is the Dubai aerial split by tile on top of it;
:class:`FitTestDataModule` pairs a (cached) data module for fit with another one for test.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from satdifuser._typing import PathLike, Sample
from satdifuser.data.datamodule import FolderDataModule, Stage
from satdifuser.data.dubai_aerial import DubaiAerial
from satdifuser.data.mask_folder import MaskFolder
from satdifuser.data.meta import make_meta
from satdifuser.data.tiling import grid_windows
from satdifuser.data.wrapping import WrappingDataModule
from satdifuser.errors import ConfigError


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(round(height * scale), round(width * scale))``, at least 1 each."""
    return max(1, round(height * scale)), max(1, round(width * scale))


class ScaledTiles(Dataset[Sample]):
    """The images of ``folder`` resized by ``scale``: grid windows or whole images.

    Args:
        folder: A :class:`MaskFolder` (e.g. ``DubaiAerial``); its ``load`` gives native arrays.
        scale: Resize factor in (0, 1].
        mode: ``grid`` (``window`` squares) or ``whole`` (the scaled image with its native mask).
        window: Window side at the working scale (``grid``).
        limit: Use only the first ``limit`` images.
    """

    def __init__(
        self,
        folder: MaskFolder,
        scale: float,
        mode: Literal["grid", "whole"] = "grid",
        window: int | None = None,
        limit: int | None = None,
    ) -> None:
        if not 0 < scale <= 1:
            raise ConfigError(f"scale={scale} must be in (0, 1]")
        if mode not in ("grid", "whole"):
            raise ConfigError(f"mode={mode!r} is not one of 'grid', 'whole'")
        if mode == "grid" and (window is None or window < 1):
            raise ConfigError(f"mode='grid' needs window >= 1 (got {window})")
        if limit is not None and limit < 1:
            raise ConfigError(f"limit={limit} must be >= 1")
        self.folder, self.scale, self.mode, self.window = folder, float(scale), mode, window
        n = len(folder.images) if limit is None else min(limit, len(folder.images))
        self.image_ids = [folder.rel_id(i) for i in range(n)]
        self.classes, self.ignore_index = list(folder.classes), int(folder.ignore_index)
        self.colors = list(folder.colors) if folder.colors else None  # the masks' colour table
        self.windows: list[tuple[int, int, int]] = []
        if mode == "grid":
            from satdifuser.data.image_io import image_size

            assert window is not None
            for i in range(n):
                h, w = scaled_size(*image_size(folder.images[i]), self.scale)
                self.windows += [(i, y, x) for y, x in grid_windows(h, w, window, window)]
        self.ids = (
            [f"{self.image_ids[i]}@{y},{x}" for i, y, x in self.windows]
            if mode == "grid"
            else list(self.image_ids)
        )
        self._last: tuple[int, Tensor, Tensor, np.ndarray] | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def cache_identity(self) -> dict[str, Any]:
        """What changes the served samples (keys feature caches)."""
        return {"root": str(self.folder.root), "images": self.image_ids, "scale": self.scale,
                "mode": self.mode, "window": self.window, "ignore_index": self.ignore_index,
                "classes": self.classes}  # fmt: skip

    def scaled(self, index: int) -> tuple[Tensor, Tensor, np.ndarray]:
        """Image ``index`` at the working scale (3, h, w), its scaled mask and its native mask."""
        if self._last is not None and self._last[0] == index:
            return self._last[1:]
        image, mask = self.folder.load(index)
        h, w = scaled_size(image.shape[0], image.shape[1], self.scale)
        img = torch.from_numpy(image.copy()).permute(2, 0, 1).float().div_(255)
        msk = torch.from_numpy(mask.astype(np.int64))
        if (h, w) != tuple(img.shape[-2:]):
            img = F.interpolate(
                img[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False
            )[0].clamp_(0, 1)
            msk = F.interpolate(msk[None, None].float(), size=(h, w), mode="nearest-exact")
            msk = msk[0, 0].long()
        self._last = (index, img, msk, mask)
        return img, msk, mask

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        gsd = self.folder.gsd / self.scale if self.folder.gsd is not None else math.nan
        if self.mode == "whole":
            img, _, native = self.scaled(index)
            return {"image": img, "mask": torch.from_numpy(native.astype(np.int64)),
                    "meta": make_meta(gsd=gsd), "id": self.ids[index]}  # fmt: skip
        i, y, x = self.windows[index]
        img, msk, _ = self.scaled(i)
        win = int(self.window or 0)
        img, msk = img[:, y : y + win, x : x + win], msk[y : y + win, x : x + win]
        ph, pw = win - img.shape[1], win - img.shape[2]
        if ph or pw:
            img = F.pad(img, (0, pw, 0, ph))
            msk = F.pad(msk, (0, pw, 0, ph), value=self.ignore_index)
        return {"image": img.contiguous(), "mask": msk.contiguous(), "meta": make_meta(gsd=gsd),
                "id": self.ids[index]}  # fmt: skip


class ScaledDubaiDataModule(FolderDataModule):
    """Dubai aerial split by tile at a working scale.

    ``train``/``val``: ``window`` grid windows of the scaled images of the train / val tiles
    (fixed, so a feature cache can hold them); ``test``: whole scaled images of the val tiles with
    native masks (batch size 1), for sliding-window scoring at native resolution.

    Args:
        root: Data root holding ``dubai_aerial/`` (or that folder).
        train_tiles: Training tile numbers.
        val_tiles: Validation (and scoring) tile numbers.
        scale: Image resize factor in (0, 1].
        window: Window side at that scale.
        train_limit: Use only the first N training images (smoke tests).
        val_limit: Use only the first N validation images.
        batch_size: Training batch size.
        seed: Shuffling seed.
        ignore_index: Mask value of unlabelled pixels.
    """

    task_type: ClassVar[str] = "segmentation"

    def __init__(
        self,
        root: PathLike | None = None,
        train_tiles: list[int] | None = None,
        val_tiles: list[int] | None = None,
        scale: float = 0.25,
        window: int = 256,
        train_limit: int | None = None,
        val_limit: int | None = None,
        batch_size: int = 8,
        seed: int = 0,
        ignore_index: int = 255,
    ) -> None:
        super().__init__(batch_size, 0, seed, eval_batch_size=batch_size)
        self.root, self.scale, self.window = root, scale, window
        self.tiles = {"train": list(train_tiles or (1, 2, 3, 4, 7)),
                      "val": list(val_tiles or (8,))}  # fmt: skip
        self.limits = {"train": train_limit, "val": val_limit}
        self.ignore = ignore_index
        self.folders: dict[str, DubaiAerial] = {}

    @property
    def resample(self) -> float:
        """Factor native pixels are resized by (``scale``); saved in the model's input contract."""
        return float(self.scale)

    def folder(self, tiles: str) -> DubaiAerial:
        """The whole-image dataset of the ``train`` or ``val`` tiles."""
        if tiles not in self.folders:
            self.folders[tiles] = DubaiAerial(self.root, tiles=self.tiles[tiles],
                                              ignore_index=self.ignore)  # fmt: skip
        return self.folders[tiles]

    def make_dataset(self, split: Stage) -> ScaledTiles:  # type: ignore[override]
        """Grid windows for ``train``/``val``; whole val images for ``test``."""
        tiles = "train" if split == "train" else "val"
        mode: Literal["grid", "whole"] = "whole" if split == "test" else "grid"
        return ScaledTiles(self.folder(tiles), self.scale, mode, self.window, self.limits[tiles])

    def native_pixels(self) -> int:
        """Pixels of the whole (native) images scored in ``test``."""
        from satdifuser.data.image_io import image_size

        test = self.dataset("test")
        return sum(h * w for h, w in (image_size(test.folder.images[i])
                                      for i in range(len(test.image_ids))))  # fmt: skip

    def test_dataloader(self) -> DataLoader[Any]:
        """Whole images, one per batch (sizes differ)."""
        return DataLoader(self.dataset("test"), batch_size=1, shuffle=False)


class FitTestDataModule(WrappingDataModule):
    """``fit``/``validate`` from one data module (e.g. a feature cache), ``test`` from another
    (e.g. whole images scored with a sliding window).

    Args:
        fit: Serves ``train`` and ``val``.
        test: Serves ``test`` (and ``predict``).
    """

    def __init__(self, fit: LightningDataModule, test: LightningDataModule) -> None:
        super().__init__()
        rates = [float(getattr(dm, "resample", 1.0)) for dm in (fit, test)]
        if rates[0] != rates[1]:
            raise ConfigError(
                f"the fit data resamples pixels by {rates[0]:g} but the test data by {rates[1]:g}; "
                "give both the same scale"
            )
        self.fit_data, self.test_data = fit, test
        self.datamodule = fit  # what task checks look into

    def prepare_data(self) -> None:
        """Delegate to both."""
        self.fit_data.prepare_data()
        self.test_data.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        """``test``/``predict`` set up the test module, every other stage the fit module."""
        target = self.test_data if stage in ("test", "predict") else self.fit_data
        target.setup(stage)

    def train_dataloader(self) -> Any:
        """From the fit module."""
        return self.fit_data.train_dataloader()

    def val_dataloader(self) -> Any:
        """From the fit module."""
        return self.fit_data.val_dataloader()

    def test_dataloader(self) -> Any:
        """From the test module."""
        return self.test_data.test_dataloader()

    def predict_dataloader(self) -> Any:
        """From the test module."""
        return self.test_data.test_dataloader()


__all__ = ["FitTestDataModule", "ScaledDubaiDataModule", "ScaledTiles", "scaled_size"]
