"""Restricted unpickling for GEO-Bench files (``task_specs.pkl`` and the HDF5 ``pickle`` attribute).

GEO-Bench pickles reference classes of the ``geobench`` package under three module families
(``geobench.dataset.*`` of the v1.0 release, ``geobench.io.*`` and the legacy ``ccb.io.*``).
satdifuser never imports that package: :class:`SafeUnpickler` resolves those names to stub
classes that only store their state, allows a short list of data-only globals (containers,
dates, numpy arrays of plain numbers and strings, rebuilt from validated names and bytes by
:mod:`.safe_pickle_numpy`, never numpy's own unpickling) and refuses everything else with
:class:`~satdifuser.errors.UnsafePickleError`, so a pickle that would run code (``os.system``
through ``__reduce__``, ``builtins.eval`` ...) is rejected before anything is called.
"""

from __future__ import annotations

import ast
import collections
import datetime
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from satdifuser._typing import PathLike
from satdifuser.data.safe_pickle_numpy import NUMPY_GLOBALS, materialise
from satdifuser.errors import DataFormatError, UnsafePickleError

#: Module prefixes whose classes are replaced by state-only stubs.
STUB_MODULE_PREFIXES: tuple[str, ...] = ("geobench", "ccb")
#: Exact foreign classes (new GEO-Bench writers pickle a CRS and an affine transform per band).
STUB_NAMES: frozenset[tuple[str, str]] = frozenset(
    {("rasterio.crs", "CRS"), ("affine", "Affine"), ("affine.affine", "Affine")}
)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 objects) for stub classes only."""
    if not (isinstance(cls, type) and issubclass(cls, PickleStub) and base is object):
        raise UnsafePickleError(
            f"pickle rebuilds {getattr(cls, '__name__', cls)!s:.60} through "
            "copyreg._reconstructor, which GEO-Bench files use only for geobench classes; "
            "refusing to load it"
        )
    return cls(state) if state is not None else cls()


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: how protocol <= 2 writes ``b""`` (other bytes go through _codecs.encode)."""
    if args:
        raise UnsafePickleError(
            f"pickle calls bytes({str(args)[1:40]}...), which GEO-Bench files never do; "
            "refusing to load it"
        )
    return b""


_ALLOWED: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "tuple"): tuple,
    ("builtins", "bytes"): _empty_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("datetime", "date"): datetime.date,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "timedelta"): datetime.timedelta,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    # numpy dtype/array/scalar reconstruction and _codecs.encode: stand-ins that rebuild plain
    # numeric and string arrays from validated names and bytes (safe_pickle_numpy)
    **NUMPY_GLOBALS,
}
# protocol <= 2 writes Python 2 names (fix_imports): allow the same builtins under __builtin__.
for (_mod, _n), _obj in list(_ALLOWED.items()):
    if _mod == "builtins":
        _ALLOWED[("__builtin__", _n)] = _obj


class PickleStub:
    """Stand-in for a class of the ``geobench`` package (or a CRS/transform) named in a pickle.

    Instances keep whatever state the pickle gives them: a dict state becomes attributes, any
    other state (a tuple, a WKT string ...) is kept in ``_state``; constructor arguments in
    ``_args``. Nothing of the original class runs.
    """

    _stub_module: str = ""
    _stub_name: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> PickleStub:
        obj = super().__new__(cls)
        if args or kwargs:
            obj.__dict__["_args"] = args
            if kwargs:
                obj.__dict__["_kwargs"] = kwargs
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            # (dict_state, slots_state) form
            dict_state, slots = state
            state = {**(dict_state or {}), **slots}
        if isinstance(state, dict):
            self.__dict__.update({str(k): v for k, v in state.items()})
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<stub {self._stub_module}.{self._stub_name} {sorted(self.__dict__)}>"

    @classmethod
    def qualified_name(cls) -> str:
        """``module.Name`` as written in the pickle."""
        return f"{cls._stub_module}.{cls._stub_name}"


_STUB_CACHE: dict[tuple[str, str], type[PickleStub]] = {}


def stub_class(module: str, name: str) -> type[PickleStub]:
    """The (cached) stub class standing for ``module.name``."""
    key = (module, name)
    if key not in _STUB_CACHE:
        _STUB_CACHE[key] = type(
            name,
            (PickleStub,),
            {
                "__module__": module,
                "__qualname__": name,
                "_stub_module": module,
                "_stub_name": name,
            },
        )
    return _STUB_CACHE[key]


def _is_stubbed(module: str, name: str) -> bool:
    if (module, name) in STUB_NAMES:
        return True
    return any(module == p or module.startswith(p + ".") for p in STUB_MODULE_PREFIXES)


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only allow-listed globals and stubs GEO-Bench classes.

    Args:
        file: Binary file object holding the pickle.
        source: Name of the file or attribute, used in error messages.
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, source: str = "<bytes>") -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if _is_stubbed(module, name):
            return stub_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: pickle refers to {module}.{name}, which is not on satdifuser's "
            "allow-list (only data containers, dates, numpy arrays and geobench classes are); "
            "refusing to load it: re-create the file from a trusted GEO-Bench copy"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"{self.source}: pickle uses a persistent id ({pid!r}), which GEO-Bench files never "
            "do; refusing to load it"
        )


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler`.

    Raises:
        UnsafePickleError: the pickle names a global outside the allow-list.
        DataFormatError: the bytes are not a complete, valid pickle.
    """
    try:
        return materialise(SafeUnpickler(io.BytesIO(data), source=source).load(), PickleStub)
    except UnsafePickleError as exc:
        if str(exc).startswith(source):
            raise
        raise UnsafePickleError(f"{source}: {exc}") from None
    except DataFormatError as exc:
        raise DataFormatError(f"{source}: {exc}") from None
    except Exception as exc:  # truncated or malformed pickles raise many kinds
        raise DataFormatError(
            f"{source}: not a readable pickle ({type(exc).__name__}: {exc}); the file is corrupt "
            "or truncated: re-download or re-extract it"
        ) from exc


def safe_load(path: PathLike) -> Any:
    """Unpickle the file at ``path`` with :class:`SafeUnpickler` (see :func:`safe_loads`)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        from satdifuser.errors import DatasetNotFoundError

        raise DatasetNotFoundError(f"{p}: file not found") from None
    return safe_loads(data, source=str(p))


def decode_pickle_attr(value: Any, source: str) -> Any:
    """Decode an HDF5 ``pickle`` attribute: ``str(pickle.dumps(d))`` (a bytes literal) or raw bytes.

    Args:
        value: The attribute as h5py returns it (``str``, ``bytes`` or ``numpy.bytes_``).
        source: File name for error messages.
    """
    if isinstance(value, (bytes, np.bytes_)):
        raw = bytes(value)
        if raw[:1] == b"\x80":  # raw pickle bytes (not what GEO-Bench writes, but harmless)
            return safe_loads(raw, source=source)
        value = raw.decode("utf-8", errors="strict")
    if not isinstance(value, str) or not value.startswith(("b'", 'b"')):
        raise DataFormatError(
            f"{source}: root attribute 'pickle' is not the repr of a bytes literal "
            f"(starts with {str(value)[:12]!r}); expected str(pickle.dumps(dict)) as GEO-Bench "
            "writes"
        )
    try:
        raw = ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise DataFormatError(
            f"{source}: root attribute 'pickle' is not a valid bytes literal ({exc}); the file is "
            "corrupt or truncated"
        ) from exc
    if not isinstance(raw, bytes):
        raise DataFormatError(f"{source}: root attribute 'pickle' does not hold bytes")
    return safe_loads(raw, source=f"{source} (attribute 'pickle')")


def to_plain(obj: Any) -> Any:
    """Recursively turn stubs into plain dicts (with ``"_class"`` = ``module.Name``).

    Containers are rebuilt (tuples stay tuples), numpy arrays and scalars are returned as they
    are, stub *classes* (the legacy pickles store ``Accuracy`` as a class) become their name.
    """
    if isinstance(obj, PickleStub):
        out: dict[str, Any] = {"_class": type(obj).qualified_name()}
        out.update({k: to_plain(v) for k, v in obj.__dict__.items()})
        return out
    if isinstance(obj, type) and issubclass(obj, PickleStub):
        return obj.qualified_name()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


__all__ = [
    "STUB_MODULE_PREFIXES",
    "PickleStub",
    "SafeUnpickler",
    "decode_pickle_attr",
    "safe_load",
    "safe_loads",
    "stub_class",
    "to_plain",
]
