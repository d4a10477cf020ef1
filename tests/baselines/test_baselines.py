from __future__ import annotations

import pytest
import torch

from satdifuser.baselines import SmallCNN

pytest.importorskip("efficientnet_lite_pytorch", reason="the [efficientnet] extra is not installed")


def test_efficientnet_feature_info_matches_outputs() -> None:
    from satdifuser.baselines import EfficientNetLiteExtractor

    ext = EfficientNetLiteExtractor(weights="random", image_size=64)
    out = ext(torch.rand(2, 3, 32, 32))
    assert len(out) == len(ext.feature_info)
    for fmap, info in zip(out, ext.feature_info, strict=True):
        assert fmap.shape == (2, info.channels, 64 // info.reduction, 64 // info.reduction)
    assert not any(p.requires_grad for p in ext.parameters())


def test_efficientnet_imagenet_weights_differ_from_random() -> None:
    from satdifuser.baselines import EfficientNetLiteExtractor

    x = torch.rand(1, 3, 32, 32)
    a = EfficientNetLiteExtractor(weights="imagenet", image_size=64)(x)[-1]
    b = EfficientNetLiteExtractor(weights="random", image_size=64)(x)[-1]
    assert not torch.allclose(a, b)


def test_efficientnet_stays_in_eval_mode_when_trained() -> None:
    from satdifuser.baselines import EfficientNetLiteExtractor

    ext = EfficientNetLiteExtractor(weights="random", image_size=64).train()
    assert not ext.net.training


def test_small_cnn_outputs_logits_and_learns() -> None:
    net = SmallCNN(num_classes=3, width=8)
    x, y = torch.rand(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert net(x).shape == (6, 3)
    assert loss.item() < first
