"""Stand-ins for the numpy globals that GEO-Bench pickles name, for :mod:`.safe_pickle`.

A pickled array names ``numpy.dtype``, ``numpy.ndarray`` and ``numpy._core.multiarray._reconstruct``
(or ``numpy._core.numeric._frombuffer``, protocol 5); a pickled numpy scalar names
``numpy._core.multiarray.scalar``. Handing the real numpy objects to an unpickler is unsafe even
with an allow-list: ``dtype.__setstate__`` accepts any field layout and flags, so a pickle can
build a structured dtype with an object field whose "no object inside" flag is cleared, then
fill an array of it with raw bytes that numpy reads as a pointer (a segfault, or worse).

So no real numpy object is created while unpickling. :class:`DTypeRef` records the dtype's
*name* (``'f8'``, ``'U5'``) and byte order; :class:`ArrayRef` records shape, dtype and raw
bytes. Only plain, fixed-size kinds are rebuilt (bool, signed and unsigned integers, floats,
complex, fixed-length unicode and byte strings); object, void, structured, sub-array, datetime
and metadata-carrying dtypes raise :class:`~satdifuser.errors.UnsafePickleError`. The real
arrays are built with ``numpy.frombuffer`` from the validated dtype after ``load()`` returns
(:func:`materialise`).
"""

from __future__ import annotations

import codecs
import re
from typing import Any, NoReturn

import numpy as np

from satdifuser.errors import DataFormatError, UnsafePickleError

_SPEC = re.compile(r"^(?:[biufc]\d{1,2}|[US]\d{1,9}|\?)$")
_ALLOWED_KINDS = frozenset("biufcUS")


def _refuse(what: str) -> NoReturn:
    raise UnsafePickleError(
        f"pickle builds {what}; satdifuser rebuilds only numpy arrays of bool, int, uint, "
        "float, complex and fixed-length str/bytes, as GEO-Bench writes; refusing to load it"
    )


class DTypeRef:
    """Stands for ``numpy.dtype`` while unpickling: keeps the name and state, builds nothing."""

    _spec: Any
    _state: Any
    _dtype: np.dtype | None

    def __new__(cls, spec: Any = None, *args: Any, **kwargs: Any) -> DTypeRef:
        obj = super().__new__(cls)
        obj._spec, obj._state, obj._dtype = spec, None, None
        return obj

    def __setstate__(self, state: Any) -> None:
        if self._state is not None or self._dtype is not None:
            _refuse("a numpy dtype whose state is set twice")
        self._state = state

    def resolve(self) -> np.dtype:
        """The validated numpy dtype (built once; the state cannot change afterwards)."""
        if self._dtype is None:
            self._dtype = _build_dtype(self._spec, self._state)
        return self._dtype


def _build_dtype(spec: Any, state: Any) -> np.dtype:
    if not isinstance(spec, str) or not _SPEC.match(spec):
        _refuse(f"a numpy dtype {str(spec)[:40]!r}")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        _refuse(f"a numpy dtype {spec!r}")
    if dtype.kind not in _ALLOWED_KINDS or dtype.hasobject or dtype.fields is not None:
        _refuse(f"a numpy dtype {spec!r}")
    if state is None:
        return dtype
    # version 3: (3, byteorder, subarray, names, fields, elsize, alignment, flags); the flags
    # are ignored, they are numpy's to compute
    if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3):
        _refuse(f"a numpy dtype {spec!r} with an unexpected state {str(state)[:60]}")
    _, order, subarray, names, fields, elsize = state[:6]
    if subarray is not None or names is not None or fields is not None:
        _refuse(f"a structured or sub-array numpy dtype (base {spec!r})")
    if order not in ("<", ">", "|", "="):
        _refuse(f"a numpy dtype {spec!r} with byte order {str(order)[:8]!r}")
    if order in ("<", ">"):
        dtype = dtype.newbyteorder(order)
    if not isinstance(elsize, int) or (elsize != -1 and elsize != dtype.itemsize):
        _refuse(f"a numpy dtype {spec!r} with item size {str(elsize)[:20]} (not {dtype.itemsize})")
    return dtype


def _dtype_of(value: Any) -> np.dtype:
    if not isinstance(value, DTypeRef):
        _refuse(f"a numpy array or scalar whose dtype is a {type(value).__name__}")
    return value.resolve()


def _raw(data: Any) -> bytes:
    if isinstance(data, str):  # Python 2 pickles hold raw data as a latin-1 str
        return data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)):
        _refuse(f"a numpy array from a {type(data).__name__} instead of raw bytes")
    return bytes(data)


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        _refuse(f"a numpy array of shape {str(shape)[:60]}")
    return shape


def _array(shape: Any, dtype: np.dtype, data: Any, fortran: bool) -> np.ndarray:
    shape, raw = _shape(shape), _raw(data)
    count = 1
    for n in shape:
        count *= n
    if len(raw) != count * dtype.itemsize:
        raise DataFormatError(
            f"pickled numpy array of shape {shape} and dtype {dtype} holds {len(raw)} bytes, "
            f"not {count * dtype.itemsize}; the file is corrupt"
        )
    if count == 0:
        return np.empty(shape, dtype=dtype)
    flat = np.frombuffer(raw, dtype=dtype, count=count)
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


class NDArrayRef:
    """Stands for ``numpy.ndarray`` (the sub-type argument of ``_reconstruct``); never built."""

    def __new__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("a numpy.ndarray by calling it directly")


class ArrayRef:
    """A numpy array being unpickled: its state is validated, the array built from the bytes."""

    _array: np.ndarray | None

    def __new__(cls, *args: Any, **kwargs: Any) -> ArrayRef:
        obj = super().__new__(cls)
        obj._array = None
        return obj

    def __setstate__(self, state: Any) -> None:
        if self._array is not None:
            _refuse("a numpy array whose state is set twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            _refuse(f"a numpy array with an unexpected state {str(state)[:60]}")
        shape, dtype, fortran, data = state
        self._array = _array(shape, _dtype_of(dtype), data, bool(fortran))

    def resolve(self) -> np.ndarray:
        """The array (an error when the pickle never gave it a state)."""
        if self._array is None:
            raise DataFormatError("pickled numpy array has no data; the file is corrupt")
        return self._array


def reconstruct(subtype: Any, shape: Any = (0,), typecode: Any = b"b") -> ArrayRef:
    """Stand-in for ``numpy._core.multiarray._reconstruct``: a plain ``ndarray`` only."""
    if subtype is not NDArrayRef:
        _refuse(f"a numpy array of sub-type {getattr(subtype, '__name__', type(subtype).__name__)}")
    return ArrayRef()


def frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> ArrayRef:
    """Stand-in for ``numpy._core.numeric._frombuffer`` (protocol-5 arrays)."""
    if order not in ("C", "F"):
        _refuse(f"a numpy array of order {str(order)[:8]!r}")
    ref = ArrayRef()
    ref._array = _array(shape, _dtype_of(dtype), buffer, order == "F")
    return ref


def scalar(dtype: Any, data: Any = None) -> np.generic:
    """Stand-in for ``numpy._core.multiarray.scalar``: a numpy scalar from its raw bytes."""
    return _array((), _dtype_of(dtype), data, False)[()]


def latin1_encode(text: Any, encoding: Any = "latin1", errors: Any = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``, which protocol <= 2 uses for bytes (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        _refuse(f"bytes through _codecs.encode(..., {str(encoding)[:20]!r})")
    return codecs.encode(text, "latin1")


def _core_names(sub: str, name: str, obj: Any) -> dict[tuple[str, str], Any]:
    return {(f"{core}.{sub}", name): obj for core in ("numpy._core", "numpy.core")}


#: Allow-list entries for the numpy globals (and ``_codecs.encode``), mapped to the stand-ins.
NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): NDArrayRef,
    ("numpy", "dtype"): DTypeRef,
    ("_codecs", "encode"): latin1_encode,
    **_core_names("multiarray", "_reconstruct", reconstruct),
    **_core_names("multiarray", "scalar", scalar),
    **_core_names("numeric", "_frombuffer", frombuffer),
}
# numpy scalar types may appear by name (``numpy.float64``); calling one builds a plain number
for _name in (
    "bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 "
    "complex64 complex128 str_ bytes_"
).split():
    NUMPY_GLOBALS[("numpy", _name)] = getattr(np, _name)

_TYPES: dict[type, type] = {NDArrayRef: np.ndarray, DTypeRef: np.dtype}


def _fill(add: Any, items: list[Any]) -> Any:
    try:
        return add(items)
    except TypeError as exc:  # an array as a dict key or set member
        raise DataFormatError(
            f"pickle holds an unhashable value as a set member or dict key ({exc}); GEO-Bench "
            "files never do: the file is corrupt or not a GEO-Bench file"
        ) from None


def materialise(obj: Any, stub_type: type) -> Any:
    """Replace every stand-in in the unpickled tree by the real numpy object.

    Mutable containers and stubs (instances of ``stub_type``) are updated in place, tuples and
    frozensets rebuilt.

    Raises:
        DataFormatError: the tree holds a reference cycle (GEO-Bench files never do), an array
            as a set member or dict key, or is nested too deeply.
    """
    done: dict[int, tuple[Any, Any]] = {}  # id -> (original, result); keeps ids unique
    active: set[int] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, (ArrayRef, DTypeRef)):
            return node.resolve()
        if isinstance(node, type):
            return _TYPES.get(node, node)
        if not isinstance(node, (dict, list, tuple, set, frozenset, stub_type)):
            return node
        key = id(node)
        if key in done:
            return done[key][1]
        if key in active:
            raise DataFormatError("pickle holds a reference cycle, which GEO-Bench files never do")
        active.add(key)
        if isinstance(node, stub_type):
            node.__dict__.update({k: walk(v) for k, v in node.__dict__.items()})
            out: Any = node
        elif isinstance(node, dict):
            items = [(walk(k), walk(v)) for k, v in node.items()]
            node.clear()
            _fill(node.update, items)
            out = node
        elif isinstance(node, list):
            node[:] = [walk(v) for v in node]
            out = node
        elif isinstance(node, set):
            members = [walk(v) for v in node]
            node.clear()
            _fill(node.update, members)
            out = node
        elif type(node) is frozenset:
            out = _fill(frozenset, [walk(v) for v in node])
        else:
            out = tuple(walk(v) for v in node)
        active.discard(key)
        done[key] = (node, out)
        return out

    try:
        return walk(obj)
    except RecursionError:
        raise DataFormatError("pickle is nested too deeply for a GEO-Bench file") from None


__all__ = [
    "NUMPY_GLOBALS",
    "ArrayRef",
    "DTypeRef",
    "NDArrayRef",
    "materialise",
]
