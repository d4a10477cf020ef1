from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputShapeError, UnknownNameError
from satdifuser.heads import (
    HEADS,
    FPNHead,
    LinearHead,
    MultiLabelLinearHead,
    SafeBatchNorm2d,
    UPerNetHead,
    create_head,
)

SEG = ["upernet", "fpn"]
CLS = ["linear", "multilabel_linear"]


def pyramid(batch: int, channels: list[int], finest: int = 16) -> list[Tensor]:
    """Maps halving in size from ``finest``, finest first (the fusers' output order)."""
    return [torch.randn(batch, c, finest >> i, finest >> i) for i, c in enumerate(channels)]


def small(name: str) -> dict[str, object]:
    return {"channels": 32} if name in SEG else {}


def test_registry_names_and_errors() -> None:
    assert HEADS.names() == sorted(CLS + SEG)
    with pytest.raises(UnknownNameError, match="did you mean 'upernet'"):
        create_head("uppernet", [8], 2)
    with pytest.raises(ConfigError, match="takes no argument 'pool_scales'"):
        create_head("fpn", [8], 2, pool_scales=(1, 2))
    with pytest.raises(ConfigError, match="non-empty"):
        LinearHead([], 3)
    with pytest.raises(ConfigError, match="num_classes=0"):
        UPerNetHead([8], 0)


@pytest.mark.parametrize("name", CLS)
@pytest.mark.parametrize("num_scales", [1, 4])
@pytest.mark.parametrize("batch", [1, 3])
def test_classification_shapes(name: str, num_scales: int, batch: int) -> None:
    head = create_head(name, [16] * num_scales, 5)
    head.train()
    out = head(pyramid(batch, [16] * num_scales), output_size=(99, 99))
    assert out.shape == (batch, 5)
    assert head.multilabel == (name == "multilabel_linear")


def test_linear_head_matches_the_reference_computation() -> None:
    head = LinearHead([8, 8, 8], 4).eval()
    feats = pyramid(2, [8, 8, 8])
    resized = [F.interpolate(f, size=(16, 16), mode="bilinear", align_corners=False) for f in feats]
    summed = sum(resized)
    expected = head.classifier(summed.mean(dim=(2, 3)))
    assert torch.allclose(head(feats), expected, atol=1e-6)
    assert sum(p.numel() for p in LinearHead([384] * 4, 10).parameters()) == 385 * 10


def test_linear_head_with_unequal_channels() -> None:
    with pytest.raises(ConfigError, match="merge='concat'"):
        LinearHead([8, 16], 3)
    head = MultiLabelLinearHead([8, 16], 3, merge="concat", dropout=0.2)
    assert head.classifier.in_features == 24
    assert head(pyramid(1, [8, 16])).shape == (1, 3)


@pytest.mark.parametrize("name", SEG)
@pytest.mark.parametrize("num_scales", [1, 2, 4])
def test_segmentation_shapes(name: str, num_scales: int) -> None:
    channels = [24] * (num_scales - 1) + [16]
    head = create_head(name, channels, 3, **small(name)).eval()
    with torch.no_grad():
        assert head(pyramid(2, channels)).shape == (2, 3, 16, 16)  # finest map size
        assert head(pyramid(2, channels), output_size=(50, 37)).shape == (2, 3, 50, 37)


@pytest.mark.parametrize("name", SEG)
@pytest.mark.parametrize("norm", ["batch", "group"])
def test_batch_of_one_trains_with_1x1_coarsest_map(name: str, norm: str) -> None:
    channels = [16, 16, 16, 16]
    head = create_head(name, channels, 2, norm=norm, **small(name)).train()
    feats = pyramid(1, channels, finest=8)  # coarsest map is 1x1
    assert feats[-1].shape[-2:] == (1, 1)
    out = head(feats, output_size=(20, 20))
    assert out.shape == (1, 2, 20, 20)
    F.cross_entropy(out, torch.zeros(1, 20, 20, dtype=torch.long)).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert missing == []
    if norm == "group":  # 32 channels: 16 groups of 2, not 32 groups of 1
        assert all(m.num_groups == 16 for m in head.modules() if isinstance(m, nn.GroupNorm))


def test_safe_batchnorm_falls_back_only_for_single_values() -> None:
    bn = SafeBatchNorm2d(4).train()
    x = torch.randn(1, 4, 1, 1)
    assert torch.allclose(bn(x), x / torch.sqrt(torch.tensor(1 + bn.eps)), atol=1e-6)
    assert torch.equal(bn.running_mean, torch.zeros(4))  # not updated by the fallback
    bn(torch.randn(2, 4, 1, 1) + 3.0)
    assert bn.running_mean.mean() > 0.1  # normal batch statistics otherwise
    with pytest.raises(ValueError, match="Expected more than 1 value"):
        nn.BatchNorm2d(4).train()(x)  # what plain BatchNorm does, hence the class


def test_upernet_parameter_count_matches_method_md() -> None:
    head = UPerNetHead([384] * 4, 2)  # on CPU: the first meta-device normal_ costs seconds
    total = sum(p.numel() for p in head.parameters())
    seg = sum(p.numel() for p in head.conv_seg.parameters())
    assert seg == 512 * 2 + 2
    assert total - seg == 29_116_416
    assert sum(p.numel() for p in FPNHead([384] * 4, 2).parameters()) < total / 20


@pytest.mark.parametrize("name", CLS + SEG)
def test_bad_inputs(name: str) -> None:
    head = create_head(name, [8, 8], 2, **small(name))
    with pytest.raises(InputShapeError, match="got 1 maps"):
        head(pyramid(1, [8]))
    with pytest.raises(InputShapeError, match="expected \\(1, 8, H, W\\)"):
        head(pyramid(1, [8, 5]))
    with pytest.raises(InputShapeError, match="list"):
        head(torch.randn(1, 8, 4, 4))
    if name in SEG:
        with pytest.raises(InputShapeError, match="output_size"):
            head(pyramid(1, [8, 8]), output_size=(0, 4))
