"""Trainable parameter counts for the SD 2.1 default tap set (method.md sections 5 and 6.5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion import BottleneckBlock, create_fusion


def sd21_feature_info(timesteps: tuple[int, ...] = (21, 61, 161)) -> list[FeatureInfo]:
    """21 decoder taps of SD 2.1 at 256 px: up_blocks[0] conv2 x3, then attn1 x3 + conv2 x3."""
    taps = [(f"up_blocks.0.resnets.{i}.conv2", 1280, 64) for i in range(3)]
    for block, channels, reduction in [(1, 1280, 32), (2, 640, 16), (3, 320, 8)]:
        taps += [
            (f"up_blocks.{block}.attentions.{i}.transformer_blocks.0.attn1", channels, reduction)
            for i in range(3)
        ]
        taps += [(f"up_blocks.{block}.resnets.{i}.conv2", channels, reduction) for i in range(3)]
    return [FeatureInfo(tap, t, c, r) for t in timesteps for tap, c, r in taps]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("channels", "expected"), [(320, 275_328), (640, 428_928), (1280, 736_128)]
)
def test_projection_block(channels: int, expected: int) -> None:
    with torch.device("meta"):
        assert count(BottleneckBlock(channels)) == expected == 480 * channels + 121_728


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("global_weighted", 10_850_751),
        ("local_weighted", 10_874_943),
        ("moe", 71_494_692),
        ("concat", 19_909_632),  # our baseline: sum_s (3 * C_s * 384 + 768), not in method.md
    ],
)
def test_fuser_totals_match_method_md(name: str, expected: int) -> None:
    info = sd21_feature_info()
    assert len(info) == 63
    with torch.device("meta"):
        fusion = create_fusion(name, info)
    assert fusion.out_reductions == [8, 16, 32, 64]
    assert fusion.out_channels == [384] * 4
    assert count(fusion) == expected


def test_component_counts() -> None:
    with torch.device("meta"):
        gw = create_fusion("global_weighted", sd21_feature_info())
        lw = create_fusion("local_weighted", sd21_feature_info())
        moe = create_fusion("moe", sd21_feature_info())
    assert count(gw.projections) == 10_850_688
    assert gw.mixing_logits.numel() == 63
    assert count(lw.gates) == 24_255
    assert moe.scale_channels == [1920, 3840, 7680, 3840]
    assert count(moe.experts) == 70_250_496
    assert count(moe.routers) == 1_244_192
    assert moe.temperatures.numel() == 4
