"""Hostile numpy pickles: the restricted unpickler must refuse them in-process, never crash.

Each pickle below is built with the real numpy globals, so it names only allow-listed
``module.name`` pairs; the danger is in the arguments and states (a structured dtype with an
object field and its flags cleared, raw bytes read as object pointers ...). Before the fix some
of them segfaulted the test process.
"""

from __future__ import annotations

import copyreg
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures.geobench.make import fake_geobench
from satdifuser.data.safe_pickle import PickleStub, decode_pickle_attr, safe_load, safe_loads
from satdifuser.errors import DataFormatError, SatdifuserError, UnsafePickleError

try:
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]

OBJ = np.dtype("O")
# (version, byteorder, subarray, names, fields, elsize, alignment, flags=0: "holds no object")
STRUCT_STATE = (3, "|", None, ("a",), {"a": (OBJ, 0)}, 8, 1, 0)


class _Reduce:
    """Pickles as the given ``__reduce__`` tuple (how an attacker writes arbitrary opcodes)."""

    def __init__(self, *reduce: Any) -> None:
        self.reduce = reduce

    def __reduce__(self) -> tuple[Any, ...]:
        return self.reduce


class _NewObj(_Reduce):
    """Pickles as ``NEWOBJ cls(*args)`` followed by ``BUILD state``."""

    def __init__(self, cls: type, args: tuple[Any, ...], state: Any) -> None:
        super().__init__(copyreg.__newobj__, (cls, *args), state)  # type: ignore[attr-defined]
        self.cls = cls

    @property  # the pickler checks that args[0] is the object's class
    def __class__(self) -> type:  # type: ignore[override]
        return self.cls


def _struct_dtype(spec: str = "V8") -> _Reduce:
    return _Reduce(np.dtype, (spec, False, True), STRUCT_STATE)


def _array_of(dtype: Any, raw: bytes = b"\x41" * 8, shape: tuple[int, ...] = (1,)) -> _Reduce:
    return _Reduce(_reconstruct, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, raw))


HOSTILE: dict[str, Any] = {
    # the reported crash: struct dtype with an object field, flags cleared, filled from bytes
    "struct-object-field": _array_of(_struct_dtype()),
    # the same layout forced onto a plain float dtype through its state
    "float-with-object-fields": _array_of(_struct_dtype("f8")),
    # object dtype directly, raw bytes as pointers
    "object-from-bytes": _array_of(np.dtype("O")),
    # an ordinary object array (list pickle): refused too, object arrays are never rebuilt
    "object-array": np.array([1, "a", None], dtype=object),
    # numpy scalar of object dtype from 8 raw bytes
    "object-scalar": _Reduce(scalar, (OBJ, b"\x41" * 8)),
    "struct-scalar": _Reduce(scalar, (_struct_dtype(), b"\x41" * 8)),
    # protocol-5 path with an object dtype
    "frombuffer-object": _Reduce(_frombuffer, (bytearray(b"\x41" * 8), OBJ, (1,), "C")),
    # sub-array and void dtypes
    "subarray-dtype": _array_of(np.dtype(("f8", (2,))), b"\x00" * 16),
    "void-dtype": _array_of(np.dtype("V8")),
    # NEWOBJ on numpy.ndarray / numpy.dtype, then BUILD with a hostile state
    "newobj-ndarray": _NewObj(np.ndarray, ((1,),), (1, (1,), _struct_dtype(), False, b"A" * 8)),
    "newobj-dtype": _NewObj(np.dtype, ("V8",), STRUCT_STATE),
    "newobj-float-dtype": _NewObj(np.dtype, ("f8",), STRUCT_STATE),
    # copyreg._reconstructor building a real numpy dtype / ndarray
    "reconstructor-dtype": _Reduce(copyreg._reconstructor, (np.dtype, np.dtype, "O")),  # type: ignore[attr-defined]
    "reconstructor-ndarray": _Reduce(copyreg._reconstructor, (np.ndarray, np.ndarray, (1,))),  # type: ignore[attr-defined]
    # _reconstruct of a sub-type other than ndarray
    "reconstruct-subtype": _Reduce(_reconstruct, (np.dtype, (0,), b"b")),
    # a second BUILD on a dtype that already has its state (after its first use)
    "dtype-state-twice": _Reduce(np.dtype, ("f8", False, True), STRUCT_STATE),
}
# codec other than latin-1 through the allow-listed _codecs.encode
HOSTILE["codecs-rot13"] = _Reduce(__import__("codecs").encode, ("abc", "rot13"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_numpy_pickle_is_refused(name: str, protocol: int) -> None:
    blob = pickle.dumps({"label": HOSTILE[name]}, protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl: .*refusing to load it"):
        safe_loads(blob, source="evil.pkl")


def test_struct_object_dtype_in_an_hdf5_attribute_is_refused() -> None:
    blob = pickle.dumps({"label": HOSTILE["struct-object-field"]}, protocol=4)
    with pytest.raises(UnsafePickleError, match="numpy dtype 'V8'"):
        decode_pickle_attr(str(blob), "id_0000.hdf5")


def test_hostile_task_specs_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "task_specs.pkl"
    path.write_bytes(pickle.dumps(HOSTILE["struct-object-field"], protocol=2))
    with pytest.raises(UnsafePickleError, match=str(path)):
        safe_load(path)


def test_numpy_dtype_types_are_not_allow_listed() -> None:
    blob = pickle.dumps(type(np.dtype("O")), protocol=4)  # numpy.dtypes.ObjectDType
    with pytest.raises(UnsafePickleError, match="not on satdifuser's allow-list"):
        safe_loads(blob)


def test_array_whose_bytes_do_not_fit_its_shape_is_a_format_error() -> None:
    blob = pickle.dumps(_array_of(np.dtype("f8"), b"\x00" * 12), protocol=4)
    with pytest.raises(DataFormatError, match="holds 12 bytes, not 8"):
        safe_loads(blob, source="x.pkl")


def test_reference_cycle_is_a_format_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(DataFormatError, match="reference cycle"):
        safe_loads(pickle.dumps(loop))


def test_array_as_dict_key_is_a_format_error() -> None:
    blob = pickle.dumps({np.float64(1.0): 1, "k": _array_of(np.dtype("u1"), b"\x01")})
    assert safe_loads(blob)[np.float64(1.0)] == 1  # scalars are hashable and fine
    hostile = _Reduce(dict, ([(_array_of(np.dtype("u1"), b"\x01"), 1)],))
    with pytest.raises(SatdifuserError):
        safe_loads(pickle.dumps(hostile))


LEGIT = {
    "bool": np.array([True, False]),
    "uint8": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "int64-big-endian": np.arange(4, dtype=">i8"),
    "float16": np.linspace(0, 1, 5).astype(np.float16),
    "complex128": np.array([1 + 2j, 3 - 4j]),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    "unicode": np.array(["04 - Red", "B"]),
    "bytes": np.array([b"ab", b"c"]),
    "empty": np.zeros((0, 3), dtype=np.int16),
    "0-d": np.array(3.5),
}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_numpy_arrays_scalars_and_dtypes_round_trip(protocol: int) -> None:
    shared = np.arange(3, dtype=np.int64)
    data = {
        **LEGIT,
        "scalars": [np.float32(1.5), np.int64(-2), np.bool_(True), np.str_("x"), np.uint16(7)],
        "dtype": np.dtype("<f4"),
        "types": (np.float64, np.ndarray, np.dtype),
        "shared": [shared, shared],
    }
    out = safe_loads(pickle.dumps(data, protocol=protocol))
    for key, arr in LEGIT.items():
        assert type(out[key]) is np.ndarray and out[key].dtype == arr.dtype, key
        np.testing.assert_array_equal(out[key], arr)
        assert out[key].flags.writeable
    assert out["fortran"].flags.f_contiguous
    assert out["scalars"] == data["scalars"]
    assert [type(s) for s in out["scalars"]] == [type(s) for s in data["scalars"]]
    assert out["dtype"] == np.dtype("<f4") and out["types"] == (np.float64, np.ndarray, np.dtype)
    np.testing.assert_array_equal(out["shared"][1], shared)


def test_arrays_inside_stub_state_are_rebuilt() -> None:
    with fake_geobench("geobench") as classes:
        label = classes["MultiLabelClassification"]()
        label.hot = np.array([0, 1, 1], dtype=np.int64)
        blob = pickle.dumps({"label": label, "again": label}, protocol=4)
    out = safe_loads(blob)
    assert isinstance(out["label"], PickleStub) and out["again"] is out["label"]
    assert type(out["label"].hot) is np.ndarray
    np.testing.assert_array_equal(out["label"].hot, [0, 1, 1])
