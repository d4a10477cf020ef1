from __future__ import annotations

import datetime
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.geobench.make import fake_geobench, fake_georef
from satdifuser.data.safe_pickle import (
    PickleStub,
    decode_pickle_attr,
    safe_load,
    safe_loads,
    to_plain,
)
from satdifuser.errors import DataFormatError, DatasetNotFoundError, UnsafePickleError


class _RunsShell:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


class _Popen:
    def __reduce__(self):
        return (subprocess.Popen, (["true"],))


def test_plain_data_round_trips() -> None:
    data = {
        "date": datetime.date(2020, 1, 2),
        "when": datetime.datetime(2020, 1, 2, 3, 4),
        "names": ("a", "b"),
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "floats": np.linspace(0, 1, 4),
        "scalar": np.float32(1.5),
    }
    for protocol in (2, 4, 5):
        out = safe_loads(pickle.dumps(data, protocol=protocol))
        assert out["date"] == data["date"] and out["when"] == data["when"]
        assert out["set"] == {1, 2} and out["frozen"] == frozenset({"x"})
        np.testing.assert_array_equal(out["arr"], data["arr"])
        assert out["arr"].dtype == np.int16
        assert out["scalar"] == np.float32(1.5)


@pytest.mark.parametrize("family", ["geobench", "geobench.io", "ccb.io"])
def test_geobench_classes_become_stubs_under_every_module_family(family: str) -> None:
    with fake_geobench(family) as classes:
        band = classes["Sentinel2"].__new__(classes["Sentinel2"])
        band.__dict__.update({"name": "04 - Red", "alt_names": ("4", "04", "red")})
        blob = pickle.dumps({"band": band, "loss": classes["Accuracy"]}, protocol=4)
    assert not any(m.startswith(("geobench", "ccb")) for m in sys.modules)  # writer cleaned up
    out = safe_loads(blob)
    assert isinstance(out["band"], PickleStub)
    assert out["band"].name == "04 - Red"
    plain = to_plain(out)
    assert plain["band"] == {
        "_class": f"{family}.dataset.Sentinel2",
        "name": "04 - Red",
        "alt_names": ("4", "04", "red"),
    }
    assert plain["loss"] == f"{family}.task.Accuracy"  # a class reference, not an instance


def test_geobench_package_is_never_imported() -> None:
    with fake_geobench("geobench") as classes:
        blob = pickle.dumps(classes["BandInfo"].__new__(classes["BandInfo"]), protocol=4)
    sys.modules.pop("geobench", None)
    safe_loads(blob)
    assert "geobench" not in sys.modules


def test_non_dict_state_and_constructor_args_are_kept() -> None:
    with fake_georef() as (crs_cls, affine_cls):
        blob = pickle.dumps(
            {"crs": crs_cls("GEOGCS[]"), "transform": affine_cls(1.0, 0.0, 5.0, 0.0, -1.0, 7.0)}
        )
    out = to_plain(safe_loads(blob))
    assert out["crs"]["wkt"] == "GEOGCS[]"
    assert out["transform"]["_args"] == (1.0, 0.0, 5.0, 0.0, -1.0, 7.0)


def test_pickle_running_a_shell_command_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    blob = pickle.dumps(_RunsShell(target))
    with pytest.raises(UnsafePickleError, match=r"refers to (posix|os|nt)\.system"):
        safe_loads(blob, source="evil.pkl")
    assert not target.exists()


@pytest.mark.parametrize("obj", [_Evals(), _Popen()], ids=["eval", "popen"])
def test_other_code_execution_globals_are_rejected(obj: object) -> None:
    with pytest.raises(UnsafePickleError, match="not on satdifuser's allow-list"):
        safe_loads(pickle.dumps(obj))


def test_rejection_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "task_specs.pkl"
    path.write_bytes(pickle.dumps(_Evals()))
    with pytest.raises(UnsafePickleError, match=str(path)):
        safe_load(path)


def test_truncated_pickle_is_a_format_error() -> None:
    blob = pickle.dumps({"a": list(range(100))}, protocol=4)
    with pytest.raises(DataFormatError, match="corrupt or truncated"):
        safe_loads(blob[: len(blob) // 2], source="x.pkl")


def test_missing_file_is_dataset_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="file not found"):
        safe_load(tmp_path / "nope.pkl")


def test_hdf5_attribute_forms_are_decoded() -> None:
    blob = pickle.dumps({"label": 3}, protocol=4)
    assert decode_pickle_attr(str(blob), "f.hdf5") == {"label": 3}
    assert decode_pickle_attr(str(blob).encode(), "f.hdf5") == {"label": 3}
    assert decode_pickle_attr(blob, "f.hdf5") == {"label": 3}


def test_hdf5_attribute_that_is_not_a_bytes_literal_is_rejected() -> None:
    with pytest.raises(DataFormatError, match=r"f\.hdf5: root attribute 'pickle' is not the repr"):
        decode_pickle_attr("__import__('os')", "f.hdf5")
    with pytest.raises(DataFormatError, match="not a valid bytes literal"):
        decode_pickle_attr("b'\\x80\\x04", "f.hdf5")
