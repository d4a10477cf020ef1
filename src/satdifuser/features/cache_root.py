"""Default root folder of the feature cache (``demo``, ``bench`` and ``fit`` share it).

The layout under the root is the content-addressed one of
:class:`~satdifuser.features.cache_datamodule.CachedDataModule` (``<root>/<split>-<key>``).
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SATDIFUSER_CACHE"
"""Environment variable naming the feature-cache folder."""


def default_cache_root() -> Path:
    """``$SATDIFUSER_CACHE``, else ``$XDG_CACHE_HOME/satdifuser/features`` (``~/.cache/...``)."""
    env = os.environ.get(CACHE_ENV, "")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "satdifuser" / "features"


__all__ = ["CACHE_ENV", "default_cache_root"]
