"""The fusion contract: many (timestep, tap) maps in, one map per pyramid scale out.

A fuser is built from the extractor's ``feature_info`` alone (channels and reduction of every
map), so it never imports a backbone. ``forward`` takes the extractor's ``list[Tensor]`` in
``feature_info`` order and returns one ``(B, out_channels[s], H_s, W_s)`` map per scale, finest
first. Taps are grouped into scales by their ``reduction``; a tap keeps its projection across
timesteps (method.md section 6).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputShapeError
from satdifuser.features.spec import FeatureInfo, scales, taps_of, timesteps_of
from satdifuser.registry import Registry, recorded_init

FUSIONS: Registry = Registry("fusion")
"""Fusers by registry name: ``concat``, ``global_weighted``, ``local_weighted``, ``moe``."""

_SHORT = [
    (re.compile(r"^up_blocks\.(\d+)$"), r"u\1"),
    (re.compile(r"^down_blocks\.(\d+)$"), r"d\1"),
    (re.compile(r"^mid_block$"), "m"),
    (re.compile(r"^attentions\.(\d+)$"), r"a\1"),
    (re.compile(r"^resnets\.(\d+)$"), r"r\1"),
    (re.compile(r"^transformer_blocks\.0$"), ""),
    (re.compile(r"^transformer_blocks\.(\d+)$"), r"tb\1"),
]


def short_tap_label(tap: str) -> str:
    """Compact plot label of a diffusers module name.

    ``up_blocks.1.attentions.0.transformer_blocks.0.attn1`` -> ``u1.a0.attn1``;
    ``up_blocks.0.resnets.2.conv2`` -> ``u0.r2.conv2``. Unknown parts are kept as they are.
    """
    parts = tap.split(".")
    out: list[str] = []
    i = 0
    while i < len(parts):
        pair = ".".join(parts[i : i + 2])
        for pattern, repl in _SHORT:
            if pattern.match(pair):
                sub = pattern.sub(repl, pair)
                if sub:
                    out.append(sub)
                i += 2
                break
            if pattern.match(parts[i]):
                out.append(pattern.sub(repl, parts[i]))
                i += 1
                break
        else:
            out.append(parts[i])
            i += 1
    return ".".join(out) or tap


class BaseFusion(nn.Module):
    """Base class of all fusers; parses ``feature_info`` into taps, timesteps and scales.

    Attributes set here: ``feature_info``, ``timesteps`` (first-seen order), ``taps`` (first-seen
    order), ``tap_channels``/``tap_scale`` (per tap), ``scale_taps`` (tap indices per scale),
    ``out_reductions`` (per scale, finest first). Subclasses set ``out_channels``.

    Args:
        feature_info: One entry per extracted map, in the order ``forward`` receives them. Every
            timestep must carry the same taps, and a tap keeps its channels and reduction.

    Raises:
        ConfigError: empty or inconsistent ``feature_info``.
    """

    out_channels: list[int]
    out_reductions: list[int]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        recorded_init(cls, skip=("feature_info",))

    def __init__(self, feature_info: Sequence[FeatureInfo]) -> None:
        super().__init__()
        infos = list(feature_info)
        if not infos:
            raise ConfigError(
                f"{type(self).__name__} got an empty feature_info; pass the extractor's "
                "feature_info (one FeatureInfo per tap and timestep)"
            )
        for f in infos:
            if not isinstance(f, FeatureInfo):
                raise ConfigError(
                    f"{type(self).__name__} feature_info holds {type(f).__name__} {f!r}; "
                    "expected satdifuser.features.spec.FeatureInfo entries"
                )
            if f.channels < 1 or f.reduction < 1:
                raise ConfigError(
                    f"feature_info entry {f!r} has channels/reduction < 1; both must be positive"
                )
        self.feature_info = infos
        self.timesteps = timesteps_of(infos)
        self.taps = taps_of(infos)
        self.out_reductions = scales(infos)
        t_pos = {t: i for i, t in enumerate(self.timesteps)}
        tap_pos = {tap: i for i, tap in enumerate(self.taps)}
        index = [[-1] * len(self.taps) for _ in self.timesteps]
        channels: dict[str, tuple[int, int]] = {}
        for pos, f in enumerate(infos):
            ti, li = t_pos[f.timestep], tap_pos[f.tap]
            if index[ti][li] >= 0:
                raise ConfigError(
                    f"feature_info lists tap {f.tap!r} at timestep {f.timestep} twice; each "
                    "(timestep, tap) pair must appear once"
                )
            index[ti][li] = pos
            known = channels.setdefault(f.tap, (f.channels, f.reduction))
            if known != (f.channels, f.reduction):
                raise ConfigError(
                    f"tap {f.tap!r} has (channels, reduction)={(f.channels, f.reduction)} at "
                    f"timestep {f.timestep} but {known} elsewhere; a tap must keep its shape"
                )
        for ti, row in enumerate(index):
            missing = [self.taps[li] for li, p in enumerate(row) if p < 0]
            if missing:
                raise ConfigError(
                    f"feature_info has no {missing[0]!r} at timestep {self.timesteps[ti]} "
                    f"({len(missing)} taps missing); every timestep must carry the same taps"
                )
        self._index = index
        self.tap_channels = [channels[tap][0] for tap in self.taps]
        scale_pos = {r: i for i, r in enumerate(self.out_reductions)}
        self.tap_scale = [scale_pos[channels[tap][1]] for tap in self.taps]
        self.scale_taps = [
            [li for li in range(len(self.taps)) if self.tap_scale[li] == s]
            for s in range(len(self.out_reductions))
        ]

    @property
    def num_timesteps(self) -> int:
        """Number of distinct timesteps T."""
        return len(self.timesteps)

    def _param_dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.float32

    def _grid(self, features: Sequence[Tensor]) -> list[list[Tensor]]:
        """Check ``features`` against ``feature_info``; return them as ``[timestep][tap]``.

        Maps are cast to the parameter dtype and inference-mode tensors are cloned so autograd can
        save them.

        Raises:
            InputShapeError: wrong count, rank, channels, batch size or spatial size.
        """
        name = type(self).__name__
        if isinstance(features, Tensor) or not isinstance(features, Sequence):
            raise InputShapeError(
                f"{name}.forward expects a list of (B, C, H, W) tensors, got "
                f"{type(features).__name__}; pass the extractor's output list"
            )
        if len(features) != len(self.feature_info):
            raise InputShapeError(
                f"{name}.forward got {len(features)} feature maps but feature_info lists "
                f"{len(self.feature_info)}; build the fuser from the same extractor's feature_info"
            )
        dtype = self._param_dtype()
        batch: int | None = None
        sizes: dict[int, tuple[int, int]] = {}
        prepared: list[Tensor] = []
        for x, f in zip(features, self.feature_info, strict=True):
            if x.ndim != 4 or x.shape[1] != f.channels:
                raise InputShapeError(
                    f"{name}: map for tap {f.tap!r} at t={f.timestep} has shape "
                    f"{tuple(x.shape)}, expected (B, {f.channels}, H, W); check the extractor"
                )
            batch = x.shape[0] if batch is None else batch
            size = sizes.setdefault(f.reduction, (x.shape[2], x.shape[3]))
            if x.shape[0] != batch or (x.shape[2], x.shape[3]) != size:
                raise InputShapeError(
                    f"{name}: map for tap {f.tap!r} at t={f.timestep} has shape "
                    f"{tuple(x.shape)}, expected batch {batch} and size {size} like the other "
                    f"maps of reduction {f.reduction}"
                )
            if x.is_inference():
                x = x.clone()
            prepared.append(x.to(dtype))
        return [[prepared[p] for p in row] for row in self._index]

    def aux_loss(self) -> Tensor:
        """Auxiliary loss to add to the task loss (already scaled); 0 for fusers without one."""
        ref = next(iter(self.parameters()), None)
        return torch.zeros((), device=ref.device if ref is not None else None)

    def interpretable_weights(self) -> dict[str, Tensor]:
        """Weights worth plotting, detached, on CPU (empty when the fuser has none)."""
        return {}

    def weight_labels(self) -> dict[str, list[str]]:
        """Axis labels for plots: ``timesteps`` (``t=21``...) and ``taps`` (short names)."""
        short = [short_tap_label(t) for t in self.taps]
        if len(set(short)) != len(short):
            short = list(self.taps)
        return {"timesteps": [f"t={t}" for t in self.timesteps], "taps": short}

    def weight_axes(self) -> dict[str, tuple[list[str], list[str]]]:
        """Row and column labels of each 2-D entry of :meth:`interpretable_weights`."""
        labels = self.weight_labels()
        return {k: (labels["timesteps"], labels["taps"]) for k in self.interpretable_weights()}

    def forward(self, features: list[Tensor]) -> list[Tensor]:  # pragma: no cover - abstract
        """Fuse the maps; one ``(B, out_channels[s], H_s, W_s)`` tensor per scale, finest first."""
        raise NotImplementedError


def create_fusion(name: str, feature_info: Sequence[FeatureInfo], **kwargs: object) -> BaseFusion:
    """Build a registered fuser by name.

    Raises:
        UnknownNameError: unknown ``name`` (with close-name suggestions).
        ConfigError: a keyword the fuser does not take.
    """
    cls = FUSIONS.get(name)
    accepted = [p for p in inspect.signature(cls).parameters if p != "feature_info"]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"fusion {name!r} takes no argument {key!r}; accepted: {', '.join(accepted)}"
            )
    return cls(feature_info, **kwargs)


__all__ = ["FUSIONS", "BaseFusion", "create_fusion", "short_tap_label"]
