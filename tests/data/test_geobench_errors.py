"""Bad GEO-Bench input: one clear error line naming the file and the problem (issue 4 §7)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from fixtures.geobench import make as gbfx
from satdifuser.data.geobench import GeoBench
from satdifuser.errors import (
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    SatdifuserError,
    UnsafePickleError,
)


def _one_line(exc: pytest.ExceptionInfo[SatdifuserError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def _rewrite_attrs(path: Path, **changes: object) -> None:
    from satdifuser.data.safe_pickle import decode_pickle_attr, to_plain

    with h5py.File(path, "r+") as h5:
        attrs = decode_pickle_attr(h5.attrs["pickle"], str(path))
        attrs.update(changes)
        # stubs cannot be pickled again by reference: write the plain-dict form
        h5.attrs["pickle"] = str(pickle.dumps(to_plain(attrs), protocol=4))


def test_missing_partition_file_lists_the_available_ones(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-eurosat")
    with pytest.raises(DatasetNotFoundError) as exc:
        GeoBench(tmp_path, partition="0.25x_train")
    msg = _one_line(exc)
    assert "0.25x_train_partition.json: partition file not found" in msg
    assert "0.01x_train" in msg and "default" in msg


def test_dangling_default_symlink_names_its_target(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-eurosat", symlink_default=True)
    (fx.task_dir / "original_partition.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="a symlink to the missing 'original_partition"):
        GeoBench(tmp_path)


def test_unknown_band_name_suggests_close_names(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-chesapeake")
    with pytest.raises(ConfigError) as exc:
        GeoBench(tmp_path, task="m-chesapeake", view="multispectral", bands=["Red", "NearInfrard"])
    msg = _one_line(exc)
    assert "unknown band 'NearInfrard'" in msg and "did you mean 'NearInfrared'" in msg
    assert "m-chesapeake" in msg


def test_corrupt_hdf5_names_the_file(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    bad = fx.task_dir / f"{fx.ids['train'][1]}.hdf5"
    bad.write_bytes(b"this is not hdf5" * 20)
    ds = GeoBench(tmp_path, task="m-pv4ger")
    ds[0]
    with pytest.raises(DataFormatError) as exc:
        ds[1]
    msg = _one_line(exc)
    assert str(bad) in msg and "corrupt or truncated" in msg


def test_truncated_hdf5_names_the_file(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    bad = fx.task_dir / f"{fx.ids['train'][0]}.hdf5"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError) as exc:
        GeoBench(tmp_path, task="m-pv4ger")[0]  # the first file is also read at init
    assert str(bad) in _one_line(exc)


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    part = fx.task_dir / "default_partition.json"
    data = json.loads(part.read_text())
    data["test"] = []
    part.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as exc:
        GeoBench(tmp_path, task="m-pv4ger", split="test")
    msg = _one_line(exc)
    assert str(part) in msg and "split 'test' is empty" in msg


def test_missing_sample_file_is_reported_at_init(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    gone = fx.task_dir / f"{fx.ids['valid'][0]}.hdf5"
    gone.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"id_0003\.hdf5: sample listed in default_partition\.json \(val\) is missing \(1 of 2"):  # noqa: E501
        GeoBench(tmp_path, task="m-pv4ger", split="val")


def test_classification_label_out_of_range(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-brick-kiln")
    bad = fx.task_dir / f"{fx.ids['train'][1]}.hdf5"
    _rewrite_attrs(bad, label=7)
    ds = GeoBench(tmp_path, task="m-brick-kiln")
    with pytest.raises(DataFormatError) as exc:
        ds[1]
    msg = _one_line(exc)
    assert str(bad) in msg and "label 7 is out of range for 2 classes" in msg


def test_multilabel_target_of_wrong_length(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-bigearthnet")
    bad = fx.task_dir / f"{fx.ids['train'][0]}.hdf5"
    _rewrite_attrs(bad, label=np.ones(19, dtype=np.int64))
    with pytest.raises(DataFormatError, match=r"multi-label target has shape \(19,\)"):
        GeoBench(tmp_path, task="m-bigearthnet")[0]


def test_mask_value_out_of_range(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-nz-cattle")
    bad = fx.task_dir / f"{fx.ids['train'][0]}.hdf5"
    with h5py.File(bad, "r+") as h5:
        h5["label"][0, 0] = 9
    with pytest.raises(DataFormatError) as exc:
        GeoBench(tmp_path, task="m-nz-cattle")[0]
    msg = _one_line(exc)
    assert str(bad) in msg and "mask holds values [9] outside 0..1" in msg


def test_mask_and_image_size_mismatch(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger-seg")
    bad = fx.task_dir / f"{fx.ids['train'][2]}.hdf5"
    with h5py.File(bad, "r+") as h5:
        del h5["label"]
        h5.create_dataset("label", data=np.zeros((12, 12), dtype=np.int16))
    ds = GeoBench(tmp_path, task="m-pv4ger-seg")
    with pytest.raises(DataFormatError) as exc:
        ds[2]
    msg = _one_line(exc)
    assert str(bad) in msg and "label mask is 12x12 but no band has that size" in msg


def test_malicious_pickle_in_a_sample_is_rejected(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    bad = fx.task_dir / f"{fx.ids['train'][1]}.hdf5"
    target = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {target}",))

    with h5py.File(bad, "r+") as h5:
        h5.attrs["pickle"] = str(pickle.dumps({"label": Evil()}, protocol=4))
    ds = GeoBench(tmp_path, task="m-pv4ger")
    with pytest.raises(UnsafePickleError) as exc:
        ds[1]
    assert str(bad) in _one_line(exc) and not target.exists()


def test_malicious_task_specs_are_rejected(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    (fx.task_dir / "task_specs.pkl").write_bytes(pickle.dumps(print))
    with pytest.raises(UnsafePickleError, match=r"task_specs\.pkl: pickle refers to builtins\.pr"):
        GeoBench(tmp_path, task="m-pv4ger")


def test_unknown_split_and_view(tmp_path: Path) -> None:
    gbfx.make_task(tmp_path, "m-pv4ger")
    with pytest.raises(ConfigError, match="split='dev' is not one of"):
        GeoBench(tmp_path, task="m-pv4ger", split="dev")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="view='hsv'"):
        GeoBench(tmp_path, task="m-pv4ger", view="hsv")  # type: ignore[arg-type]


def test_missing_band_stats_for_standardize(tmp_path: Path) -> None:
    fx = gbfx.make_task(tmp_path, "m-pv4ger")
    (fx.task_dir / "band_stats.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="use ms_scaling='raw'"):
        GeoBench(tmp_path, task="m-pv4ger", view="multispectral")
    assert GeoBench(tmp_path, task="m-pv4ger", view="multispectral", ms_scaling="raw")[0]
