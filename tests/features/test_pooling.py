"""PooledExtractor: pooled maps, adjusted feature_info, identity, cache and fusion on top."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from satdifuser.errors import ConfigError
from satdifuser.features import FeatureExtractor
from satdifuser.features.cache import build_feature_cache
from satdifuser.features.pooling import PooledExtractor, pool_map
from satdifuser.fusion import create_fusion


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    # tiny-pixel at 32 px: up_blocks.0 maps are 16 x 16, up_blocks.1 maps 32 x 32
    return FeatureExtractor("tiny-pixel", timesteps=[10, 50], taps=["up_blocks.*.resnets.1"])


class _Images(Dataset):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(1)
        self.images = torch.rand(n, 3, 32, 32, generator=g)
        self.ids = [f"img{i}" for i in range(n)]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.tensor(i % 2), "id": self.ids[i]}


def test_pooled_maps_are_the_adaptive_average_of_the_raw_maps(extractor) -> None:
    pooled = PooledExtractor(extractor, max_size=4)
    x = torch.rand(2, 3, 32, 32)
    raw, out = extractor(x), pooled(x)
    assert len(out) == len(raw) == len(pooled.feature_info)
    for r, p, info in zip(raw, out, pooled.feature_info, strict=True):
        assert p.shape == (2, r.shape[1], 4, 4)
        torch.testing.assert_close(p, F.adaptive_avg_pool2d(r, 4))
        assert 32 // info.reduction == 4  # every pooled map is one 1/8 scale


def test_feature_info_keeps_maps_that_already_fit(extractor) -> None:
    pooled = PooledExtractor(extractor, max_size=16)
    assert [f.reduction for f in extractor.feature_info] == [2, 1, 2, 1]
    assert [f.reduction for f in pooled.feature_info] == [2, 2, 2, 2]  # 16x16 kept, 32 -> 16
    assert pooled.feature_info[0] is extractor.feature_info[0]
    x = torch.rand(1, 3, 32, 32)
    shapes = [tuple(m.shape[-2:]) for m in pooled(x)]
    assert shapes == [(16, 16), (16, 16), (16, 16), (16, 16)]
    info = PooledExtractor(extractor, max_size=8).feature_info
    assert {f.reduction for f in info} == {4}


def test_identity_and_spec_record_the_pooling(extractor) -> None:
    a, b = PooledExtractor(extractor, 4), PooledExtractor(extractor, 2)
    assert a.identity() != b.identity() != extractor.identity()
    assert a.identity() == PooledExtractor(extractor, 4).identity()
    assert a.spec.extra["pool"] == "adaptive_avg:4"
    assert a.spec.timesteps == extractor.spec.timesteps and a.spec.image_size == 32


def test_pool_map_never_upsamples_and_handles_non_square_maps() -> None:
    m = torch.rand(1, 2, 3, 10)
    out = pool_map(m, 4)
    assert out.shape == (1, 2, 3, 4)
    torch.testing.assert_close(out.mean(), m.mean(), rtol=0.1, atol=0.05)
    assert pool_map(m, 16) is m


def test_fusion_built_from_pooled_feature_info_runs(extractor) -> None:
    pooled = PooledExtractor(extractor, 4)
    fusion = create_fusion(
        "global_weighted", pooled.feature_info, projection_dim=8, bottleneck_dim=4, num_groups=4
    )
    out = fusion(pooled(torch.rand(3, 3, 32, 32)))
    assert [tuple(o.shape) for o in out] == [(3, 8, 4, 4)]


def test_cache_of_pooled_features_matches_online(extractor, tmp_path: Path) -> None:
    pooled = PooledExtractor(extractor, 4)
    ds = _Images(3)
    cached = build_feature_cache(ds, pooled, tmp_path / "c", dtype="float32", batch_size=2)
    assert cached.feature_info == pooled.feature_info
    online = pooled(ds.images[2:3])
    for a, b in zip(cached[2]["features"], online, strict=True):
        torch.testing.assert_close(a, b[0], rtol=1e-5, atol=1e-5)
    assert cached.plan.fingerprint["spec.extra"]["pool"] == "adaptive_avg:4"


def test_bad_max_size_is_one_clear_error(extractor) -> None:
    with pytest.raises(ConfigError, match="max_size=0 must be an integer >= 1"):
        PooledExtractor(extractor, 0)


def test_unknown_working_size_is_one_clear_error() -> None:
    fx = FeatureExtractor("tiny-pixel", timesteps=[10], taps=["up_blocks.1"], image_size=0)
    with pytest.raises(ConfigError, match="pass image_size="):
        PooledExtractor(fx, 4)
    assert PooledExtractor(fx, 4, image_size=32).feature_info[0].reduction == 8
