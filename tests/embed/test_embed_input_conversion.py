"""embed --model applies the model's input conversion (band selection, scaling) before the
extractor, on every input path (image files, GeoTIFFs, datasets), exactly as predict does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fixtures.cli import cli_error
from fixtures.tiny_model import tiny_model
from satdifuser.cli.main import main
from satdifuser.data.tensor_images import TensorImageDataset
from satdifuser.embed import Embedder, export_embeddings
from satdifuser.model import SatDiFuserModel
from satdifuser.model.inputs import InputSpec
from satdifuser.model.resample import resize_images

tifffile = pytest.importorskip("tifffile", reason="tifffile writes the test GeoTIFFs")
pytest.importorskip("rasterio", reason="the geo extra (rasterio) is not installed")

from fixtures.geotiff import make as gtfx  # noqa: E402

SIZE = 32
BANDS = ["B02", "B03", "B04", "B08"]  # blue, green, red, NIR: RGB are bands 2, 1, 0
MEAN = [1000.0, 1100.0, 1200.0, 2000.0]
STD = [400.0, 450.0, 500.0, 800.0]


def _model(folder: Path, spec: InputSpec | None = None, contract: dict | None = None,
           image_size: int = 0) -> Path:  # fmt: skip
    contract = {**(contract or {}), **({"spec": spec.to_config()} if spec else {})}
    return tiny_model(image_size=image_size, input_contract=contract).save_pretrained(folder)


def _by_hand(folder: Path, rgb: torch.Tensor, representation: str = "fused") -> np.ndarray:
    """Pooled vectors of the model's extractor (and fusion) on RGB in [0, 1] converted by hand."""
    model = SatDiFuserModel.from_pretrained(folder)
    with torch.no_grad():
        maps = list(model.extractor(rgb))
        if representation == "fused":
            maps = list(model.fusion(model.standardizer(maps)))
    return torch.cat([m.float().mean(dim=(2, 3)) for m in maps], dim=1).numpy()


def _embed(model: Path, out: Path, *inputs: Path | str) -> np.ndarray:
    argv = ["embed", "--model", str(model), "--out", str(out), "--no-progress"]
    assert main([*argv, *map(str, inputs)]) == 0
    return np.stack(pd.read_parquet(out)["embedding"].to_list())


def _tif(path: Path, arr: np.ndarray) -> Path:
    tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="separate",
                     extratags=gtfx.utm_tags(*gtfx.UTM_TIE))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def dn_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-band uint16 Sentinel-2-like GeoTIFF (DN, reflectance x 10000)."""
    rng = np.random.default_rng(0)
    arr = rng.integers(200, 6000, size=(len(BANDS), SIZE, SIZE)).astype(np.uint16)
    return _tif(tmp_path_factory.mktemp("tif") / "s2.tif", arr)


@pytest.mark.parametrize(("representation", "image_size"), [("fused", 0), ("maps", 0),
                                                              ("fused", 16)])  # fmt: skip
def test_geotiff_bands_are_selected_and_scaled_as_the_model_declares(
    dn_tif: Path, tmp_path: Path, representation: str, image_size: int
) -> None:
    spec = InputSpec(BANDS, "raw", scale=10000)
    folder = _model(tmp_path / "m", spec, image_size=image_size)
    raw = torch.from_numpy(tifffile.imread(dn_tif).astype(np.float32))
    rgb = (raw[[2, 1, 0]] / 10000).clamp(0, 1)[None]  # B04, B03, B02
    if image_size:  # raw values are resized to the working size, never clipped to [0, 1]
        rgb = resize_images(rgb, (image_size, image_size))
    want = _by_hand(folder, rgb, representation)
    argv = ["--representation", representation, dn_tif]
    got = _embed(folder, tmp_path / "e.parquet", *argv)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_geotiff_tiles_are_converted_window_by_window(dn_tif: Path, tmp_path: Path) -> None:
    spec = InputSpec(BANDS, "raw", scale=10000)
    folder = _model(tmp_path / "m", spec)
    raw = torch.from_numpy(tifffile.imread(dn_tif).astype(np.float32))
    rgb = (raw[[2, 1, 0]] / 10000).clamp(0, 1)
    half = SIZE // 2
    tiles = torch.stack([rgb[:, r : r + half, c : c + half] for r in (0, half) for c in (0, half)])
    got = _embed(folder, tmp_path / "t.parquet", "--tile", str(half), dn_tif)
    np.testing.assert_allclose(got, _by_hand(folder, tiles), rtol=1e-4, atol=1e-5)


def test_embedding_sees_what_model_forward_feeds_the_extractor(
    dn_tif: Path, tmp_path: Path
) -> None:
    spec = InputSpec(BANDS, "raw", scale=10000, rgb=["B08", "B04", "B03"])  # false colour
    folder = _model(tmp_path / "m", spec)
    model = SatDiFuserModel.from_pretrained(folder)
    seen: list[torch.Tensor] = []
    hook = model.extractor.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    try:
        raw = torch.from_numpy(tifffile.imread(dn_tif).astype(np.int64)).to(torch.int32)
        model.predict_proba(raw[None].float())
    finally:
        hook.remove()
    torch.testing.assert_close(seen[0], (raw[[3, 2, 1]].float() / 10000).clamp(0, 1)[None])
    got = _embed(folder, tmp_path / "e.parquet", dn_tif)
    np.testing.assert_allclose(got, _by_hand(folder, seen[0]), rtol=1e-4, atol=1e-5)


def test_png_pixels_are_scaled_by_the_model_not_by_the_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    # raw 8-bit values, the brightest 200 map to 1.0, channels stored B, G, R
    spec = InputSpec(["blue", "green", "red"], "raw", scale=200)
    folder = _model(tmp_path / "m", spec)
    raw = torch.from_numpy(pixels).permute(2, 0, 1).float()
    want = _by_hand(folder, (raw[[2, 1, 0]] / 200).clamp(0, 1)[None])
    got = _embed(folder, tmp_path / "e.parquet", tmp_path / "a.png")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_model_trained_on_geotiff_files_selects_its_bands_like_its_reader(
    tmp_path: Path,
) -> None:
    from satdifuser.data.datamodule import GeoTiffFolderDataModule

    root = gtfx.make_split_classes(tmp_path / "tifs")
    dm = GeoTiffFolderDataModule(root, rgb=["B08", "B04", "B03"], value_range=(0.0, 3000.0))
    folder = _model(tmp_path / "m", contract=dm.input_contract())
    ds = dm.dataset("train")
    want = _by_hand(folder, ds[0]["image"][None])
    got = _embed(folder, tmp_path / "e.parquet", ds.files[0])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_dataset_export_applies_the_input_adapter(tmp_path: Path) -> None:
    spec = InputSpec(BANDS, "zscore", scale=10000, mean=MEAN, std=STD)
    model = SatDiFuserModel.from_pretrained(_model(tmp_path / "m", spec))
    mean, std = torch.tensor(MEAN).view(1, -1, 1, 1), torch.tensor(STD).view(1, -1, 1, 1)
    raw = torch.rand(3, len(BANDS), SIZE, SIZE) * 5000
    z = (raw - mean) / std  # what a TorchGeo-style data module gives
    data = TensorImageDataset(z, [0] * len(z))  # the labels are not used
    out = export_embeddings(data, Embedder.from_model(model), tmp_path / "d.parquet",
                            batch_size=2, progress=False).path  # fmt: skip
    got = np.stack(pd.read_parquet(out)["embedding"].to_list())
    rgb = (raw[:, [2, 1, 0]] / 10000).clamp(0, 1)
    np.testing.assert_allclose(got, _by_hand(tmp_path / "m", rgb), rtol=1e-4, atol=1e-5)


def test_a_model_without_conversion_embeds_as_before(tmp_path: Path) -> None:
    from satdifuser.data.image_io import read_image

    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    arr = rng.integers(0, 256, (3, SIZE, SIZE), dtype=np.uint8)
    _tif(tmp_path / "b.tif", arr)
    folder = _model(tmp_path / "m")
    images = torch.stack([read_image(tmp_path / "a.png"), torch.from_numpy(arr / 255.0).float()])
    got = _embed(folder, tmp_path / "e.parquet", tmp_path / "a.png", tmp_path / "b.tif")
    np.testing.assert_allclose(got, _by_hand(folder, images), rtol=1e-4, atol=1e-5)
    model = SatDiFuserModel.from_pretrained(folder)
    direct = Embedder.from_model(model)(images).numpy()  # tensors in the contract: as they are
    np.testing.assert_allclose(direct, _by_hand(folder, images), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("kind", "suffix"), [("spec", "tif"), ("spec", "png"),
                                             ("raster", "tif")])  # fmt: skip
def test_files_whose_bands_do_not_fit_fail_as_in_predict(
    tmp_path: Path, kind: str, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "spec":
        folder = _model(tmp_path / "m", InputSpec(BANDS, "raw", scale=10000))
    else:
        from satdifuser.data.datamodule import GeoTiffFolderDataModule

        dm = GeoTiffFolderDataModule(gtfx.make_split_classes(tmp_path / "tifs"))
        folder = _model(tmp_path / "m", contract=dm.input_contract())
    bad = tmp_path / f"three.{suffix}"
    if suffix == "png":  # an RGB picture given to a 4-band model: not silently embedded
        Image.fromarray(np.full((SIZE, SIZE, 3), 90, np.uint8)).save(bad)
    else:
        _tif(bad, np.full((3, SIZE, SIZE), 900, np.uint16))
    embed = cli_error(["embed", "--model", str(folder), "--out", str(tmp_path / "e.parquet"),
                    "--no-progress", str(bad)], capsys)  # fmt: skip
    predict = cli_error(["predict", "--model", str(folder), "--out", str(tmp_path / "p.csv"),
                      "--no-progress", str(bad)], capsys)  # fmt: skip
    assert embed == predict
    assert bad.name in embed and "3 bands" in embed
    assert not (tmp_path / "e.parquet").exists()
