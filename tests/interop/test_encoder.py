from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion import GlobalWeightedFusion, MoEFusion
from satdifuser.heads import create_head
from satdifuser.interop import SatDiFuserEncoder

TAPS = [("up_blocks.0.resnets.0.conv2", 16, 8), ("up_blocks.1.resnets.0.conv2", 8, 4)]


class FakeExtractor(nn.Module):
    """Stands in for FeatureExtractor: a frozen-able conv, pooled to each tap's reduction."""

    def __init__(self, timesteps: tuple[int, ...] = (21, 161)) -> None:
        super().__init__()
        self.feature_info = [FeatureInfo(tap, t, c, r) for t in timesteps for tap, c, r in TAPS]
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.calls: list[Tensor | None] = []

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        self.calls.append(metadata)
        y = self.conv(images)
        return [
            F.avg_pool2d(y[:, : f.channels], f.reduction) * (1 + f.timestep / 100)
            for f in self.feature_info
        ]


SMALL = {"projection_dim": 16, "bottleneck_dim": 8}


@pytest.mark.parametrize("timesteps", [(21,), (21, 61, 161)])
def test_encoder_contract_and_shapes(timesteps: tuple[int, ...]) -> None:
    encoder = SatDiFuserEncoder(FakeExtractor(timesteps), "local_weighted", SMALL)
    assert encoder.out_channels == [16, 16]
    assert encoder.out_reductions == [4, 8]
    maps = encoder(torch.rand(1, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(1, 16, 8, 8), (1, 16, 4, 4)]
    head = create_head("upernet", encoder.out_channels, 3, channels=16)
    assert head(maps, output_size=(32, 32)).shape == (1, 3, 32, 32)


def test_only_the_fuser_is_trainable() -> None:
    extractor = FakeExtractor()
    encoder = SatDiFuserEncoder(extractor, GlobalWeightedFusion(extractor.feature_info, **SMALL))
    encoder.train()
    assert encoder.training and encoder.fusion.training and not extractor.training
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("fusion.") for n in trainable)
    sum(m.mean() for m in encoder(torch.rand(2, 3, 32, 32))).backward()
    assert extractor.conv.weight.grad is None
    assert all(p.grad is not None for p in encoder.fusion.parameters())


def test_metadata_is_passed_through_and_aux_loss_exposed() -> None:
    extractor = FakeExtractor()
    encoder = SatDiFuserEncoder(extractor, "moe", {**SMALL, "num_experts": 2, "top_k": 1})
    assert isinstance(encoder.fusion, MoEFusion)
    meta = torch.zeros(2, 7)
    encoder.train()
    encoder(torch.rand(2, 3, 32, 32), meta)
    assert extractor.calls[-1] is meta
    assert encoder.aux_loss().requires_grad
    encoder(torch.rand(2, 3, 32, 32))
    assert extractor.calls[-1] is None


def test_plain_callable_extractor() -> None:
    module = FakeExtractor()

    class Plain:
        feature_info = module.feature_info

        def __call__(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
            return module(images)

    encoder = SatDiFuserEncoder(Plain(), "concat", {"projection_dim": 8})
    assert "extractor" not in dict(encoder.named_children())
    assert [m.shape[1] for m in encoder(torch.rand(1, 3, 16, 16))] == [8, 8]


def test_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="feature_info"):
        SatDiFuserEncoder(nn.Identity(), "global_weighted")
    other = GlobalWeightedFusion(FakeExtractor((5,)).feature_info, **SMALL)
    with pytest.raises(ConfigError, match="another feature_info"):
        SatDiFuserEncoder(FakeExtractor(), other)
    with pytest.raises(ConfigError, match="fusion_kwargs"):
        fusion = GlobalWeightedFusion(FakeExtractor().feature_info)
        SatDiFuserEncoder(FakeExtractor(), fusion, SMALL)
    with pytest.raises(ConfigError, match="takes no argument"):
        SatDiFuserEncoder(FakeExtractor(), "global_weighted", {"top_k": 1})
