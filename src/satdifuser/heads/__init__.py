"""Task heads on a list of feature maps (finest first); they take only channel lists::

    head = create_head("upernet", fusion.out_channels, num_classes=7)
    logits = head(fusion(features), output_size=mask.shape[-2:])
"""

from __future__ import annotations

from satdifuser.heads.base import HEADS, BaseHead, create_head, resize_logits
from satdifuser.heads.conv_norm import ConvNormAct, SafeBatchNorm2d
from satdifuser.heads.fpn import FPNHead
from satdifuser.heads.linear import LinearHead, MultiLabelLinearHead
from satdifuser.heads.upernet import UPerNetHead

__all__ = [
    "HEADS",
    "BaseHead",
    "ConvNormAct",
    "FPNHead",
    "LinearHead",
    "MultiLabelLinearHead",
    "SafeBatchNorm2d",
    "UPerNetHead",
    "create_head",
    "resize_logits",
]
