"""The one registry type used for backbones, fusers, heads and datasets (timm style)."""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from satdifuser.errors import ConfigError, UnknownNameError

T = TypeVar("T", bound=Callable[..., object])


class Registry(Generic[T]):
    """A name -> factory mapping with helpful errors.

    Args:
        kind: What is registered (``"backbone"``, ``"fusion"`` ...), used in messages and in the
            hint ``satdifuser list <kind>s``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``fn`` under ``name``; a duplicate name raises ``ConfigError``."""

        def deco(fn: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is registered twice; names must be unique")
            self._entries[name] = fn
            return fn

        return deco

    def get(self, name: str) -> T:
        """Return the factory for ``name``.

        Raises:
            UnknownNameError: no such name; the message suggests close names.
        """
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; {hint}known: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def name_of(self, factory: object) -> str:
        """The registered name of ``factory`` (a class or function), for rebuilding by name.

        Raises:
            UnknownNameError: ``factory`` is not registered.
        """
        for name, fn in self._entries.items():
            if fn is factory:
                return name
        label = getattr(factory, "__qualname__", type(factory).__name__)
        raise UnknownNameError(
            f"{self.kind} {label} is not registered, so a saved model cannot name it; register "
            f"it (@{self.kind.upper()}S.register(name)) or use one of {', '.join(self.names())}"
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def recorded_init(cls: type, skip: tuple[str, ...]) -> None:
    """Make instances of ``cls`` remember their constructor keywords in ``init_config``.

    Called from a base class's ``__init_subclass__``: the outermost ``__init__`` of an instance
    records its bound arguments (defaults applied, ``skip`` left out) as a JSON-able dict, so
    a saved model can rebuild the module from its registry name and ``init_config`` alone.
    """
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_records_init", False):
        return
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        if "init_config" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            config = {k: v for k, v in list(bound.arguments.items())[1:] if k not in skip}
            params = signature.parameters
            for k, p in params.items():
                if p.kind is inspect.Parameter.VAR_KEYWORD and k in config:
                    config.update(config.pop(k))
            object.__setattr__(self, "init_config", json.loads(json.dumps(config, default=str)))
        init(self, *args, **kwargs)

    wrapped._records_init = True  # type: ignore[attr-defined]
    cls.__init__ = wrapped  # type: ignore[misc]


__all__ = ["Registry", "recorded_init"]
