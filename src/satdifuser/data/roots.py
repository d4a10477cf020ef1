"""Where datasets live: one rule for every dataset class and the CLI.

The data root resolves from, in order:

1. the ``root`` argument (``--data`` on the command line, ``data.init_args.root`` in YAML);
2. the environment variable ``$SATDIFUSER_DATA``;
3. a ``shared/data`` folder beside the project: for the current working directory and for the
   installed package folder, every ancestor ``A`` is tried as ``A/shared/data`` (so
   ``../shared/data`` seen from a checkout is found). Only a folder that holds ``name`` counts.

Steps 1 and 2 are taken as given (the dataset checks its files and may download into them);
step 3 never points a download at a shared folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from satdifuser._typing import PathLike
from satdifuser.errors import DatasetNotFoundError

ENV_VAR = "SATDIFUSER_DATA"
"""Environment variable naming the folder that holds the datasets."""


def _ancestors(start: Path) -> list[Path]:
    start = start.resolve()
    return [start, *start.parents]


def shared_data_candidates() -> list[Path]:
    """Candidate ``shared/data`` folders, nearest first, without duplicates (may not exist)."""
    out: list[Path] = []
    for base in (Path.cwd(), Path(__file__).parent):
        for anc in _ancestors(base):
            cand = anc / "shared" / "data"
            if cand not in out:
                out.append(cand)
    return out


def resolve_data_root(root: PathLike | None, name: str = "") -> Path:
    """Resolve the folder that holds dataset ``name`` (e.g. ``"eurosat_rgb"``).

    Args:
        root: Explicit data root; returned as is (expanded) when given.
        name: Folder or file name of the dataset inside the data root; a ``shared/data``
            fallback is accepted only when ``<candidate>/<name>`` exists ("" accepts any).

    Returns:
        The data root (the dataset class looks for ``name`` and its variants inside it).

    Raises:
        DatasetNotFoundError: no argument, no ``$SATDIFUSER_DATA`` and no ``shared/data`` holding
            ``name``; the message lists every place looked at and how to fix it.
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    cands = shared_data_candidates()
    for cand in cands:
        if (cand / name).exists():
            return cand
    shown = ", ".join(str(c) for c in cands[:6]) + (" ..." if len(cands) > 6 else "")
    raise DatasetNotFoundError(
        f"no data root for {name!r}: root=None, ${ENV_VAR} is unset and no shared/data folder "
        f"holding {name!r} was found (looked in {shown}); pass root=DIR (--data DIR on the "
        f"command line), set {ENV_VAR}=DIR, or pass root=DIR with download=True to fetch it"
    )


__all__ = ["ENV_VAR", "resolve_data_root", "shared_data_candidates"]
