"""Pre-training sources: parsing, loading (folders, GeoTIFFs, mask folders, GEO-Bench), refusals of
held-out images, and the mixed sampler (weights, crops, purity in (seed, step))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.tasks.test_pretrain import _fake_root

from fixtures.geobench import make as gbfx
from fixtures.geotiff import make as tiffx
from fixtures.mask_folder import make as maskfx
from satdifuser.errors import ConfigError, DatasetNotFoundError
from satdifuser.pretrain.image_pool import load_images, pretrain_paths
from satdifuser.pretrain.sources import gather_sources, parse_source, read_sources_file
from satdifuser.pretrain.sources_load import (
    DUBAI_VAL_TILES,
    ImagePool,
    load_pool,
    load_source,
    open_source,
)
from satdifuser.pretrain.sources_sampling import MixedOrder

DUBAI = Path("/work/shared/data/dubai_aerial")


def _folder(root: Path, n: int, size: tuple[int, int], value: int | None = None) -> Path:
    """``n`` PNGs of ``size`` (H, W): random pixels, or all ``value`` (to tell sources apart)."""
    rng = np.random.default_rng(n)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        if value is not None:
            arr[:] = value
        Image.fromarray(arr).save(root / f"img_{i}.png")
    return root


def _pool(*specs: str, size: int = 16) -> ImagePool:
    return load_pool([parse_source(s) for s in specs], size, lambda _m: None)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------------------- parsing
def test_parse_source_keys_and_lists() -> None:
    spec = parse_source("mask_folder:/x/dubai_aerial,weight=0.5,scale=0.25,crops=64+128,tiles=1+2")
    assert (spec.kind, spec.root, spec.weight, spec.scale) == (
        "mask_folder",
        "/x/dubai_aerial",
        0.5,
        0.25,
    )
    assert spec.crops == (64, 128) and spec.tiles == (1, 2)
    assert gather_sources(None, None)[0].is_default  # no source: EuroSAT alone


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nosuch:/x", r"kind 'nosuch' is unknown"),
        ("image_folder", r"image_folder needs a root folder"),
        ("image_folder:/x,weight=0", r"weight=0.0 must be a finite number > 0"),
        ("image_folder:/x,weight=abc", r"weight='abc' is not a number"),
        ("image_folder:/x,crops=4", r"crops=\[4\] must be sides >= 8"),
        ("image_folder:/x,scale=0", r"scale=0.0 must be in \(0, 4\]"),
        ("image_folder:/x,bands=1+2+3", r"key 'bands' does not apply to image_folder"),
        ("geotiff_folder:/x,bands=B04+B03", r"must name 3 bands"),
        ("image_folder:/x,weight", r"'weight' is not key=value"),
        ("geobench:/x,task=m-eurosat,split=val", r"split='val' cannot be used for pre-training"),
        ("geobench:/x,split=test", r"only split='train'"),
        ("eurosat,split=test", r"split='test' cannot be used for pre-training"),
        ("image_folder:/x,split=val", r"split='val' cannot be used"),
    ],
)
def test_bad_source_is_one_line(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as exc:
        parse_source(text)
    _one_line(exc)


def test_sources_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("- {kind: eurosat}\n- kind: image_folder\n  root: /x\n  crops: [32, 64]\n")
    specs = read_sources_file(path)
    assert [s.kind for s in specs] == ["eurosat", "image_folder"] and specs[1].crops == (32, 64)
    path.write_text("- {kind: image_folder, root: /x, colour: red}\n")
    with pytest.raises(ConfigError, match=r"sources.yaml item 1\).*key 'colour'"):
        read_sources_file(path)


# ------------------------------------------------------------------------------- loading
def test_default_eurosat_source_loads_exactly_the_old_pool(tmp_path: Path) -> None:
    root = _fake_root(tmp_path / "data")
    spec = gather_sources(None, None)[0]
    from satdifuser.pretrain.sources import resolve_root

    pool = load_pool([resolve_root(spec, root)], 16, lambda _m: None)
    assert np.array_equal(pool.uniform, load_images(pretrain_paths(root), 16))


def test_image_folder_reads_only_train_and_says_so(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        _folder(tmp_path / "ds" / split / "Forest", n, (20, 20))
    notes: list[str] = []
    opened = open_source(parse_source(f"image_folder:{tmp_path / 'ds'}"), notes.append)
    assert opened.count == 3 and all("train" in p.parts for p in opened.paths)
    assert any("reading only train/" in m for m in notes)


@pytest.mark.parametrize("layout", ["val_root", "no_train", "eurosat_root"])
def test_folders_of_held_out_images_are_refused(tmp_path: Path, layout: str) -> None:
    if layout == "eurosat_root":
        root = _fake_root(tmp_path / "data")
        match = r"is a EuroSAT folder.*use --source eurosat"
    else:
        _folder(tmp_path / "ds" / "val" / "A", 2, (20, 20))
        _folder(tmp_path / "ds" / "test" / "A", 2, (20, 20))
        root = tmp_path / "ds" / "val" if layout == "val_root" else tmp_path / "ds"
        match = r"is a validation/test folder" if layout == "val_root" else r"but no train/ folder"
    with pytest.raises(ConfigError, match=match) as exc:
        open_source(parse_source(f"image_folder:{root}"))
    _one_line(exc)


def test_missing_root_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"folder .*nope does not exist"):
        open_source(parse_source(f"image_folder:{tmp_path / 'nope'}"))


def test_geotiff_folder_train_split_and_bands(tmp_path: Path) -> None:
    root = tiffx.make_split_classes(tmp_path / "tif")
    notes: list[str] = []
    spec = parse_source(f"geotiff_folder:{root},bands=B04+B03+B02,range=0+4095")
    opened = open_source(spec, notes.append)
    assert opened.count > 0 and all("train" in p.parts for p in opened.paths)
    assert any("reading only train/" in m for m in notes)
    img = opened.read(0)
    assert img.dtype == np.uint8 and img.shape == (tiffx.SIZE, tiffx.SIZE, 3)
    assert load_source(opened, 8).whole.shape == (opened.count, 8, 8, 3)
    with pytest.raises(ConfigError, match=r"unknown band 'B99'"):
        open_source(parse_source(f"geotiff_folder:{root},bands=B99+B03+B02"))


def test_mask_folder_images_labels_ignored(tmp_path: Path) -> None:
    root = maskfx.make_index(tmp_path / "masks_ds")
    opened = open_source(parse_source(f"mask_folder:{root}"))
    assert opened.count == len(maskfx.SIZES) and all(
        p.parent.name == "images" for p in opened.paths
    )
    assert opened.read(0).shape == (*maskfx.SIZES[0], 3)


def test_dubai_never_reads_the_bench_validation_tile(tmp_path: Path) -> None:
    from satdifuser.bench.dubai import build_parser

    assert [t for ts in build_parser().get_default("val_tiles") for t in ts] == list(
        DUBAI_VAL_TILES
    )
    root = maskfx.make_dubai(tmp_path)
    notes: list[str] = []
    opened = open_source(parse_source(f"mask_folder:{root}"), notes.append)
    assert {p.parts[-3] for p in opened.paths} == {"tile_1", "tile_2"}
    assert any("Dubai tiles [1, 2]" in m for m in notes)
    assert open_source(parse_source(f"mask_folder:{root},tiles=2")).count == len(maskfx.SIZES)
    with pytest.raises(ConfigError, match=r"tile 8 is the validation tile") as exc:
        open_source(parse_source(f"mask_folder:{root},tiles=1+8"))
    _one_line(exc)


def test_geobench_reads_only_the_train_split(tmp_path: Path) -> None:
    task = gbfx.make_task(tmp_path / "gb", "m-eurosat", n=(3, 2, 2))
    spec = parse_source(f"geobench:{tmp_path / 'gb'},task=m-eurosat")
    opened = open_source(spec)
    assert opened.count == 3 == len(task.ids["train"])
    assert {p.stem for p in opened.paths} == set(task.ids["train"])
    assert opened.read(0).shape[2] == 3
    with pytest.raises(ConfigError, match=r"task=\.\.\."):
        open_source(parse_source(f"geobench:{tmp_path / 'gb'}"))


@pytest.mark.skipif(not DUBAI.is_dir(), reason=f"real Dubai tiles absent ({DUBAI})")
def test_real_dubai_tiles_skip_the_validation_tile() -> None:
    opened = open_source(parse_source(f"mask_folder:{DUBAI}"))
    tiles = {p.parts[-3] for p in opened.paths}
    assert "tile_8" not in tiles and tiles and all(t.startswith("tile_") for t in tiles)


# ------------------------------------------------------------------------------- sampling
def test_mixed_weights_are_respected(tmp_path: Path) -> None:
    pool = _pool(
        f"image_folder:{_folder(tmp_path / 'a', 4, (16, 16), value=10)},weight=3",
        f"image_folder:{_folder(tmp_path / 'b', 4, (16, 16), value=200)},weight=1",
    )
    order = MixedOrder(pool.sources, batch_size=8, seed=0, sample_size=16)
    picks = np.array([d.source for k in range(250) for d in order.draws(k)])
    assert abs((picks == 0).mean() - 0.75) < 0.03  # 2000 draws: 4.5 standard deviations
    batch = order.batch(3)
    expected = [10 if d.source == 0 else 200 for d in order.draws(3)]
    assert batch[:, 0, 0, 0].tolist() == expected  # each sample comes from the drawn source


def test_batches_are_pure_in_seed_and_step(tmp_path: Path) -> None:
    pool = _pool(f"image_folder:{_folder(tmp_path / 'a', 3, (40, 40))},crops=16+24")
    a = MixedOrder(pool.sources, 4, seed=1, sample_size=16)
    first = [a.next_batch() for _ in range(3)]
    b = MixedOrder(pool.sources, 4, seed=1, sample_size=16, step=2)  # a resumed order
    assert np.array_equal(b.next_batch(), first[2]) and a.state()["step"] == 3
    other = MixedOrder(pool.sources, 4, seed=2, sample_size=16)
    assert not np.array_equal(other.batch(0), first[0])


def test_crops_are_cut_at_the_scales_and_resized(tmp_path: Path) -> None:
    big = _folder(tmp_path / "big", 2, (80, 100))
    small = _folder(tmp_path / "small", 1, (12, 12))
    pool = _pool(f"image_folder:{big},scale=0.5,crops=16+24", f"image_folder:{small},crops=16")
    large, tiny = pool.sources
    assert len(large.large) == 2 and large.large[0].shape == (40, 50, 3)  # kept whole, scaled
    assert tiny.whole.shape == (1, 16, 16, 3) and not tiny.large  # no larger than 16: resized
    order = MixedOrder(pool.sources, 16, seed=0, sample_size=16)
    draws, batch = order.draws(0), order.batch(0)
    assert batch.shape == (16, 16, 16, 3)
    cut = [d for d in draws if d.source == 0]
    assert {d.side for d in cut} == {16, 24}
    for k, d in enumerate(draws):
        if d.source == 0:
            crop = large.large[d.image][d.y : d.y + d.side, d.x : d.x + d.side]
            want = np.asarray(Image.fromarray(crop).resize((16, 16), Image.BILINEAR))
            assert np.array_equal(batch[k], want)
        else:
            assert np.array_equal(batch[k], tiny.whole[0])
