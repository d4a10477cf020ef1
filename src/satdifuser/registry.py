"""The one registry type used for backbones, fusers, heads and datasets (timm style)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

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

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["Registry"]
