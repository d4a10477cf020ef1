"""Fusion of multi-timestep, multi-tap diffusion features into a multi-scale pyramid.

Every fuser takes the extractor's ``feature_info`` and returns one map per scale (finest first),
with ``out_channels`` and ``out_reductions`` known at construction. Build by class or by name::

    fusion = create_fusion("global_weighted", extractor.feature_info)
    pyramid = fusion(extractor(images))
"""

from __future__ import annotations

from satdifuser.fusion.base import FUSIONS, BaseFusion, create_fusion, short_tap_label
from satdifuser.fusion.concat import ConcatFusion
from satdifuser.fusion.global_weighted import GlobalWeightedFusion
from satdifuser.fusion.local_weighted import LocalWeightedFusion
from satdifuser.fusion.moe import MoEFusion, load_balancing_loss
from satdifuser.fusion.projection import BottleneckBlock, group_count

__all__ = [
    "FUSIONS",
    "BaseFusion",
    "BottleneckBlock",
    "ConcatFusion",
    "GlobalWeightedFusion",
    "LocalWeightedFusion",
    "MoEFusion",
    "create_fusion",
    "group_count",
    "load_balancing_loss",
    "short_tap_label",
]
