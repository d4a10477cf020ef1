"""Batches mixed from several sources, each a pure function of ``(seed, step)`` (exact resume).

Each sample of batch ``k`` draws, from ``numpy.random.default_rng([seed, TAG, k])``: its source
(probabilities ``weight / sum(weights)``), an image of that source (uniformly), and for an image
kept whole (larger than ``sample_size``) a crop side among the source's ``crops`` (capped by the
image's shorter side) and a position; the crop is resized to ``sample_size`` (bilinear). A single
source of whole images is not mixed: it is walked in epochs by
:class:`~satdifuser.pretrain.image_pool.BatchOrder`, as ``satdifuser pretrain`` always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from satdifuser.errors import ConfigError
from satdifuser.pretrain.sources_load import LoadedSource

TAG = 0x5D1F  # separates these draws from the epoch permutations of BatchOrder


@dataclass(frozen=True)
class Draw:
    """Where one sample comes from: source, image, crop side and top-left corner (0 if whole)."""

    source: int
    image: int
    side: int
    y: int
    x: int


class MixedOrder:
    """Draws batches from ``sources``; the state is the step (``epoch``: passes over the pool)."""

    def __init__(
        self,
        sources: list[LoadedSource],
        batch_size: int,
        seed: int,
        sample_size: int,
        step: int = 0,
    ):
        if not sources or any(s.count == 0 for s in sources):
            raise ConfigError("every pre-training source needs at least one image")
        self.sources, self.batch_size, self.seed = sources, batch_size, seed
        self.sample_size, self.step = sample_size, step
        weights = np.asarray([s.spec.weight for s in sources], dtype=np.float64)
        self.p = weights / weights.sum()
        self.n = sum(s.count for s in sources)

    @property
    def epoch(self) -> int:
        """Images drawn so far divided by the pool size (whole passes)."""
        return self.step * self.batch_size // self.n

    @property
    def position(self) -> int:
        """Images drawn in the current pass."""
        return self.step * self.batch_size % self.n

    def draws(self, step: int) -> list[Draw]:
        """The draws of batch ``step`` (a pure function of ``(seed, step)``)."""
        rng = np.random.default_rng([self.seed, TAG, step])
        picks = rng.choice(len(self.sources), size=self.batch_size, p=self.p)
        out = []
        for s in picks:
            src = self.sources[int(s)]
            i = int(rng.integers(src.count))
            if i < len(src.whole):
                out.append(Draw(int(s), i, self.sample_size, 0, 0))
                continue
            img = src.large[i - len(src.whole)]
            h, w = img.shape[:2]
            crops = src.spec.crops or (self.sample_size,)
            side = min(int(crops[int(rng.integers(len(crops)))]), h, w)
            y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
            out.append(Draw(int(s), i, side, y, x))
        return out

    def batch(self, step: int) -> np.ndarray:
        """Batch ``step`` as uint8 ``(B, S, S, 3)``."""
        from PIL import Image

        size = self.sample_size
        out = np.empty((self.batch_size, size, size, 3), dtype=np.uint8)
        for k, d in enumerate(self.draws(step)):
            src = self.sources[d.source]
            if d.image < len(src.whole):
                out[k] = src.whole[d.image]
                continue
            crop = src.large[d.image - len(src.whole)][d.y : d.y + d.side, d.x : d.x + d.side]
            if d.side != size:
                crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
            out[k] = crop
        return out

    def next_batch(self) -> np.ndarray:
        """The batch at the current step, advancing the state."""
        batch = self.batch(self.step)
        self.step += 1
        return batch

    def state(self) -> dict[str, Any]:
        """JSON-ready state (the step is the whole state)."""
        return {
            "kind": "mixed",
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "n": self.n,
        }


__all__ = ["Draw", "MixedOrder"]
