"""Task losses selected by name (``loss:`` in the task config).

Single-label and segmentation: ``ce`` (cross-entropy, the paper's), ``focal``, ``dice``,
``ce+dice``. Multi-label: ``bce`` (the paper's), ``focal``. All honour ``ignore_index`` where it
applies and optional per-class weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError

MulticlassLoss = Literal["ce", "focal", "dice", "ce+dice"]
MultilabelLoss = Literal["bce", "focal"]


class MulticlassLossFn(nn.Module):
    """Loss on logits (B, K[, H, W]) and integer targets (B[, H, W]).

    Args:
        name: ``ce``, ``focal`` (gamma 2), ``dice`` (soft Dice over classes present in the batch)
            or ``ce+dice`` (sum).
        num_classes: K.
        ignore_index: Target value excluded from the loss.
        class_weights: K weights for ``ce``/``focal``, or None.
        label_smoothing: Cross-entropy label smoothing.
    """

    def __init__(
        self,
        name: MulticlassLoss,
        num_classes: int,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if name not in ("ce", "focal", "dice", "ce+dice"):
            raise ConfigError(
                f"loss={name!r} is not a multi-class loss; use ce, focal, dice, ce+dice"
            )
        if class_weights is not None and len(class_weights) != num_classes:
            raise ConfigError(
                f"class_weights has {len(class_weights)} entries but num_classes={num_classes}; "
                "give one weight per class"
            )
        self.name = name
        self.num_classes = num_classes
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.label_smoothing = label_smoothing
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss."""
        logits = logits.float()
        if self.name in ("ce", "ce+dice"):
            loss = F.cross_entropy(
                logits,
                target,
                weight=self.weight,
                ignore_index=self.ignore_index,
                label_smoothing=self.label_smoothing,
            )
            if self.name == "ce":
                return loss
            return loss + self._dice(logits, target)
        if self.name == "dice":
            return self._dice(logits, target)
        ce = F.cross_entropy(
            logits, target, weight=self.weight, ignore_index=self.ignore_index, reduction="none"
        )
        valid = target != self.ignore_index
        pt = torch.exp(
            -F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        )
        focal = (1 - pt) ** 2 * ce
        return focal[valid].mean() if bool(valid.any()) else focal.sum() * 0

    def _dice(self, logits: Tensor, target: Tensor) -> Tensor:
        valid = target != self.ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target))
        prob = logits.softmax(1)
        onehot = F.one_hot(safe, self.num_classes).movedim(-1, 1).to(prob.dtype)
        mask = valid.unsqueeze(1).to(prob.dtype)
        dims = [0, *range(2, prob.ndim)]
        inter = (prob * onehot * mask).sum(dims)
        denom = ((prob + onehot) * mask).sum(dims)
        present = onehot.mul(mask).sum(dims) > 0
        dice = 1 - (2 * inter + 1.0) / (denom + 1.0)
        return dice[present].mean() if bool(present.any()) else dice.sum() * 0


class MultilabelLossFn(nn.Module):
    """Loss on logits (B, K) and multi-hot targets (B, K).

    Args:
        name: ``bce`` or ``focal`` (sigmoid focal, gamma 2).
        num_labels: K.
        class_weights: K positive-class weights (``pos_weight``) or None.
    """

    def __init__(
        self, name: MultilabelLoss, num_labels: int, class_weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if name not in ("bce", "focal"):
            raise ConfigError(f"loss={name!r} is not a multi-label loss; use bce or focal")
        if class_weights is not None and len(class_weights) != num_labels:
            raise ConfigError(
                f"class_weights has {len(class_weights)} entries but num_classes={num_labels}; "
                "give one weight per label"
            )
        self.name = name
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("pos_weight", weight, persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss."""
        logits, target = logits.float(), target.float()
        bce = F.binary_cross_entropy_with_logits(
            logits, target, pos_weight=self.pos_weight, reduction="none"
        )
        if self.name == "bce":
            return bce.mean()
        p = torch.sigmoid(logits)
        pt = p * target + (1 - p) * (1 - target)
        return ((1 - pt) ** 2 * bce).mean()


__all__ = ["MulticlassLoss", "MulticlassLossFn", "MultilabelLoss", "MultilabelLossFn"]
