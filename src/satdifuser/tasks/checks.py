"""Checks of the data against a task's config: class count, task type, ignore_index, labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


__all__ = ["check_datamodule", "check_labels"]
