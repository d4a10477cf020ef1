"""The trained product: input contract + feature spec + standardiser + fusion + head.

A :class:`SatDiFuserModel` goes from pixels to predictions. It is what ``satdifuser fit`` saves at
its best epoch, what ``satdifuser demo`` writes, what ``satdifuser predict`` loads and what the
benchmarks score. The frozen extractor is attached but kept out of ``state_dict`` (its weights
are named by the backbone and their content id in the config); only the standardiser, the fusion
and the head are saved (see :mod:`satdifuser.model.pretrained`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import FUSIONS, BaseFusion
from satdifuser.heads.base import HEADS
from satdifuser.model.colors import RGB, check_class_colors
from satdifuser.model.inputs import InputAdapter, InputSpec
from satdifuser.model.raster_input import prepare_raster
from satdifuser.model.resample import (
    check_resample,
    resampled_size,
    resize_images,
    resize_probabilities,
)
from satdifuser.model.standardize import ChannelStandardizer

TASK_TYPES = ("classification", "multilabel", "segmentation")

DEFAULT_INPUT: dict[str, Any] = {"channels": 3, "value_range": [0.0, 1.0], "band_names": None,
                                 "raster_scale": None, "spec": None, "resample": 1.0,
                                 "window": None}  # fmt: skip
"""Input contract: images ``(B, channels, H, W)`` float in ``value_range``. ``window`` is the
segmentation window side the model was evaluated with in training (the task's ``sliding_window``;
None: the extractor's working size), the tile of ``satdifuser predict``. ``resample`` is the factor
native pixels were resized by before the model in training (0.25: 4x coarser, e.g.
``ScaledTiles(scale=0.25)``); ``predict``/``predict_proba`` and ``satdifuser predict`` resize
native input by it (model folders saved without it load as 1.0). ``raster_scale`` (a number, or
None for "uint8 / 255, floats as they are") maps raw file values to that range when predicting on
files; ``band_names`` documents the bands in order. ``spec`` (an
:class:`~satdifuser.model.inputs.InputSpec` config) makes the model take multispectral, raw-scaled
or z-scored inputs and map them to the backbone's RGB in [0, 1] itself."""


class SatDiFuserModel(nn.Module):
    """Frozen feature extractor -> standardiser -> fusion -> head, with its description.

    Args:
        extractor: The frozen extractor (``FeatureExtractor``; any module with ``feature_info``).
        fusion: The fuser (built from ``extractor.feature_info``).
        head: The head (built from ``fusion.out_channels``).
        task_type: ``classification``, ``multilabel`` or ``segmentation``.
        class_names: One name per class.
        standardizer: Fitted :class:`ChannelStandardizer`, or None for none.
        input_contract: See :data:`DEFAULT_INPUT` (missing keys take the defaults).
        ignore_index: Label value ignored in training (segmentation), recorded for users.
        card: Free-form facts for the model card (data, metrics, command).
        resample: Set ``input_contract["resample"]`` (see :data:`DEFAULT_INPUT`), in (0, 4].
        class_colors: One ``[r, g, b]`` (0..255) per class for colour outputs, or None for the
            default palette (see :mod:`satdifuser.model.colors`).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        extractor: nn.Module,
        fusion: BaseFusion,
        head: nn.Module,
        task_type: str,
        class_names: Sequence[str],
        standardizer: ChannelStandardizer | None = None,
        input_contract: dict[str, Any] | None = None,
        ignore_index: int | None = None,
        card: dict[str, Any] | None = None,
        resample: float | None = None,
        class_colors: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if task_type not in TASK_TYPES:
            raise ConfigError(f"task_type={task_type!r} is not one of {', '.join(TASK_TYPES)}")
        info = list(getattr(extractor, "feature_info", []) or [])
        if not info:
            raise ConfigError(
                f"extractor {type(extractor).__name__} has no feature_info; pass a "
                "satdifuser FeatureExtractor"
            )
        self._extractor = (extractor,)  # frozen, not a registered submodule
        self.feature_info: list[FeatureInfo] = info
        self.standardizer = standardizer or ChannelStandardizer(
            [f.channels for f in info], enabled=False
        )
        self.fusion = fusion
        self.head = head
        self.task_type = task_type
        self.class_names = [str(c) for c in class_names]
        self.class_colors: list[RGB] | None = check_class_colors(class_colors, len(class_names))
        self.ignore_index = ignore_index
        self.input_contract = {**DEFAULT_INPUT, **(input_contract or {})}
        if resample is not None or self.input_contract.get("resample") is None:
            self.input_contract["resample"] = 1.0 if resample is None else resample
        self.input_contract["resample"] = check_resample(self.input_contract["resample"])
        spec = self.input_contract.get("spec")
        self.input_adapter = InputAdapter(spec) if spec else None
        if self.input_adapter is not None:
            self.input_contract["spec"] = self.input_adapter.spec.to_config()
            self.input_contract["channels"] = self.input_adapter.spec.channels
        self.card = dict(card or {})

    # ------------------------------------------------------------------ parts
    @property
    def extractor(self) -> nn.Module:
        """The frozen feature extractor."""
        return self._extractor[0]

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """Bands the model takes."""
        return int(self.input_contract["channels"])

    @property
    def input_spec(self) -> InputSpec | None:
        """What :meth:`forward` takes (bands, value kind, scaling), or None: RGB in [0, 1]."""
        return None if self.input_adapter is None else self.input_adapter.spec

    @property
    def resample(self) -> float:
        """Factor native pixels are resized by before the model (``input.resample``)."""
        return float(self.input_contract["resample"])

    @property
    def tile_size(self) -> int:
        """Window side for scenes: the recorded training window (``input.window``), else the
        extractor's square working size (64 when it has none)."""
        window = self.input_contract.get("window")
        if window:
            return int(window)
        spec = getattr(self.extractor, "spec", None)
        size = getattr(spec, "image_size", None) or getattr(self.extractor, "image_size", None)
        return int(size or 64)

    def _apply(self, fn: Any, recurse: bool = True) -> SatDiFuserModel:  # .to() moves it too
        super()._apply(fn, recurse)
        self.extractor._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> SatDiFuserModel:
        """Fusion and head follow ``mode``; the extractor stays in eval mode."""
        super().train(mode)
        self.extractor.eval()
        return self

    # ---------------------------------------------------------------- forward
    def forward_features(self, maps: Sequence[Tensor], output_size: Any = None) -> Tensor:
        """Logits from extracted (or cached) maps in ``feature_info`` order."""
        fused = self.fusion(self.standardizer(maps))
        return self.head(fused, output_size=output_size)

    def adapt_input(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in the input contract -> what the extractor takes.

        With an input spec, its adapter checks them and maps them to RGB ``(B, 3, H, W)`` in
        [0, 1] (bands picked or mixed, raw / z-scored values scaled); without one they pass as
        they are. :meth:`forward` and ``satdifuser embed`` both go through here.

        Raises:
            InputShapeError: another band count than the spec names.
            InputError: a dtype, range or non-finite value the spec does not allow.
        """
        return images if self.input_adapter is None else self.input_adapter(images)

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> Tensor:
        """Logits for images ``(B, C, H, W)`` in the input contract's range."""
        images = self.adapt_input(images)
        with torch.no_grad():
            maps = list(self.extractor(images, metadata))
        size = tuple(images.shape[-2:]) if self.task_type == "segmentation" else None
        return self.forward_features(maps, output_size=size)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Softmax over classes (dim 1), or sigmoid for multi-label."""
        if self.task_type == "multilabel":
            return torch.sigmoid(logits)
        return torch.softmax(logits.float(), dim=1)

    @torch.no_grad()
    def predict_proba(
        self, images: Tensor, metadata: Tensor | None = None, *, resample: float | None = None
    ) -> Tensor:
        """Class probabilities: ``(B, K)``, or ``(B, K, H, W)`` for segmentation.

        ``images`` are native pixels: they are resized by :attr:`resample` (or the ``resample``
        given here; 1.0 for images already at the model's scale) before the model, and
        segmentation probabilities are resized back to ``(H, W)``.
        """
        self.eval()
        factor = self.resample if resample is None else check_resample(resample)
        images = self._check_images(images)
        size = tuple(images.shape[-2:])
        if factor != 1.0:
            images = resize_images(images, resampled_size(*size, factor))
        probs = self.probabilities(self(images.to(self._device()), metadata))
        if self.task_type == "segmentation" and tuple(probs.shape[-2:]) != size:
            probs = resize_probabilities(probs, size)  # type: ignore[arg-type]
        return probs.cpu()

    @torch.no_grad()
    def predict(
        self, images: Tensor, metadata: Tensor | None = None, *, resample: float | None = None
    ) -> Tensor:
        """Hard predictions: class ids ``(B,)`` / ``(B, H, W)``; 0/1 ``(B, K)`` for multi-label."""
        probs = self.predict_proba(images, metadata, resample=resample)
        if self.task_type == "multilabel":
            return (probs >= 0.5).long()
        return probs.argmax(1)

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def _check_images(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise InputError(
                f"predict expects images (B, {self.in_channels}, H, W), got {shape}; add a batch "
                "dimension with images[None]"
            )
        if images.shape[1] != self.in_channels:
            raise InputError(
                f"images have {images.shape[1]} bands but the model was trained on "
                f"{self.in_channels} ({self.input_contract.get('band_names') or 'RGB'}); select "
                "those bands"
            )
        return images if self.input_adapter is not None else images.float()

    # ----------------------------------------------------------- raw rasters
    def prepare_raster(self, array: np.ndarray, source: str = "input") -> Tensor:
        """Map a raw ``(C, H, W)`` array read from a file to what :meth:`forward` takes.

        See :func:`satdifuser.model.raster_input.prepare_raster` for the rules.

        Raises:
            InputError: wrong band count, non-finite values, or a dtype/range the model was not
                trained for (naming ``source``).
        """
        return prepare_raster(array, self.input_contract, self.input_adapter, source)

    # ---------------------------------------------------------------- config
    def config(self) -> dict[str, Any]:
        """Everything but the tensors: rebuilds the model with :meth:`from_config`."""
        ex = self.extractor
        bb = getattr(ex, "backbone", None)
        weights = getattr(bb, "weights_id", None)
        ex_config = ex.config() if callable(getattr(ex, "config", None)) else None
        return {
            "task_type": self.task_type,
            "class_names": list(self.class_names),
            "class_colors": [list(c) for c in self.class_colors] if self.class_colors else None,
            "ignore_index": self.ignore_index,
            "input": dict(self.input_contract),
            "features": {
                "extractor": type(ex).__name__,
                "backbone": getattr(ex, "backbone_source", getattr(bb, "name", None)),
                "backbone_weights_id": weights() if callable(weights) else None,
                "args": ex_config,
                "identity": ex.identity() if callable(getattr(ex, "identity", None)) else None,
                "feature_info": [
                    [f.tap, f.timestep, f.channels, f.reduction] for f in self.feature_info
                ],
            },
            "standardize": bool(self.standardizer.enabled),
            "fusion": {
                "name": FUSIONS.name_of(type(self.fusion)),
                "args": dict(getattr(self.fusion, "init_config", {})),
            },
            "head": {
                "name": HEADS.name_of(type(self.head)),
                "args": dict(getattr(self.head, "init_config", {})),
            },
        }

    def save_pretrained(self, directory: str | Path, card: dict[str, Any] | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``README.md`` into ``directory``."""
        from satdifuser.model.pretrained import save_model

        return save_model(self, directory, card)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        backbone: Any = None,
        extractor: nn.Module | None = None,
        device: str | torch.device | None = None,
    ) -> SatDiFuserModel:
        """Load a saved model; the backbone weights must match the saved weights id.

        Args:
            directory: Folder written by :meth:`save_pretrained`.
            backbone: Override where the backbone comes from (a name, folder or
                ``DiffusionBackbone``); its weights must still be the saved ones.
            extractor: A ready extractor instead (its identity must match).
            device: Where to put the model.

        Raises:
            CheckpointError: missing/damaged files, other backbone weights, or a feature layout
                that differs from the saved one.
        """
        from satdifuser.model.pretrained import load_model

        return load_model(directory, backbone=backbone, extractor=extractor, device=device)


__all__ = ["DEFAULT_INPUT", "TASK_TYPES", "SatDiFuserModel"]
