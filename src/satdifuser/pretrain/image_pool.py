"""The unlabeled image pool for pre-training, preloaded as uint8, and its exact batch order.

A minimal reader of ``eurosat_rgb_split.json`` (paths relative to ``eurosat_rgb/``), kept here so
pre-training needs nothing else. Only the ``unlabeled`` pool may be used: ``val`` and ``test``
must never be seen by the generative model, and ``train`` holds the labelled budgets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

SPLIT_FILE = "eurosat_rgb_split.json"
IMAGE_DIR = "eurosat_rgb"
PRETRAIN_SPLIT = "unlabeled"


def find_data_root(explicit: str | Path | None, env_value: str | None, start: Path) -> Path:
    """Resolve the data root: ``explicit``, then ``env_value``, then ``shared/data`` upward.

    Args:
        explicit: Value of ``--data`` (or None).
        env_value: Value of ``$SATDIFUSER_DATA`` (or None).
        start: Folder to search upward from for ``shared/data``.

    Returns:
        A folder holding ``eurosat_rgb_split.json``.
    """
    for origin, value in (("--data", explicit), ("$SATDIFUSER_DATA", env_value)):
        if value:
            root = Path(value).expanduser()
            if not (root / SPLIT_FILE).is_file():
                raise DatasetNotFoundError(
                    f"{origin}={str(value)!r} has no {SPLIT_FILE}; expected the folder holding "
                    f"{SPLIT_FILE} and {IMAGE_DIR}/, fix the path"
                )
            return root
    for folder in [start.resolve(), *start.resolve().parents]:
        root = folder / "shared" / "data"
        if (root / SPLIT_FILE).is_file():
            return root
    raise DatasetNotFoundError(
        f"no EuroSAT data root found (no --data, no $SATDIFUSER_DATA, no shared/data/{SPLIT_FILE} "
        f"above {start}); pass --data DIR with {SPLIT_FILE} and {IMAGE_DIR}/"
    )


def pretrain_paths(root: Path, split: str = PRETRAIN_SPLIT) -> list[Path]:
    """Image paths of the pre-training pool; refuses any split but ``unlabeled``."""
    if split != PRETRAIN_SPLIT:
        raise ConfigError(
            f"split={split!r} cannot be used for pre-training: only {PRETRAIN_SPLIT!r} may be "
            "(val/test must never be seen, train holds the label budgets); use --split unlabeled"
        )
    split_file = root / SPLIT_FILE
    try:
        data = json.loads(split_file.read_text())
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{split_file} is missing; pass --data DIR holding {SPLIT_FILE}"
        ) from None
    except ValueError as exc:
        raise DataFormatError(f"{split_file} is not valid JSON ({exc}); restore the file") from None
    rel = data.get(PRETRAIN_SPLIT) if isinstance(data, dict) else None
    if not isinstance(rel, list) or not rel:
        raise DataFormatError(
            f"{split_file} has no non-empty list {PRETRAIN_SPLIT!r}; restore the split file"
        )
    return [root / IMAGE_DIR / p for p in rel]


def load_images(paths: Sequence[Path], size: int) -> np.ndarray:
    """Decode images into one ``(N, size, size, 3)`` uint8 array (RGB, resized when needed)."""
    from PIL import Image

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                if img.size != (size, size):
                    img = img.resize((size, size), Image.BILINEAR)
                out[i] = np.asarray(img)
        except FileNotFoundError:
            raise DatasetNotFoundError(
                f"image {path} listed in the split file is missing; restore the dataset"
            ) from None
        except OSError as exc:
            raise DataFormatError(f"cannot decode image {path} ({exc}); replace the file") from None
    return out


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The image order of one epoch: a pure function of ``(seed, epoch)``, so resume is exact."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class BatchOrder:
    """Walks epochs of a fixed-size pool in batches (last partial batch of each epoch dropped).

    The whole state is ``(epoch, position)``; it is saved with each checkpoint.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int = 0, position: int = 0):
        if n < batch_size:
            raise ConfigError(
                f"the pool has {n} images but batch_size={batch_size}; lower --batch-size"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.position = epoch, position
        self._perm = epoch_permutation(seed, epoch, n)

    def next_indices(self) -> np.ndarray:
        """Indices of the next batch, advancing the state."""
        if self.position + self.batch_size > self.n:
            self.epoch += 1
            self.position = 0
            self._perm = epoch_permutation(self.seed, self.epoch, self.n)
        idx = self._perm[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return idx

    def state(self) -> dict[str, int]:
        """JSON-ready state."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "n": self.n}
