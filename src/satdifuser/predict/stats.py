"""Counters and timings of one prediction run (what the CLI and the benchmark report)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

ProgressFn = Callable[[int, int], None]
"""Called after every model batch with ``(tiles done, tiles total)``."""


@dataclass
class PredictStats:
    """What a prediction did.

    Attributes:
        tiles: Windows (segmentation) or images (classification) in the plan.
        skipped: Windows that were entirely nodata, so the model was not run on them.
        pixels: Input pixels covered (height x width summed over inputs).
        seconds: Wall time of the whole run (reading, model, blending, writing).
        model_seconds: Time spent inside ``model.predict_proba`` (incl. moving results to CPU).
    """

    tiles: int = 0
    skipped: int = 0
    pixels: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0

    @property
    def tiles_per_s(self) -> float:
        """Windows (or images) per second of wall time."""
        return self.tiles / self.seconds if self.seconds > 0 else 0.0

    @property
    def mpx_per_s(self) -> float:
        """Input megapixels per second of wall time."""
        return self.pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: PredictStats) -> None:
        """Accumulate another run's counters into this one."""
        self.tiles += other.tiles
        self.skipped += other.skipped
        self.pixels += other.pixels
        self.seconds += other.seconds
        self.model_seconds += other.model_seconds

    def as_dict(self) -> dict[str, Any]:
        """All fields plus the rates, rounded for printing as JSON."""
        d: dict[str, Any] = asdict(self)
        d["tiles_per_s"] = self.tiles_per_s
        d["mpx_per_s"] = self.mpx_per_s
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


__all__ = ["PredictStats", "ProgressFn"]
