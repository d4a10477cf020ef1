"""What a feature extractor produces, known before it runs.

:class:`FeatureInfo` describes one extracted map (one tap at one timestep); an extractor returns
its maps as a ``list[Tensor]`` in the order of its ``feature_info`` list (timestep-major, then taps
in spec order). Fusion modules are built from that list alone, so they never import a backbone.
:class:`FeatureSpec` is everything that changes the features; its :meth:`FeatureSpec.digest` keys
the on-disk cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

DEFAULT_TIMESTEPS: tuple[int, ...] = (21, 61, 161)
"""The reference's effective UNet timesteps (method.md section 4)."""

DEFAULT_TAPS: tuple[str, ...] = ("up_blocks.*.attn1", "up_blocks.*.conv2")
"""Decoder self-attention outputs and resnet ``conv2`` like the reference."""


@dataclass(frozen=True)
class FeatureInfo:
    """One extracted feature map.

    Args:
        tap: Qualified module name in the UNet
            (``up_blocks.1.attentions.0.transformer_blocks.0.attn1``).
        timestep: UNet timestep on the training schedule (0-999) the map was taken at.
        channels: Channel count C of the map (B, C, H, W).
        reduction: Input pixels per feature pixel along one side (e.g. 8 for a 32x32 map of a
            256 px image).
    """

    tap: str
    timestep: int
    channels: int
    reduction: int


def scales(feature_info: Sequence[FeatureInfo]) -> list[int]:
    """Distinct reductions present, finest (smallest) first: the pyramid levels."""
    return sorted({f.reduction for f in feature_info})


def taps_of(feature_info: Sequence[FeatureInfo]) -> list[str]:
    """Distinct taps in first-seen order."""
    return list(dict.fromkeys(f.tap for f in feature_info))


def timesteps_of(feature_info: Sequence[FeatureInfo]) -> list[int]:
    """Distinct timesteps in first-seen order."""
    return list(dict.fromkeys(f.timestep for f in feature_info))


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that changes extracted features (hashable, JSON-serialisable).

    Args:
        timesteps: UNet timesteps on the training schedule.
        taps: Module-name patterns (``fnmatch`` on qualified names, ``*`` for one or more parts).
        image_size: Working size the images are resized to (square), or None for the backbone's.
        noise: ``add_noise`` (one forward-process draw per timestep, fixed seed) or
            ``ddim_inversion`` (deterministic, eta 0).
        ensemble: Number of noise draws averaged (``add_noise`` only).
        seed: Seed of the noise draws.
        posterior: ``mean`` (deterministic, cacheable) or ``sample`` of the VAE posterior.
        dtype: Compute dtype of the UNet.
        prompt: Text prompt for text-conditioned UNets.
        use_metadata: Feed DiffusionSat metadata embeddings (False drops the term, as the
            reference did).
        pool: Adaptive-average-pool every map to at most ``pool`` x ``pool`` before it leaves
            the extractor (None keeps full maps, as segmentation needs). Small maps make
            classification caches tens of MB instead of GB and fusion training fast.
    """

    timesteps: tuple[int, ...] = DEFAULT_TIMESTEPS
    taps: tuple[str, ...] = DEFAULT_TAPS
    image_size: int | None = None
    noise: Literal["add_noise", "ddim_inversion"] = "add_noise"
    ensemble: int = 1
    seed: int = 0
    posterior: Literal["mean", "sample"] = "mean"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    prompt: str = "a satellite image"
    use_metadata: bool = True
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    pool: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form (tuples become lists); ``pool`` only when set, so the digests of
        unpooled specs stay what they were before pooling existed."""
        out = json.loads(json.dumps(asdict(self)))
        if out.get("pool") is None:
            out.pop("pool", None)
        return out

    def digest(self, *parts: object) -> str:
        """Stable hex digest of this spec plus anything else that identifies the features."""
        payload = json.dumps([self.to_dict(), *parts], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


__all__ = [
    "DEFAULT_TAPS",
    "DEFAULT_TIMESTEPS",
    "FeatureInfo",
    "FeatureSpec",
    "scales",
    "taps_of",
    "timesteps_of",
]
