"""Embedding export: Parquet read back with pandas, vectors equal the extractor's pooled maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import Dataset

from fixtures.eurosat.make import make as make_eurosat
from satdifuser.backbones import create_backbone
from satdifuser.cli.main import main
from satdifuser.data import EuroSAT
from satdifuser.embed import Embedder, export_embeddings
from satdifuser.errors import DependencyNotFoundError
from satdifuser.features import FeatureExtractor
from satdifuser.fusion import create_fusion
from satdifuser.heads import create_head
from satdifuser.model import SatDiFuserModel


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(create_backbone("tiny-pixel"), timesteps=[10, 50], image_size=32)


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_eurosat(tmp_path_factory.mktemp("eurosat"))


def _read_meta(path: Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[b"satdifuser"])


def test_cli_embed_eurosat_reads_back_with_pandas(eurosat_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    code = main(
        [
            "embed",
            "--backbone",
            "tiny-pixel",
            "--timesteps",
            "10,50",
            "--image-size",
            "32",
            "--dataset",
            "eurosat",
            "--root",
            str(eurosat_root),
            "--split",
            "test",
            "--out",
            str(out),
            "--batch-size",
            "3",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    df = pd.read_parquet(out)
    ds = EuroSAT(eurosat_root, split="test")
    assert list(df["id"]) == ds.files
    assert list(df["label"]) == ds.targets
    assert list(df["label_name"]) == [ds.classes[t] for t in ds.targets]
    assert all(Path(p).is_file() for p in df["path"])
    fx = FeatureExtractor(create_backbone("tiny-pixel"), timesteps=[10, 50], image_size=32)
    dim = sum(f.channels for f in fx.feature_info)
    assert np.stack(df["embedding"].to_list()).shape == (len(ds), dim)
    field = pq.read_schema(out).field("embedding")
    assert field.type == pa.list_(pa.float32(), dim)
    meta = _read_meta(out)
    assert set(df["model_identity"]) == {meta["model_identity"]}
    assert meta["embedding"]["dim"] == dim
    assert meta["embedding"]["extractor_identity"] == fx.identity()
    assert meta["embedding"]["backbone_weights_id"] == fx.backbone.weights_id()
    assert meta["embedding"]["feature_info"] == [
        [f.tap, f.timestep, f.channels, f.reduction] for f in fx.feature_info
    ]
    assert meta["input"]["split"] == "test" and meta["input"]["rows"] == len(ds)


@pytest.mark.parametrize(("pool_size", "normalize"), [(1, False), (2, True)])
def test_embedding_values_equal_the_extractors_pooled_maps(
    extractor: FeatureExtractor,
    eurosat_root: Path,
    tmp_path: Path,
    pool_size: int,
    normalize: bool,
) -> None:
    ds = EuroSAT(eurosat_root, split="val")
    emb = Embedder.from_extractor(extractor, pool_size=pool_size, normalize=normalize)
    out = export_embeddings(ds, emb, tmp_path / "e.parquet", batch_size=4, progress=False).path
    got = np.stack(pd.read_parquet(out)["embedding"].to_list())
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    meta = torch.stack([ds[i]["meta"] for i in range(len(ds))])
    maps = extractor(images, meta)
    want = torch.cat(
        [torch.nn.functional.adaptive_avg_pool2d(m, pool_size).flatten(1) for m in maps], dim=1
    )
    if normalize:
        want = want / want.norm(dim=1, keepdim=True)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert emb.dim == sum(f.channels for f in extractor.feature_info) * pool_size**2
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


class _FailsAt(Dataset):
    """Four good samples, then an error (a corrupt file mid-way)."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        if i == 5:
            raise OSError("disk read failed on sample 5")
        return {"image": torch.rand(3, 32, 32), "id": f"s{i}"}


def test_an_error_midway_leaves_no_output_file(extractor: FeatureExtractor, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    emb = Embedder.from_extractor(extractor)
    with pytest.raises(OSError, match="sample 5"):
        export_embeddings(_FailsAt(), emb, out, batch_size=2, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file
    out.write_bytes(b"old")
    with pytest.raises(OSError, match="sample 5"):
        export_embeddings(_FailsAt(), emb, out, batch_size=2, progress=False)
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]


def test_model_folder_gives_the_fused_pooled_representation(
    eurosat_root: Path, tmp_path: Path
) -> None:
    fx = FeatureExtractor(create_backbone("tiny-pixel"), timesteps=[10, 50], image_size=32, pool=4)
    fu = create_fusion(
        "global_weighted", fx.feature_info, projection_dim=8, bottleneck_dim=4, num_groups=2
    )
    head = create_head("linear", fu.out_channels, 10)
    folder = SatDiFuserModel(
        fx, fu, head, "classification", [str(i) for i in range(10)]
    ).save_pretrained(tmp_path / "model")
    out = tmp_path / "fused.parquet"
    assert (
        main(
            [
                "embed",
                "--model",
                str(folder),
                "--dataset",
                "eurosat",
                "--root",
                str(eurosat_root),
                "--split",
                "val",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    df = pd.read_parquet(out)
    model = SatDiFuserModel.from_pretrained(folder).eval()
    ds = EuroSAT(eurosat_root, split="val")
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    meta = torch.stack([ds[i]["meta"] for i in range(len(ds))])
    with torch.no_grad():
        fused = model.fusion(model.standardizer(model.extractor(images, meta)))
    want = torch.cat([f.mean(dim=(2, 3)) for f in fused], dim=1)
    got = np.stack(df["embedding"].to_list())
    assert got.shape == (len(ds), sum(fu.out_channels))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    info = _read_meta(out)["embedding"]
    assert info["representation"] == "fused" and info["model"] == str(folder)
    assert info["model_weights_id"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "e.parquet")
    assert main(["embed", "--out", out, str(tmp_path)]) == 2
    assert main(["embed", "--backbone", "tiny-pixel", "--out", out]) == 2
    assert (
        main(["embed", "--backbone", "tiny-pixel", "--out", str(tmp_path / "e.csv"), str(tmp_path)])
        == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(
        ln.startswith("satdifuser embed: error: ConfigError") for ln in lines
    )
    assert "exactly one of --backbone" in lines[0]
    assert "--dataset NAME or image files" in lines[1]
    assert ".parquet" in lines[2]
    assert not (tmp_path / "e.parquet").exists()


def test_missing_pyarrow_names_the_geo_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from satdifuser.embed.writer import import_pyarrow

    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    with pytest.raises(DependencyNotFoundError, match=r'pip install "satdifuser\[geo\]"'):
        import_pyarrow()
