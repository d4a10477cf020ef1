"""Checks of the data against a task's config: class count, task type, ignore_index, labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from satdifuser.errors import ConfigError, InputError

_TASK_TYPES = {
    "classification": "classification", "multiclass": "classification",
    "single_label": "classification", "binary": "classification",
    "multilabel": "multilabel", "multi-label": "multilabel", "multi_label": "multilabel",
    "segmentation": "segmentation", "semantic_segmentation": "segmentation", "seg": "segmentation",
}  # fmt: skip


def check_datamodule(
    dm: object, num_classes: int, task_type: str, ignore_index: int | None, task_name: str
) -> list[str] | None:
    """Compare a data module's ``num_classes``, ``task_type`` and ``ignore_index`` (when it
    exposes them; a wrapper's ``datamodule`` is looked into) with the task config.

    Returns:
        The data's class names when it has ``num_classes`` of them, else None.

    Raises:
        ConfigError: class count, task type or (segmentation) ignore value differ.
    """
    inner = getattr(dm, "datamodule", None)

    def get(attr: str) -> Any:
        return getattr(dm, attr, getattr(inner, attr, None))

    name = type(dm).__name__
    k = get("num_classes")
    if k is not None and int(k) != num_classes:
        raise ConfigError(
            f"model.init_args.num_classes={num_classes} but data {name} has {k} classes; "
            f"set model.init_args.num_classes: {k}"
        )
    kind = get("task_type")
    kind = _TASK_TYPES.get(str(kind).lower()) if kind is not None else None
    if kind is not None and kind != task_type:
        raise ConfigError(
            f"data {name} is a {kind} dataset but the model is {task_name} ({task_type}); pick "
            "the matching satdifuser.tasks class"
        )
    ii = get("ignore_index")
    if task_type == "segmentation" and ii is not None and ii != ignore_index:
        raise ConfigError(
            f"data {name} marks ignored pixels with {ii} but model.init_args.ignore_index="
            f"{ignore_index}; set model.init_args.ignore_index: {ii} (to ignore a class "
            "instead, map it to that value in the data, e.g. GeoBench ignore_nodata: true)"
        )
    classes = get("classes")
    if classes and len(classes) == num_classes:
        return [str(c) for c in classes]
    return None


def data_class_colors(dm: object, num_classes: int) -> list[tuple[int, int, int]] | None:
    """The data module's ``class_colors`` (RGB per class id, e.g. a mask colour table) when it
    has ``num_classes`` of them, else None (a wrapper's ``datamodule`` is looked into)."""
    inner = getattr(dm, "datamodule", None)
    colors = getattr(dm, "class_colors", None) or getattr(inner, "class_colors", None)
    if not colors or len(colors) != num_classes:
        return None
    return [(int(c[0]), int(c[1]), int(c[2])) for c in colors]


def check_labels(
    target: Tensor, batch: dict[str, Any], key: str, num_classes: int, ignore_index: int | None
) -> None:
    """Raise :class:`InputError` for label values outside ``[0, num_classes)`` (ignoring
    ``ignore_index``), naming the first offending sample id."""
    valid = target if ignore_index is None else target[target != ignore_index]
    if valid.numel() == 0:
        return
    lo, hi = int(valid.min()), int(valid.max())
    if lo >= 0 and hi < num_classes:
        return
    bad = lo if lo < 0 else hi
    where = ""
    ids = batch.get("id")
    if isinstance(ids, Sequence) and not isinstance(ids, str):
        flat = target.reshape(target.shape[0], -1)
        rows = (flat == bad).any(1).nonzero().flatten().tolist()
        if rows and rows[0] < len(ids):
            where = f" (sample {ids[rows[0]]!r})"
    ign = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
    raise InputError(
        f"batch {key} holds value {bad}{where} outside [0, {num_classes}){ign}; check "
        "model.init_args.num_classes / ignore_index against the dataset's labels"
    )


def batch_tensor(batch: dict[str, Any], key: str, needs: str) -> Tensor:
    """``batch[key]`` as a tensor.

    Args:
        batch: The batch dict.
        key: ``label`` or ``mask``.
        needs: What the data module must yield, for the error
            (``"a classification data module must yield label (B,) class ids"``).

    Raises:
        InputError: the batch has no ``key`` (the message lists the keys it has).
    """
    if key not in batch:
        raise InputError(f"batch has no {key!r} (keys: {sorted(batch)}); {needs}")
    return torch.as_tensor(batch[key])


def class_id_target(
    batch: dict[str, Any],
    key: str,
    shape: str,
    *,
    kind: str,
    task_name: str,
    num_classes: int,
    ignore_index: int | None,
    hint: str = "",
) -> Tensor:
    """``batch[key]`` as int64 class ids, range-checked with :func:`check_labels`.

    Args:
        batch: The batch dict.
        key: ``label`` (classification) or ``mask`` (segmentation).
        shape: The expected shape, ``"(B,)"`` or ``"(B, H, W)"``; a singleton dimension after
            ``B`` (``(B, 1)``, ``(B, 1, H, W)``) is dropped.
        kind: The task kind named in the missing-key error (``classification``).
        task_name: The task class named in the shape error.
        num_classes: Valid ids are ``[0, num_classes)``.
        ignore_index: Id left out of the range check, or None.
        hint: Text appended to the shape error.

    Raises:
        InputError: missing key, wrong shape or dtype, or ids out of range.
    """
    ndim = len(shape.strip("()").replace(",", " ").split())  # "(B,)" -> 1, "(B, H, W)" -> 3
    y = batch_tensor(batch, key, f"a {kind} data module must yield {key} {shape} class ids")
    if y.ndim == ndim + 1 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != ndim or y.dtype.is_floating_point:
        raise InputError(
            f"batch {key} has shape {tuple(y.shape)} dtype {y.dtype}; {task_name} needs "
            f"{shape} integer class ids{hint}"
        )
    y = y.long()
    check_labels(y, batch, key, num_classes, ignore_index)
    return y


__all__ = ["batch_tensor", "check_datamodule", "check_labels", "class_id_target",
           "data_class_colors"]  # fmt: skip
