"""embed --model honours the model's input.resample: native pixels are resized as in predict."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fixtures.tiny_model import tiny_model
from satdifuser.cli.main import main
from satdifuser.data.image_io import read_image
from satdifuser.data.tensor_images import TensorImageDataset
from satdifuser.embed import Embedder, export_embeddings
from satdifuser.model import SatDiFuserModel

NATIVE = 64


def _model(image_size: int, resample: float) -> SatDiFuserModel:
    return tiny_model(image_size=image_size, resample=resample)


def _half(images: torch.Tensor) -> torch.Tensor:
    """Downsampled by hand: antialiased bilinear to half the side."""
    size = (images.shape[-2] // 2, images.shape[-1] // 2)
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    for i in range(3):  # smooth-ish content, so down- and upsampling are not the same thing
        base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(base).resize((NATIVE, NATIVE), Image.BILINEAR).save(folder / f"{i}.png")
    return folder


def _embed(folder: Path, inputs: Path, out: Path, *extra: str) -> np.ndarray:
    argv = ["embed", "--model", str(folder), "--out", str(out), "--no-progress", *extra]
    assert main([*argv, str(inputs)]) == 0
    return np.stack(pd.read_parquet(out)["embedding"].to_list())


@pytest.mark.parametrize("image_size", [0, 16])
def test_cli_embed_at_half_scale_equals_hand_downsampled_images(
    pngs: Path, tmp_path: Path, image_size: int, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(image_size, 0.5)
    half = model.save_pretrained(tmp_path / "half")
    images = torch.stack([read_image(p) for p in sorted(pngs.glob("*.png"))])
    at_one = Embedder.from_model(SatDiFuserModel.from_pretrained(half), resample=1.0)
    want = at_one(_half(images)).numpy()
    native = at_one(images).numpy()
    got = _embed(half, pngs, tmp_path / "half.parquet")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, native, rtol=1e-3, atol=1e-4)  # the factor changes the vectors
    meta = json.loads(pq.read_schema(tmp_path / "half.parquet").metadata[b"satdifuser"])
    assert meta["embedding"]["resample"] == 0.5
    # --resample 1 overrides the model's factor: native pixels as they are
    over = _embed(half, pngs, tmp_path / "over.parquet", "--resample", "1")
    np.testing.assert_allclose(over, native, rtol=1e-4, atol=1e-5)
    assert "--resample 1 overrides the model's resample 0.5" in capsys.readouterr().err


def test_resample_one_leaves_the_vectors_and_identity_unchanged(pngs: Path, tmp_path: Path) -> None:
    model = _model(0, 1.0)
    images = torch.stack([read_image(p) for p in sorted(pngs.glob("*.png"))])
    folder = model.save_pretrained(tmp_path / "one")
    loaded = SatDiFuserModel.from_pretrained(folder)
    with torch.no_grad():
        fused = loaded.fusion(loaded.standardizer(loaded.extractor(images)))
    want = torch.cat([f.mean(dim=(2, 3)) for f in fused], dim=1).numpy()
    np.testing.assert_allclose(_embed(folder, pngs, tmp_path / "e.parquet"), want, rtol=1e-4,
                               atol=1e-5)  # fmt: skip
    emb = Embedder.from_model(loaded)
    assert emb.resample == 1.0 and emb.read_size == 0
    # the digest of a factor-1 embedder does not change with the new "resample" field
    info = {k: v for k, v in emb.info.items() if k not in ("spec", "resample")}
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]
    assert emb.identity == digest
    assert Embedder.from_model(loaded, resample=0.5).identity != emb.identity


def test_dataset_export_resamples_too(tmp_path: Path) -> None:
    images = _half(_half(torch.rand(4, 3, 4 * NATIVE, 4 * NATIVE))).clamp(0, 1)  # smooth
    model = _model(0, 0.5)
    emb = Embedder.from_model(model)
    data = TensorImageDataset(images, [0] * len(images))  # the labels are not used
    out = export_embeddings(data, emb, tmp_path / "d.parquet", batch_size=2,
                            progress=False).path  # fmt: skip
    got = np.stack(pd.read_parquet(out)["embedding"].to_list())
    want = Embedder.from_model(model, resample=1.0)(_half(images)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_resample_needs_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["embed", "--backbone", "tiny-pixel", "--resample", "0.5", "--out",
            str(tmp_path / "e.parquet"), str(tmp_path)]  # fmt: skip
    assert main(argv) == 2
    assert "--resample overrides a saved model's factor" in capsys.readouterr().err
