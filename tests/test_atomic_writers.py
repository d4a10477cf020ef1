"""Every single-file writer of satdifuser goes through :mod:`satdifuser._atomic_io`: a unique,
marked temporary sibling (never a fixed ``x.tmp`` / ``.x.partial`` that two writers share and a
killed writer leaves behind), fsynced before the rename; a failed write keeps the old file and
leaves no temporary file."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from satdifuser import _atomic_io

SRC = Path(__file__).resolve().parents[1] / "src" / "satdifuser"


def _classification_text(target: Path) -> None:
    from satdifuser.predict.classification import _write_atomic

    _write_atomic(target, "id,class\na,1\n")


def _figure(target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from satdifuser.data.plotting import save_figure

    fig = plt.figure(figsize=(1, 1))
    save_figure(fig, target, dpi=10)
    assert not plt.fignum_exists(fig.number)  # closed whatever happened


def _sample_grid(target: Path) -> None:
    from satdifuser.pretrain.sampling import save_grid

    save_grid(torch.rand(3, 3, 4, 4), target)


def _pretrain_config(target: Path) -> None:
    from satdifuser.pretrain.config import PretrainConfig

    PretrainConfig().save(target)


def _sources(target: Path) -> None:
    from satdifuser.pretrain.sources import write_sources

    assert write_sources(target.parent, [{"kind": "eurosat", "name": "x"}]) == target


def _loss_log(target: Path) -> None:
    from satdifuser.pretrain.trainer import _truncate_loss_log

    assert _truncate_loss_log(target, 1) == 2


def _download(target: Path) -> None:
    from satdifuser.data.download import download_url

    source = target.parent.parent / "source.bin"
    download_url(source.as_uri(), target)


def _parquet(target: Path) -> None:
    import pyarrow as pa

    from satdifuser.embed.writer import EmbeddingWriter

    table = pa.table({"x": [1, 2, 3]})
    with EmbeddingWriter(target, table.schema) as w:
        w.write(table)


def _png_classes(target: Path) -> None:
    from satdifuser.predict.writers import PngWriter

    w = PngWriter(target, 2, 3, ["a", "b"])
    w.write_rows(np.array([[0, 1, 1], [1, 0, 255]], dtype=np.uint8), None)
    w.finish()


LOSS_CSV = "step,epoch,loss,lr,ema_decay,img_per_s,run_seconds\n" + "".join(
    f"{s},0,0.5,0.001,0.99,10,{s}\n" for s in (1, 2, 3)
)

# name -> (final file name, writer, legacy fixed temporary names the old code used)
WRITERS: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    "predict.classification": ("pred.csv", _classification_text, [".pred.csv.partial"]),
    "data.plotting.save_figure": ("grid.png", _figure, []),
    "pretrain.sampling.save_grid": ("latest.png", _sample_grid, ["latest.png.tmp.png"]),
    "pretrain.config.save": ("config.json", _pretrain_config, ["config.json.tmp"]),
    "pretrain.sources.write_sources": ("sources.json", _sources, ["sources.json.tmp"]),
    "pretrain.trainer._truncate_loss_log": ("loss.csv", _loss_log, ["loss.csv.tmp"]),
    "data.download.download_url": ("file.zip", _download, []),
    "embed.writer.EmbeddingWriter": ("emb.parquet", _parquet, []),
    "predict.writers.PngWriter": ("classes.png", _png_classes, [".classes.png.partial"]),
}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "source.bin").write_bytes(b"downloaded bytes")
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _old_content(name: str) -> bytes:
    return LOSS_CSV.encode() if name == "loss.csv" else b"old"


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_writer_goes_through_a_unique_fsynced_marked_sibling(
    writer: str, out: Path, fs_events: list[tuple[str, object]]
) -> None:
    name, write, legacy = WRITERS[writer]
    target = out / name
    target.write_bytes(_old_content(name))
    for leftover in legacy:  # another writer's (or a killed writer's) fixed temporary name
        (out / leftover).write_bytes(b"not yours")
    events = fs_events
    write(target)
    replaced = [v for k, v in events if k == "replace"]
    assert len(replaced) == 1
    src, dst = replaced[0]  # type: ignore[misc]
    assert dst == target and src.parent == out
    assert src.name.startswith(name + _atomic_io.TMP_MARK)  # removable by remove_tmp_files
    kinds = [k for k, _ in events]
    assert "fsync" in kinds[: kinds.index("replace")]
    assert sorted(p.name for p in out.iterdir()) == sorted([name, *legacy])
    for leftover in legacy:
        assert (out / leftover).read_bytes() == b"not yours"
    assert target.read_bytes() != _old_content(name)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    writer: str, out: Path, disk_full_on_rename: None
) -> None:
    name, write, _ = WRITERS[writer]
    target = out / name
    target.write_bytes(_old_content(name))
    with pytest.raises(OSError, match="No space"):
        write(target)
    assert target.read_bytes() == _old_content(name)
    assert [p.name for p in out.iterdir()] == [name]


def test_written_content_is_unchanged(out: Path) -> None:
    """Same bytes as the hand-rolled writers produced (text files are written as given)."""
    from satdifuser.pretrain.config import PretrainConfig

    _pretrain_config(out / "config.json")
    expected = json.dumps(PretrainConfig().to_dict(), indent=2) + "\n"
    assert (out / "config.json").read_text() == expected
    (out / "loss.csv").write_text(LOSS_CSV)
    _loss_log(out / "loss.csv")
    assert (out / "loss.csv").read_bytes() == (
        b"step,epoch,loss,lr,ema_decay,img_per_s,run_seconds\r\n1,0,0.5,0.001,0.99,10,1\r\n"
    )
    _classification_text(out / "pred.csv")
    assert (out / "pred.csv").read_bytes() == b"id,class\na,1\n"


# Renames left on purpose: whole-folder swaps (a folder is the unit that appears atomically),
# zip entries moved out of the extraction folder, and the GeoTIFF writer's class map +
# probabilities pair streamed through GDAL.
FOLDER_OR_MULTI_FILE_RENAMES = {
    "backbones/base.py",
    "data/download.py",
    "model/pretrained.py",
    "predict/writers.py",
    "pretrain/checkpoint.py",
    "pretrain/export.py",
}


def _renames(path: Path) -> int:
    count = 0
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            on_os = isinstance(f.value, ast.Name) and f.value.id == "os"
            on_tmp = isinstance(f.value, ast.Name) and "tmp" in f.value.id
            if f.attr == "rename" or (f.attr == "replace" and (on_os or on_tmp)):
                count += 1
    return count


def test_no_module_renames_a_temporary_file_by_hand() -> None:
    hand_rolled = {
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "_atomic_io.py" and _renames(p)
    }
    assert hand_rolled <= FOLDER_OR_MULTI_FILE_RENAMES, (
        f"{sorted(hand_rolled - FOLDER_OR_MULTI_FILE_RENAMES)} rename temporary files by hand; "
        "use satdifuser._atomic_io (atomic_write_*, atomic_path, PendingFile)"
    )
