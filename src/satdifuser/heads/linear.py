"""Linear classification heads: merge the scales, global average pool, one ``Linear``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.heads.base import HEADS, BaseHead


@HEADS.register("linear")
class LinearHead(BaseHead):
    """Single-label classifier of the reference (method.md section 7).

    ``merge="sum"`` (reference): every map is bilinearly resized (``align_corners=False``) to the
    largest map's size and summed, then global-average pooled and fed to ``Linear(C, K)``
    (``(C + 1)·K`` parameters). Summing needs equal channel counts, which all our fusers give.
    ``merge="concat"`` handles unequal channels: each map is pooled on its own and the pooled
    vectors are concatenated (``Linear(ΣC, K)``); no resizing is needed then.

    Args:
        in_channels: Channels of each input map, finest first.
        num_classes: Number of classes K.
        merge: ``sum`` or ``concat`` (see above).
        dropout: Dropout before the ``Linear`` (0 = none, as in the reference).

    Raises:
        ConfigError: ``merge="sum"`` with unequal channel counts.
    """

    multilabel = False
    """Logits are for a softmax/cross-entropy over K classes."""

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        merge: Literal["sum", "concat"] = "sum",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels, num_classes)
        if merge == "sum" and len(set(self.in_channels)) != 1:
            raise ConfigError(
                f"{type(self).__name__} merge='sum' needs equal channels, got in_channels="
                f"{self.in_channels}; use merge='concat' or a fuser with equal out_channels"
            )
        if merge not in ("sum", "concat"):
            raise ConfigError(f"{type(self).__name__} merge={merge!r}; expected 'sum' or 'concat'")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{type(self).__name__} dropout={dropout} must be in [0, 1)")
        self.merge = merge
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        width = self.in_channels[0] if merge == "sum" else sum(self.in_channels)
        self.classifier = nn.Linear(width, self.num_classes)

    def pooled(self, features: list[Tensor]) -> Tensor:
        """The ``(B, C)`` vector the classifier sees (handy for embeddings)."""
        feats = self._check(features)
        if self.merge == "concat":
            return torch.cat([f.mean(dim=(2, 3)) for f in feats], dim=1)
        size = max((f.shape[-2:] for f in feats), key=lambda s: s[0] * s[1])
        total = feats[0].new_zeros(())
        for f in feats:
            if f.shape[-2:] != size:
                f = F.interpolate(f, size=tuple(size), mode="bilinear", align_corners=False)
            total = total + f
        return total.mean(dim=(2, 3))

    def forward(
        self, features: list[Tensor], output_size: tuple[int, int] | None = None
    ) -> Tensor:
        """Logits ``(B, K)``; ``output_size`` is ignored (kept for one head signature)."""
        return self.classifier(self.dropout(self.pooled(features)))


@HEADS.register("multilabel_linear")
class MultiLabelLinearHead(LinearHead):
    """Multi-label variant of :class:`LinearHead` (same layers).

    Its ``(B, K)`` logits are independent per class: train with ``BCEWithLogitsLoss`` on multi-hot
    targets and predict ``sigmoid(logits) > 0.5`` (the reference's m-bigearthnet protocol).
    """

    multilabel = True
    """Logits are independent per class (sigmoid / BCE)."""


__all__ = ["LinearHead", "MultiLabelLinearHead"]
