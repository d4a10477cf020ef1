"""What ``predict`` needs from a model: a small structural protocol, checked once up front.

Any object with these members works (``satdifuser.model.SatDiFuserModel`` is one); tests use tiny
fakes. ``prepare_raster`` is optional: without it
:func:`~satdifuser.predict.prepare.default_prepare_raster` maps raw pixels to [0, 1].
``input_spec`` is optional too (absent or None: the model takes [0, 1]); a spec of ``kind='raw'``
or ``'zscore'`` scales raw pixels in the model itself, so ``scale`` may not divide them first
(see :func:`~satdifuser.predict.prepare.make_preparer`).

``resample`` is optional too (absent: 1.0): the factor native pixels were resized by in training.
``predict`` then reads native windows of ``round(tile_size / resample)`` pixels, resizes them to
``tile_size`` itself and calls the model at its own scale, ``predict_proba(x, resample=1.0)``: a
model that records a factor other than 1 resamples in ``predict_proba`` and must take that
keyword to skip it (see :func:`predict_at_model_scale`). ``class_colors`` is optional as well
(absent or None: the default palette): one ``[r, g, b]`` per class for colour outputs.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from torch import Tensor

from satdifuser.errors import ConfigError
from satdifuser.model.colors import RGB, check_class_colors
from satdifuser.model.resample import check_resample

TaskType = Literal["classification", "multilabel", "segmentation"]
TASK_TYPES: tuple[str, ...] = ("classification", "multilabel", "segmentation")


@runtime_checkable
class PredictModel(Protocol):
    """The members ``predict`` uses.

    Attributes:
        task_type: ``classification``, ``multilabel`` or ``segmentation``.
        class_names: The K class names, in output order.
        in_channels: Bands the model takes (3 for RGB).
        tile_size: Square input size the model was trained on (segmentation windows).
    """

    task_type: str
    class_names: list[str]
    in_channels: int
    tile_size: int

    def predict_proba(self, images: Tensor) -> Tensor:
        """(B, C, H, W) float32 in [0, 1] -> (B, K) or (B, K, H, W) probabilities."""
        ...


class RasterPreparer(Protocol):
    """The optional ``model.prepare_raster(array, source)`` member."""

    def __call__(self, array: np.ndarray, source: str) -> Tensor:
        """Raw (C, H, W) pixels -> (C, H, W) in the model's input range and dtype.

        Float in [0, 1] for a model without an input spec; with one, what its adapter takes:
        raw values (float32, or uint8 where the spec scales uint8 by 255), z-scores for
        ``kind='zscore'``. Raises InputError naming ``source`` when the pixels do not fit.
        """
        ...


def check_model(model: object) -> PredictModel:
    """Check ``model`` has the members ``predict`` uses and sane values; return it typed.

    Raises:
        ConfigError: A member is missing or has an invalid value.
    """
    missing = [
        name
        for name in ("task_type", "class_names", "in_channels", "tile_size", "predict_proba")
        if not hasattr(model, name)
    ]
    if missing:
        raise ConfigError(
            f"{type(model).__name__} lacks {', '.join(missing)}; predict needs a model with "
            "task_type, class_names, in_channels, tile_size and predict_proba "
            "(load one with SatDiFuserModel.from_pretrained)"
        )
    m: PredictModel = model  # type: ignore[assignment]
    if m.task_type not in TASK_TYPES:
        raise ConfigError(
            f"model.task_type={m.task_type!r}; expected one of {', '.join(TASK_TYPES)}"
        )
    if len(m.class_names) < 1:
        raise ConfigError("model.class_names is empty; the model must name its classes")
    if int(m.in_channels) < 1 or int(m.tile_size) < 1:
        raise ConfigError(
            f"model.in_channels={m.in_channels} and model.tile_size={m.tile_size} must be >= 1"
        )
    return m


def model_resample(model: object, override: float | None = None) -> float:
    """The factor to apply: ``override`` when given, else ``model.resample``, else 1.0.

    Raises:
        ConfigError: The factor is not a number in (0, 4].
    """
    if override is not None:
        return check_resample(override)
    return check_resample(getattr(model, "resample", 1.0), "model.resample")


def model_class_colors(model: object) -> list[RGB] | None:
    """``model.class_colors`` checked (one RGB per class), or None for the default palette.

    Raises:
        ConfigError: Not one ``[r, g, b]`` of integers in 0..255 per class.
    """
    names = getattr(model, "class_names", [])
    return check_class_colors(getattr(model, "class_colors", None), len(names))


def predict_at_model_scale(model: Any, images: Tensor) -> Tensor:
    """``model.predict_proba`` on images already resized to the model's scale (no second resize).

    Models that record ``resample`` other than 1 resize in ``predict_proba``; they are called with
    ``resample=1.0``. Every other model is called as ``predict_proba(images)``.
    """
    if model_resample(model) != 1.0:
        return model.predict_proba(images, resample=1.0)
    return model.predict_proba(images)


__all__ = ["TASK_TYPES", "PredictModel", "RasterPreparer", "TaskType", "check_model",
           "model_class_colors", "model_resample", "predict_at_model_scale"]  # fmt: skip
