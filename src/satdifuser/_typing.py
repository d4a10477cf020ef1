"""Type aliases shared across satdifuser."""

from __future__ import annotations

import os
from typing import Any, TypeAlias

from torch import Tensor

PathLike: TypeAlias = str | os.PathLike[str]
"""A filesystem path argument."""

Sample: TypeAlias = dict[str, Any]
"""A sample: ``image`` (C, H, W) in [0, 1], ``label`` or ``mask``, ``meta`` (7,), ``id``."""

Batch: TypeAlias = dict[str, Tensor | Any]

__all__ = ["Batch", "PathLike", "Sample"]
