"""Feature cache: build, read back, resume, refuse mismatches, keep taps, size budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cache_fakes import FakeExtractor, ToyDataset

from satdifuser.errors import (
    CacheMismatchError,
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    InsufficientDiskError,
)
from satdifuser.features.cache import (
    CachedFeatureDataset,
    FeatureCacheBuilder,
    build_feature_cache,
    verify_cache,
)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _build(folder: Path, dataset=None, extractor=None, **kw) -> FeatureCacheBuilder:
    b = FeatureCacheBuilder(
        dataset or ToyDataset(10), extractor or FakeExtractor(), folder,
        batch_size=kw.pop("batch_size", 3), shard_size=kw.pop("shard_size", 4), **kw,
    )  # fmt: skip
    b.prepare()
    b.run()
    return b


def test_cache_serves_the_online_features_to_fp16_tolerance(tmp_path: Path) -> None:
    ds, ex = ToyDataset(10), FakeExtractor()
    _build(tmp_path / "c", ds, ex)
    cached = CachedFeatureDataset(tmp_path / "c")
    assert len(cached) == 10 and cached.feature_info == ex.feature_info
    assert len(list((tmp_path / "c").glob("shard-*.safetensors"))) == 3
    for i in (0, 5, 9):
        online = ex(ds[i]["image"][None])
        sample = cached[i]
        assert sample["id"] == ds.ids[i] and int(sample["label"]) == i % 3
        for a, b in zip(sample["features"], online, strict=True):
            assert a.dtype == torch.float32 and a.shape == b[0].shape
            torch.testing.assert_close(a, b[0], rtol=1e-3, atol=1e-3)


def test_float32_cache_is_exact_and_masks_are_stored(tmp_path: Path) -> None:
    ds, ex = ToyDataset(5, with_mask=True), FakeExtractor()
    _build(tmp_path / "c", ds, ex, dtype="float32", batch_size=5, shard_size=5)
    cached = CachedFeatureDataset(tmp_path / "c")
    online = ex(torch.stack([ds[i]["image"] for i in range(5)]))
    for i in range(5):
        assert torch.equal(cached[i]["mask"], ds[i]["mask"])
        for a, b in zip(cached[i]["features"], online, strict=True):
            assert torch.equal(a, b[i])


def test_complete_cache_is_reused_without_running_the_extractor(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    ex = FakeExtractor()
    b = FeatureCacheBuilder(ToyDataset(10), ex, tmp_path / "c", batch_size=3, shard_size=4)
    b.prepare()
    report = b.run()
    assert report.reused and ex.calls == 0


class _Crash(RuntimeError):
    pass


def test_cache_resumes_after_interrupted_write(tmp_path: Path) -> None:
    _build(tmp_path / "ref")
    ex = FakeExtractor()
    forward = ex.forward

    def crash_after_two_batches(*a, **k):
        if ex.calls >= 2:
            raise _Crash("simulated kill")
        return forward(*a, **k)

    ex.forward = crash_after_two_batches  # type: ignore[method-assign]
    b = FeatureCacheBuilder(ToyDataset(10), ex, tmp_path / "c", batch_size=3, shard_size=4)
    b.prepare()
    with pytest.raises(_Crash):
        b.run()
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert "index.json" not in names and "shard-00000.safetensors" in names
    assert "shard-00001.safetensors" not in names
    (tmp_path / "c" / "shard-00001.safetensors.tmp-host-1").write_bytes(b"partial")
    with pytest.raises(DatasetNotFoundError, match="incomplete"):
        CachedFeatureDataset(tmp_path / "c")
    resumed = _build(tmp_path / "c", batch_size=2)  # asks another batch size: layout is kept
    assert resumed.layout_adopted
    assert _files(tmp_path / "c") == _files(tmp_path / "ref")


def test_two_ranks_without_a_process_group_write_the_single_process_cache(tmp_path: Path) -> None:
    _build(tmp_path / "ref")
    for rank in (1, 0):
        b = _build(tmp_path / "c", rank=rank, world_size=2)
        assert b.complete == (rank == 0)
    assert _files(tmp_path / "c") == _files(tmp_path / "ref")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"extractor": FakeExtractor(timesteps=(10,))},
            r"spec\.timesteps: cache \[10, 50\], asked \[10\]",
        ),
        ({"dtype": "float32"}, "storage_dtype: cache 'float16', asked 'float32'"),
        ({"dataset": ToyDataset(10, prefix="other")}, "sample ids differ .first at row 0"),
        ({"extractor": FakeExtractor(scale=2.0)}, "extractor identity"),
        ({"keep_taps": ["blocks.0.*"]}, "keep_taps: cache null"),
    ],
)
def test_cache_of_another_config_is_refused_naming_the_field(tmp_path: Path, kwargs, match) -> None:
    _build(tmp_path / "c")
    with pytest.raises(CacheMismatchError, match=match):
        _build(tmp_path / "c", **kwargs)
    with pytest.raises(CacheMismatchError, match="--overwrite"):
        _build(tmp_path / "c", **kwargs)


def test_overwrite_rebuilds_a_mismatching_cache(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    ex = FakeExtractor(timesteps=(10,))
    b = FeatureCacheBuilder(ToyDataset(10), ex, tmp_path / "c", batch_size=3, shard_size=4)
    b.prepare(overwrite=True)
    b.run()
    assert len(CachedFeatureDataset(tmp_path / "c").feature_info) == 2


def test_keep_taps_stores_only_matching_maps(tmp_path: Path) -> None:
    _build(tmp_path / "c", keep_taps=["blocks.1.*"])
    cached = CachedFeatureDataset(tmp_path / "c")
    assert [f.tap for f in cached.feature_info] == ["blocks.1.conv", "blocks.1.conv"]
    assert [tuple(t.shape) for t in cached[0]["features"]] == [(6, 4, 4), (6, 4, 4)]
    with pytest.raises(ConfigError, match=r"'up_blocks\.9' matches none"):
        _build(tmp_path / "d", keep_taps=["up_blocks.9"])


def test_size_over_budget_is_refused_before_writing(tmp_path: Path) -> None:
    b = FeatureCacheBuilder(ToyDataset(10), FakeExtractor(), tmp_path / "c", batch_size=3)
    # 2 x (4*8*8 + 6*4*4) fp16 values + int64 label = 1416 bytes per sample
    assert b.plan.bytes_per_sample == 2 * (4 * 64 + 6 * 16) * 2 + 8
    with pytest.raises(
        InsufficientDiskError, match=r"14\.16 kB .10 samples x 1\.42 kB. exceeds --max-gb 1e-05"
    ):
        b.prepare(max_gb=1e-5)
    assert not (tmp_path / "c").exists()


def test_size_over_free_disk_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    b = FeatureCacheBuilder(ToyDataset(10), FakeExtractor(), tmp_path / "c", batch_size=3)
    with pytest.raises(
        InsufficientDiskError, match=r"14\.16 kB still to write exceeds the 1\.00 kB free"
    ):
        b.prepare()


def test_verify_detects_an_altered_shard(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    verify_cache(tmp_path / "c", full=True)
    shard = tmp_path / "c" / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"shard-00001\.safetensors has another sha256"):
        verify_cache(tmp_path / "c", full=True)


def test_float16_overflow_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exceeds the float16 range"):
        _build(tmp_path / "c", extractor=FakeExtractor(scale=3e4))


def test_build_feature_cache_returns_the_dataset(tmp_path: Path) -> None:
    cached = build_feature_cache(ToyDataset(4), FakeExtractor(), tmp_path / "c", batch_size=4)
    assert isinstance(cached, CachedFeatureDataset) and cached.ids == ToyDataset(4).ids


def test_deleted_or_truncated_shards_of_a_complete_cache_are_rebuilt(tmp_path: Path) -> None:
    _build(tmp_path / "ref")
    _build(tmp_path / "c")
    (tmp_path / "c" / "shard-00000.safetensors").unlink()
    shard = tmp_path / "c" / "shard-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    ex = FakeExtractor()
    with pytest.warns(UserWarning, match=r"re-extracting shards \[0, 2\] .*00000.* is missing"):
        b = _build(tmp_path / "c", extractor=ex)
    assert b.damaged == [0, 2] and ex.calls == 3  # batches of 3: shard 0 (4 rows) 2, shard 2 1
    assert _files(tmp_path / "c") == _files(tmp_path / "ref")


def test_auto_shard_size_splits_a_small_split_into_enough_shards_for_ranks(tmp_path: Path) -> None:
    from satdifuser.features.cache_plan import MIN_SHARDS

    b = FeatureCacheBuilder(ToyDataset(40), FakeExtractor(), tmp_path / "c", batch_size=4)
    b.prepare()
    assert b.plan.shard_size == 3  # ceil(40 / 16): the bytes budget alone would give one shard
    assert b.plan.num_shards == 14 and b.plan.num_shards >= MIN_SHARDS - 2


def test_same_weights_under_another_backbone_name_reuse_the_cache(tmp_path: Path) -> None:
    first = FakeExtractor()
    first.backbone_name = "satdifuser-eurosat-tiny"
    _build(tmp_path / "c", extractor=first)
    again = FakeExtractor()
    again.backbone_name = "src/satdifuser/weights/satdifuser-eurosat-tiny"  # same weights, a path
    b = _build(tmp_path / "c", extractor=again)
    assert again.calls == 0 and b.plan.fingerprint["backbone"] == first.backbone_name


def test_other_weights_are_refused_naming_both_backbones(tmp_path: Path) -> None:
    first = FakeExtractor()
    first.backbone_name = "model-a"
    _build(tmp_path / "c", extractor=first)
    other = FakeExtractor(seed=1)
    other.backbone_name = "model-b"
    with pytest.raises(CacheMismatchError, match=r"model-a.*model-b"):
        _build(tmp_path / "c", extractor=other)
