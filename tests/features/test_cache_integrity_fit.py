"""The cache `fit` reads (CachedDataModule) heals altered shards and refuses a mangled index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cache_damage import nan_fill, rewrite_shard

from fixtures.eurosat import make as fx
from satdifuser.data.datamodule import EuroSATDataModule
from satdifuser.errors import CacheCorruptError
from satdifuser.features import cache_shard
from satdifuser.features.cache import CachedDataModule
from satdifuser.features.extractor import FeatureExtractor


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make(tmp_path_factory.mktemp("eurosat"))


def _data(root: Path, cache: Path) -> CachedDataModule:
    ex = FeatureExtractor("tiny-pixel", timesteps=[21], image_size=16)
    return CachedDataModule(EuroSATDataModule(root, budget=None, batch_size=4), ex, cache,
                            progress=False)  # fmt: skip


def _val_folder(root: Path, cache: Path) -> Path:
    """Build the val cache; its folder (as fit's data module names it)."""
    data = _data(root, cache)
    data.setup("validate")
    return data.datasets["val"].folder


def test_fit_data_re_extracts_a_nan_filled_shard(root: Path, tmp_path: Path) -> None:
    rewrite_shard(_val_folder(root, tmp_path) / "shard-00000.safetensors", nan_fill)
    data = _data(root, tmp_path)
    with pytest.warns(UserWarning, match=r"re-extracting shards \[0\] .* another sha256"):
        data.setup("validate")
    for batch in data.val_dataloader():
        assert all(torch.isfinite(f).all() for f in batch["features"])


def test_fit_data_refuses_a_mangled_index_naming_it(root: Path, tmp_path: Path) -> None:
    path = _val_folder(root, tmp_path) / "index.json"
    index = json.loads(path.read_text())
    index["shards"][0]["bytes"] = "big"
    path.write_text(json.dumps(index))
    cache_shard.forget_checked()
    with pytest.raises(CacheCorruptError, match=r"index\.json has shards\[0\]\.bytes = 'big'"):
        _data(root, tmp_path).setup("validate")
