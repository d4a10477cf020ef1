"""Feature cache integrity: every read path refuses a damaged shard or index with one line."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from cache_damage import flip_low_bit, nan_fill, record_digest, replace_same_length, rewrite_shard
from cache_fakes import FakeExtractor, ToyDataset

from satdifuser.errors import CacheCorruptError, ConfigError, DataFormatError
from satdifuser.features import cache_shard
from satdifuser.features.cache import CachedFeatureDataset, FeatureCacheBuilder, verify_cache
from satdifuser.features.cache_memory import InMemoryFeatures

FIX = "delete that folder and rerun `satdifuser extract`"


@pytest.fixture(autouse=True)
def _new_process() -> None:
    cache_shard.forget_checked()


def _build(folder: Path, extractor: FakeExtractor | None = None, **kw) -> FeatureCacheBuilder:
    b = FeatureCacheBuilder(
        ToyDataset(10), extractor or FakeExtractor(), folder, batch_size=2, shard_size=4, **kw
    )
    b.prepare()
    b.run()
    return b


def _readers(folder: Path) -> list[Callable[[], object]]:
    """Every way the project reads a cache: fit's dataset, the in-memory loader, --verify."""
    return [
        lambda: CachedFeatureDataset(folder),
        lambda: InMemoryFeatures(CachedFeatureDataset(folder)),
        lambda: verify_cache(folder),
        lambda: verify_cache(folder, full=True),
    ]


def _refused_by_every_reader(folder: Path, match: str) -> None:
    for read in _readers(folder):
        cache_shard.forget_checked()
        with pytest.raises(CacheCorruptError, match=match) as info:
            read()
        message = str(info.value)
        assert "\n" not in message and FIX in message and str(folder) in message


def test_nan_filled_shard_of_the_same_size_is_refused_by_every_reader(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    rewrite_shard(tmp_path / "c" / "shard-00001.safetensors", nan_fill)
    _refused_by_every_reader(tmp_path / "c", r"shard-00001\.safetensors has another sha256")


def test_finite_bit_flip_in_a_float16_shard_is_caught_by_the_digest(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    rewrite_shard(tmp_path / "c" / "shard-00002.safetensors", flip_low_bit)
    _refused_by_every_reader(tmp_path / "c", r"shard-00002\.safetensors has another sha256")


def test_non_finite_features_with_a_matching_digest_are_refused(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    rewrite_shard(tmp_path / "c" / "shard-00001.safetensors", nan_fill)
    record_digest(tmp_path / "c", 1)  # e.g. written by an older version from NaN features
    _refused_by_every_reader(
        tmp_path / "c", r"shard-00001\.safetensors holds NaN or Inf in f000 \(cache row 4\)"
    )


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b'"F16"', b'"F17"', r"has tensor 'f000' of unknown dtype 'F17'"),
        (
            b"[4,4,8,8]",
            b"[4,4,8,7]",
            r"has tensor 'f000' of shape \[4, 4, 8, 7\] F16 \(1792 bytes\) but data_offsets",
        ),
        (b"[4,4,8,8]", b"[4,8,4,8]", r"holds f000 as F16 \[4, 8, 4, 8\] but index.json records"),
        (b'"shape"', b'"shapf"', r"has tensor 'f000' of shape None"),
    ],
)
def test_damaged_shard_header_is_refused_naming_the_file(
    tmp_path: Path, old: bytes, new: bytes, match: str
) -> None:
    _build(tmp_path / "c")
    rewrite_shard(tmp_path / "c" / "shard-00000.safetensors", replace_same_length(old, new))
    record_digest(tmp_path / "c", 0)  # the header check alone must refuse it
    _refused_by_every_reader(tmp_path / "c", r"shard-00000\.safetensors " + match)


def test_header_damage_is_refused_even_with_the_old_digest(tmp_path: Path) -> None:
    _build(tmp_path / "c")
    rewrite_shard(
        tmp_path / "c" / "shard-00000.safetensors", replace_same_length(b'"F16"', b'"F17"')
    )
    _refused_by_every_reader(tmp_path / "c", r"shard-00000\.safetensors has tensor 'f000' of unk")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda ix: ix["shards"][1].update(bytes="2048"), r"shards\[1\]\.bytes = '2048' \(str\)"),
        (lambda ix: ix["shards"][0].update(sha256=5), r"shards\[0\]\.sha256 = 5 \(int\)"),
        (lambda ix: ix["shards"][2].update(start=8.0), r"shards\[2\]\.start = 8\.0 \(float\)"),
        (lambda ix: ix["shards"][0].update(file="../x"), r"shards\[0\]\.file = '\.\./x'"),
        (lambda ix: ix.update(shards="all"), r"shards = 'all' \(str\), expected a list of 3"),
        (lambda ix: ix["tensors"].update(f000="F16"), r"tensors\.f000 = 'F16' \(str\)"),
        (lambda ix: ix["tensors"].pop("label"), r"tensors = \['f000', 'f001', 'f002', 'f003'\]"),
        (lambda ix: ix.update(kept="ab"), r"index\.json lacks or mangles field"),
        (lambda ix: ix.update(complete="yes"), r"complete = 'yes' \(str\), expected true"),
    ],
)
def test_index_field_of_the_wrong_type_is_refused_naming_the_field(
    tmp_path: Path, edit: Callable[[dict], object], match: str
) -> None:
    _build(tmp_path / "c")
    path = tmp_path / "c" / "index.json"
    index = json.loads(path.read_text())
    edit(index)
    path.write_text(json.dumps(index))
    for read in _readers(tmp_path / "c"):
        with pytest.raises(CacheCorruptError, match=match) as info:
            read()
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(DataFormatError, match=match):  # a rerun of extract refuses it too
        _build(tmp_path / "c")


@pytest.mark.parametrize("damage", [nan_fill, flip_low_bit])
def test_rerunning_extract_re_extracts_exactly_the_altered_shard(
    tmp_path: Path, damage: Callable[[bytearray, dict, int], None]
) -> None:
    _build(tmp_path / "ref")
    _build(tmp_path / "c")
    rewrite_shard(tmp_path / "c" / "shard-00001.safetensors", damage)
    ex = FakeExtractor()
    with pytest.warns(UserWarning, match=r"re-extracting shards \[1\] .*another sha256"):
        b = _build(tmp_path / "c", extractor=ex)
    assert b.damaged == [1] and ex.calls == 2  # shard 1: 4 rows in batches of 2
    ref = {p.name: p.read_bytes() for p in sorted((tmp_path / "ref").iterdir())}
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "c").iterdir())} == ref
    cached = CachedFeatureDataset(tmp_path / "c")
    assert all(torch.isfinite(f).all() for i in range(len(cached)) for f in cached[i]["features"])


class _NaNExtractor(FakeExtractor):
    def forward(self, images, metadata=None):
        out = super().forward(images, metadata)
        out[1][0, 0, 0, 0] = float("nan")
        return out


def test_extraction_refuses_non_finite_features(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"blocks\.1\.conv@t=10 of samples .* holds NaN or Inf"):
        _build(tmp_path / "c", extractor=_NaNExtractor())
    assert not list((tmp_path / "c").glob("shard-*.safetensors"))


def test_each_shard_is_hashed_once_per_process(tmp_path: Path, monkeypatch) -> None:
    hashed: list[str] = []
    real = cache_shard.sha256_file
    monkeypatch.setattr(cache_shard, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    _build(tmp_path / "c")
    CachedFeatureDataset(tmp_path / "c")[9]
    assert hashed == []  # the writer's own digests are trusted
    cache_shard.forget_checked()  # as in a new `fit` process
    ds = CachedFeatureDataset(tmp_path / "c")
    assert sorted(hashed) == [f"shard-0000{k}.safetensors" for k in range(3)]
    ds[0], ds[5], CachedFeatureDataset(tmp_path / "c")[9]
    assert len(hashed) == 3
    verify_cache(tmp_path / "c", full=True)  # --verify always re-reads
    assert len(hashed) == 6


def test_worker_copies_trust_the_checks_of_the_process_that_opened_the_cache(
    tmp_path: Path, monkeypatch
) -> None:
    _build(tmp_path / "c")
    cache_shard.forget_checked()
    ds = CachedFeatureDataset(tmp_path / "c")
    worker = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    cache_shard.forget_checked()  # the worker process starts with an empty memo
    monkeypatch.setattr(cache_shard, "sha256_file", lambda p: pytest.fail(f"re-hashed {p}"))
    assert worker[9]["id"] == ds[9]["id"]
