"""Class colours of a model: one ``[r, g, b]`` (integers 0..255) per class, in class-id order.

Optional. ``fit`` records them when the data has a colour table (``DubaiAerial``'s mask colours,
any ``MaskFolder(colors=...)``), so ``satdifuser predict`` paints classes as the dataset's masks
do. They are saved next to ``class_names`` in ``config.json`` as ``class_colors``; a model
without them (or a folder saved before they existed) uses the default palette.

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from satdifuser.errors import ConfigError

RGB = tuple[int, int, int]
"""One colour: red, green, blue in 0..255."""


def _rgb(entry: Any) -> RGB | None:
    if isinstance(entry, str | bytes) or not isinstance(entry, Sequence) or len(entry) != 3:
        return None
    if not all(isinstance(v, Integral) and not isinstance(v, bool) and 0 <= v <= 255
               for v in entry):  # fmt: skip
        return None
    return int(entry[0]), int(entry[1]), int(entry[2])


def check_class_colors(value: Any, num_classes: int) -> list[RGB] | None:
    """``value`` as one RGB tuple per class, or None when it is None (default palette).

    Raises:
        ConfigError: Not a list of ``num_classes`` entries, or an entry that is not three
            integers in 0..255.
    """
    if value is None:
        return None
    n = len(value) if isinstance(value, Sequence) and not isinstance(value, str | bytes) else None
    if n != num_classes:
        got = f"{n} entries" if n is not None else f"a {type(value).__name__}"
        raise ConfigError(
            f"class_colors has {got} but the model has {num_classes} classes; give one "
            "[r, g, b] per class (or leave class_colors out for the default palette)"
        )
    colors = [_rgb(entry) for entry in value]
    bad = [k for k, c in enumerate(colors) if c is None]
    if bad:
        raise ConfigError(
            f"class_colors[{bad[0]}]={value[bad[0]]!r} is not [r, g, b] with integers in 0..255"
            f" ({len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'}); e.g. [60, 16, 152]"
        )
    return [c for c in colors if c is not None]


__all__ = ["RGB", "check_class_colors"]
