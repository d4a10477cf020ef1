"""Views of a feature cache: a label budget and a subset of the maps, without re-extracting.

Benchmarks train one recipe many times (label budgets, seeds, tap and timestep ablations) on the
features of one extraction. Two pieces make that a data-module choice, not another model:

- :class:`CachedView` wraps a :class:`~satdifuser.features.cache_datamodule.CachedDataModule`
  and serves, from memory, the first ``train_budget`` training rows of each class and only the
  maps selected by tap patterns and timesteps;
- :class:`SelectMaps` is the matching frozen extractor: the wrapped extractor's output restricted
  to the same maps, so the task's model (extractor + standardiser + fusion + head) predicts from
  images exactly what it was trained on from the view.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from satdifuser.data.wrapping import WrappingDataModule
from satdifuser.errors import ConfigError
from satdifuser.features.cache_crop import crop_loader, train_transform
from satdifuser.features.cache_memory import InMemoryFeatures, in_memory_loader
from satdifuser.features.spec import FeatureInfo, FeatureSpec, taps_of, timesteps_of

_STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


def select_maps(
    feature_info: Sequence[FeatureInfo],
    taps: Sequence[str] | None = None,
    timesteps: Sequence[int] | None = None,
) -> list[int]:
    """Indices of the maps whose tap matches one of ``taps`` (fnmatch) and whose timestep is in
    ``timesteps`` (None: no condition), in ``feature_info`` order.

    Raises:
        ConfigError: nothing is left.
    """
    keep = [
        i
        for i, f in enumerate(feature_info)
        if (not taps or any(fnmatch.fnmatchcase(f.tap, p) for p in taps))
        and (timesteps is None or f.timestep in [int(t) for t in timesteps])
    ]
    if not keep:
        have = sorted({f.tap for f in feature_info})
        steps = sorted({f.timestep for f in feature_info})
        raise ConfigError(
            f"no feature map matches taps={list(taps or [])} timesteps={list(timesteps or [])}; "
            f"available taps: {', '.join(have[:8])}; timesteps: {steps}"
        )
    return keep


def first_per_class(labels: Tensor, budget: int | None) -> Tensor:
    """Row indices of the first ``budget`` rows of each class, in row order (None: all rows).

    Raises:
        ConfigError: a class has fewer than ``budget`` rows.
    """
    labels = torch.as_tensor(labels).reshape(-1)
    if budget is None:
        return torch.arange(len(labels))
    if budget < 1:
        raise ConfigError(f"label budget {budget} must be >= 1 per class")
    counts: dict[int, int] = {}
    keep = []
    for i, y in enumerate(labels.tolist()):
        if counts.get(y, 0) < budget:
            keep.append(i)
        counts[y] = counts.get(y, 0) + 1
    short = {c: n for c, n in counts.items() if n < budget}
    if short:
        raise ConfigError(
            f"label budget {budget} per class but the training split has fewer rows for classes "
            f"{short}; lower the budget"
        )
    return torch.tensor(keep, dtype=torch.long)


class FeatureRows(InMemoryFeatures):
    """Some rows and maps of an :class:`InMemoryFeatures` (served like it: a batch per index list).

    Args:
        base: The whole split in memory.
        rows: Row indices to keep, in this order (None: all rows, no copy).
        maps: Map indices to keep (None: all maps).
    """

    def __init__(
        self, base: InMemoryFeatures, rows: Tensor | None = None, maps: Sequence[int] | None = None
    ) -> None:
        keep = list(range(len(base.maps))) if maps is None else [int(i) for i in maps]
        self.feature_info = [base.feature_info[i] for i in keep]
        if rows is None:
            self.maps = [base.maps[i] for i in keep]
            self.targets = dict(base.targets)
            self.ids = list(base.ids)
        else:
            idx = torch.as_tensor(rows, dtype=torch.long)
            self.maps = [base.maps[i][idx] for i in keep]
            self.targets = {k: v[idx] for k, v in base.targets.items()}
            self.ids = [base.ids[i] for i in idx.tolist()]
        self.output_dtype = base.output_dtype


class SelectMaps(nn.Module):
    """A frozen extractor restricted to some of its maps (see :func:`select_maps`).

    Args:
        extractor: A :class:`~satdifuser.features.FeatureExtractor` (or any extractor with
            ``feature_info``, ``identity()`` and ``forward(images, metadata=None)``).
        taps: fnmatch patterns of the taps to keep (None: all).
        timesteps: Timesteps to keep (None: all).

    Attributes:
        feature_info: The kept maps, in the wrapped extractor's order.
        indices: Their positions in the wrapped extractor's output.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        extractor: nn.Module,
        taps: Sequence[str] | None = None,
        timesteps: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        info = getattr(extractor, "feature_info", None)
        if not info or not callable(getattr(extractor, "identity", None)):
            raise ConfigError(
                f"SelectMaps needs an extractor with feature_info and identity(), got "
                f"{type(extractor).__name__}; wrap a satdifuser FeatureExtractor"
            )
        self.extractor = extractor
        self.taps = list(taps) if taps else None
        self.timesteps = [int(t) for t in timesteps] if timesteps is not None else None
        self.indices = select_maps(info, self.taps, self.timesteps)
        self.feature_info: list[FeatureInfo] = [info[i] for i in self.indices]
        inner_spec = getattr(extractor, "spec", None)
        if isinstance(inner_spec, FeatureSpec):
            self.spec = dataclasses.replace(
                inner_spec, extra={**inner_spec.extra, "select": self._selection()}
            )
        else:  # e.g. EfficientNetLiteExtractor: describe it from its feature_info
            self.spec = FeatureSpec(
                timesteps=tuple(timesteps_of(self.feature_info)),
                taps=tuple(taps_of(self.feature_info)),
                image_size=int(getattr(extractor, "image_size", 0) or 0),
                extra={"extractor": type(extractor).__qualname__, "select": self._selection()},
            )

    def _selection(self) -> str:
        return json.dumps({"taps": self.taps, "timesteps": self.timesteps}, sort_keys=True)

    def identity(self) -> str:
        """Digest of the wrapped extractor's identity and the selection."""
        key = f"{self.extractor.identity()}|select:{self._selection()}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def config(self) -> dict[str, Any]:
        """The selection and the wrapped extractor's config (when it has one)."""
        inner = getattr(self.extractor, "config", None)
        return {"select": {"taps": self.taps, "timesteps": self.timesteps},
                "extractor": inner() if callable(inner) else None}  # fmt: skip

    @property
    def backbone(self) -> Any:
        """The wrapped extractor's backbone (None when it has none)."""
        return getattr(self.extractor, "backbone", None)

    @property
    def backbone_source(self) -> Any:
        """The wrapped extractor's backbone name or folder."""
        return getattr(self.extractor, "backbone_source", None)

    @property
    def in_channels(self) -> Any:
        """The wrapped extractor's input channels (None when unknown)."""
        return getattr(self.extractor, "in_channels", None)

    def train(self, mode: bool = True) -> SelectMaps:
        """Frozen: stays in eval mode."""
        super().train(False)
        self.extractor.train(False)
        return self

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        """The kept maps of the wrapped extractor's output."""
        maps = self.extractor(images, metadata)
        return [maps[i] for i in self.indices]


class CachedView(WrappingDataModule):
    """Serve a label budget and a subset of the maps of a cached data module, from memory.

    The cache is built (or reused) by ``cached.setup``; nothing is re-extracted for another
    budget, seed or map subset. Each split is held in memory (pooled classification features
    are small) and served a whole batch per index list.

    Args:
        cached: The :class:`~satdifuser.features.cache_datamodule.CachedDataModule` of the full
            training split (e.g. the largest budget) and of ``val``/``test``.
        train_budget: Keep the first ``train_budget`` training rows of each class (row order
            of the cache, i.e. the dataset's order); None keeps every row.
        taps: fnmatch patterns of the maps to serve (None: all); pair the task with
            ``SelectMaps(extractor, taps, timesteps)``.
        timesteps: Timesteps of the maps to serve (None: all).
        batch_size: Training batch size (None: the wrapped data module's).
        eval_batch_size: Validation/test batch size (None: the wrapped one's, else batch_size).
        seed: Seed of the training order.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        cached: Any,
        train_budget: int | None = None,
        taps: Sequence[str] | None = None,
        timesteps: Sequence[int] | None = None,
        batch_size: int | None = None,
        eval_batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.datamodule = cached
        self.train_budget = train_budget
        info = list(cached.feature_info)
        self.maps = select_maps(info, taps, timesteps)
        self._feature_info = [info[i] for i in self.maps]
        inner = getattr(cached, "datamodule", cached)
        self.batch_size = int(batch_size or getattr(inner, "batch_size", 32))
        self.eval_batch_size = int(
            eval_batch_size or getattr(inner, "eval_batch_size", None) or self.batch_size
        )
        self.seed = int(seed)
        self.splits: dict[str, FeatureRows] = {}

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The maps in ``batch["features"]``."""
        return list(self._feature_info)

    def setup(self, stage: str | None = None) -> None:
        """Build (or reuse) the caches of the stage's splits and hold the view in memory."""
        for split in _STAGE_SPLITS.get(stage or "", ("train", "val", "test")):
            if split not in self.splits:
                self.splits[split] = self.split(split)

    def split(self, split: str) -> FeatureRows:
        """The served rows and maps of ``split`` (builds the cache when needed)."""
        if split in self.splits:
            return self.splits[split]
        cached = self.datamodule
        if split not in cached.datasets:
            cached.setup({"train": "fit", "val": "validate"}.get(split, split))
        base = cached.memory.get(split)
        if base is None:
            base = cached.memory[split] = InMemoryFeatures(cached.datasets[split])
        rows = None
        if split == "train" and self.train_budget is not None:
            if "label" not in base.targets:
                raise ConfigError(
                    "train_budget needs class labels, but the cache stores none; use a "
                    "classification data module"
                )
            rows = first_per_class(base.targets["label"], self.train_budget)
        maps = None if self.maps == list(range(len(base.maps))) else self.maps
        return FeatureRows(base, rows, maps)

    def _loader(self, split: str, train: bool) -> DataLoader[Any]:
        data = self.split(split)
        self.splits[split] = data
        batch = self.batch_size if train else self.eval_batch_size
        crop = getattr(self.datamodule, "train_crop", None)
        flips = bool(getattr(self.datamodule, "train_flips", False))
        if split == "train" and (crop is not None or flips):  # the wrapped module's, kept maps
            sample = data[0]
            transform = train_transform(crop, flips, [tuple(f.shape) for f in sample["features"]],
                                        tuple(sample["mask"].shape))  # fmt: skip
            if transform is not None:
                return crop_loader(data, transform, batch, self.seed)
        return in_memory_loader(data, batch, train, self.seed)

    def train_dataloader(self) -> DataLoader[Any]:
        """The budget's training rows, shuffled by ``seed`` (random crops and/or flips and turns
        of them when the cached data module has ``train_crop`` / ``train_flips``)."""
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation rows, in order."""
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test rows, in order."""
        return self._loader("test", False)

    def predict_dataloader(self) -> DataLoader[Any]:
        """Same as :meth:`test_dataloader`."""
        return self.test_dataloader()


__all__ = ["CachedView", "FeatureRows", "SelectMaps", "first_per_class", "select_maps"]
