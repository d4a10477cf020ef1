"""Inputs the way the ecosystem shapes them -> the RGB ``[0, 1]`` images the backbone expects.

TorchGeo and TerraTorch data modules hand a model float32 ``(B, C, H, W)`` tensors, z-scored per
band with the data module's ``mean``/``std`` (in raw units, e.g. Sentinel-2 DN), in the data
set's band order (TorchGeo EuroSAT-MS: B01..B12 with B8A **last**). Files give uint8 or uint16
rasters. The diffusion backbones take 3-band RGB in ``[0, 1]``. :class:`InputSpec` declares what
comes in; :class:`InputAdapter` maps it:

1. ``zscore``: de-normalise, ``raw = x * std + mean`` (per band, in the units of ``mean``);
2. ``raw``/``zscore``: to the backbone range, ``v = (raw + offset) / scale``;
3. bands: pick the RGB bands by name (``select``), or mix all C bands with a learnable 1x1
   convolution C -> 3 initialised to that same pick (``learned``);
4. clip to ``[0, 1]``.

Which ``scale``? It is the raw value shown as full white (1.0):

=========================  ======  ===================================================
input                      scale   note
=========================  ======  ===================================================
8-bit rasters              255     the default for uint8 when ``scale`` is not declared
Sentinel-2 L1C/L2A DN      10000   physical reflectance (``DN / 10000``); dark images
Sentinel-2 DN, SatDiFuser  4095    the reference SatDiFuser / GEO-Bench RGB rule
Sentinel-2 DN, EuroSAT RGB 2750    brightness of the EuroSAT RGB JPEGs that the shipped
                                   ``satdifuser-eurosat-tiny`` was pre-trained on
=========================  ======  ===================================================

The 2750 is measured, not documented by EuroSAT: TorchGeo's EuroSAT-MS band means (B04 947.6,
B03 1042.9, B02 1118.2 DN) divided by the mean of 450 EuroSAT RGB JPEGs (0.343, 0.379, 0.406)
give 2764, 2749 and 2751. Sentinel-2 L2A of processing baseline 04.00 and later (2022 on) store
``DN = 10000 * reflectance + 1000``: declare ``offset=-1000``.

Everything an adapter needs is :meth:`InputSpec.to_config` (JSON) plus, for ``learned``, the
adapter's ``state_dict`` (``mix.weight``, ``mix.bias``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from satdifuser.data.bands import BAND_TABLES, band_indices, band_table
from satdifuser.errors import ConfigError, InputError, InputShapeError

KINDS = ("unit", "raw", "zscore")
ADAPTERS = ("select", "learned")
RGB_NAMES = ("B04", "B03", "B02")
"""Default RGB bands (Sentinel-2 names; ``red``/``green``/``blue`` match them too)."""


def as_sequence(values: Sequence[float] | Tensor | None) -> tuple[float, ...] | None:
    """Plain floats from a list, tuple, array or tensor of per-band statistics."""
    if values is None:
        return None
    if isinstance(values, Tensor):
        values = values.detach().cpu().flatten().tolist()
    return tuple(float(v) for v in values)  # type: ignore[union-attr]


@dataclass(frozen=True)
class InputSpec:
    """What the images given to a model are: band names in order, value kind and scaling.

    Args:
        bands: Band names in channel order, or a band-table key of
            :data:`satdifuser.data.bands.BAND_TABLES` (``"eurosat_ms"``, ``"sentinel2_l1c"``,
            ``"rgb"`` ...).
        kind: ``unit``: floats already in ``[0, 1]``; ``raw``: raster values (uint8, uint16,
            int16 or float), mapped by ``scale``/``offset``; ``zscore``: ``(raw - mean) / std``
            per band, as TorchGeo/TerraTorch data modules give them.
        scale: Raw value that maps to 1.0 (see the module docstring: 255, 10000, 4095, 2750).
            Required for ``zscore``; for ``raw``, None means 255 for uint8 input and an error for
            other dtypes.
        offset: Added to raw values before ``scale`` (``-1000`` for Sentinel-2 L2A baseline >=
            04.00).
        mean: Per-band means of a ``zscore`` input, in raw units (one per band).
        std: Per-band standard deviations of a ``zscore`` input (one per band, > 0).
        rgb: The three bands fed to the backbone as R, G, B (names or 0-based indices); default
            B04, B03, B02 (``red``/``green``/``blue`` match them), or the only three bands.
        adapter: ``select`` picks the ``rgb`` bands; ``learned`` mixes all bands with a trainable
            1x1 convolution C -> 3 that starts as that pick.

    Raises:
        ConfigError: an unknown kind/adapter/band table, mean/std missing or of the wrong
            length, a non-positive std or scale, or RGB bands that cannot be found.

    Example::

        spec = InputSpec("eurosat_ms", "zscore", scale=2750, mean=MEAN, std=STD)
        rgb01 = InputAdapter(spec)(batch["image"])  # (B, 3, H, W) in [0, 1]

    .. versionadded:: 0.3
    """

    bands: tuple[str, ...] = ("red", "green", "blue")
    kind: Literal["unit", "raw", "zscore"] = "unit"
    scale: float | None = None
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    rgb: tuple[str | int, ...] | None = None
    adapter: Literal["select", "learned"] = "select"
    rgb_indices: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bands = self.bands
        if isinstance(bands, str):
            bands = band_table(bands)
        bands = tuple(str(b) for b in bands)
        if not bands:
            raise ConfigError("InputSpec bands is empty; pass the band names in channel order")
        set_ = object.__setattr__
        set_(self, "bands", bands)
        if self.kind not in KINDS:
            raise ConfigError(f"InputSpec kind={self.kind!r} is not one of {', '.join(KINDS)}")
        if self.adapter not in ADAPTERS:
            raise ConfigError(
                f"InputSpec adapter={self.adapter!r} is not one of {', '.join(ADAPTERS)}"
            )
        if self.scale is not None:
            if not (math.isfinite(float(self.scale)) and float(self.scale) > 0):
                raise ConfigError(f"InputSpec scale={self.scale!r} must be a positive number")
            set_(self, "scale", float(self.scale))
        set_(self, "offset", float(self.offset))
        if self.kind == "unit" and (self.scale not in (None, 1.0) or self.offset):
            raise ConfigError(
                "InputSpec kind='unit' takes no scale/offset (values are already in [0, 1]); "
                "use kind='raw' to scale raster values"
            )
        if self.kind == "zscore":
            if self.scale is None:
                raise ConfigError(
                    "InputSpec kind='zscore' needs scale, the raw value that maps to 1.0 "
                    "(10000 for Sentinel-2 reflectance DN, 2750 for EuroSAT RGB brightness, 1 if "
                    "mean/std are in [0, 1] units)"
                )
            for name in ("mean", "std"):
                values = as_sequence(getattr(self, name))
                if values is None or len(values) != len(bands):
                    got = "none" if values is None else f"{len(values)} values"
                    raise ConfigError(
                        f"InputSpec kind='zscore' needs {name} with one value per band "
                        f"({len(bands)}), got {got}; pass the data module's {name}"
                    )
                set_(self, name, values)
            if not all(s > 0 and math.isfinite(s) for s in self.std or ()):
                raise ConfigError("InputSpec std values must be positive and finite")
        elif self.mean is not None or self.std is not None:
            raise ConfigError(
                f"InputSpec mean/std only apply to kind='zscore', not kind={self.kind!r}"
            )
        where = f"InputSpec bands ({len(bands)})"
        if self.rgb is not None:
            rgb = tuple(self.rgb)
            if len(rgb) != 3:
                raise ConfigError(f"InputSpec rgb names {len(rgb)} bands; name exactly 3 (R, G, B)")
            idx = band_indices(list(rgb), bands, where)
        else:
            try:
                idx = band_indices(list(RGB_NAMES), bands, where)
            except ConfigError:
                if len(bands) != 3:
                    raise ConfigError(
                        f"InputSpec bands {', '.join(bands)} have no B04/B03/B02 "
                        "(red/green/blue); name the RGB bands with rgb=[r, g, b]"
                    ) from None
                idx = [0, 1, 2]
        set_(self, "rgb", tuple(bands[i] for i in idx))
        set_(self, "rgb_indices", tuple(idx))

    @property
    def channels(self) -> int:
        """Number of input bands."""
        return len(self.bands)

    def to_config(self) -> dict[str, Any]:
        """JSON-able description; :meth:`from_config` rebuilds an equal spec."""
        return {
            "bands": list(self.bands),
            "kind": self.kind,
            "scale": self.scale,
            "offset": self.offset,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "rgb": list(self.rgb or ()),
            "adapter": self.adapter,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InputSpec:
        """Rebuild from :meth:`to_config` output (unknown keys are refused)."""
        known = {"bands", "kind", "scale", "offset", "mean", "std", "rgb", "adapter"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"input spec has unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}"
            )
        return cls(**dict(config))

    def describe(self) -> str:
        """One line: bands, kind, scaling, RGB and adapter."""
        scaling = {"unit": "[0, 1]", "raw": f"raw / {self.scale or 'dtype max'}",
                   "zscore": f"z-scored, (x * std + mean) / {self.scale}"}[self.kind]  # fmt: skip
        if self.offset:
            scaling += f" (offset {self.offset:g})"
        return (
            f"{self.channels} bands ({', '.join(self.bands)}), {scaling}, RGB = "
            f"{'/'.join(map(str, self.rgb or ()))} ({self.adapter})"
        )


class InputAdapter(nn.Module):
    """Maps images described by an :class:`InputSpec` to RGB ``(B, 3, H, W)`` in ``[0, 1]``.

    Args:
        spec: The input description (or its :meth:`InputSpec.to_config` dict).

    The mean/std are non-persistent buffers (they live in the spec); only a ``learned``
    adapter has a ``state_dict`` (``mix.weight`` (3, C, 1, 1), ``mix.bias`` (3,)).

    .. versionadded:: 0.3
    """

    out_channels = 3

    def __init__(self, spec: InputSpec | Mapping[str, Any]) -> None:
        super().__init__()
        if not isinstance(spec, InputSpec):
            spec = InputSpec.from_config(spec)
        self.spec = spec
        c = spec.channels
        mean = torch.tensor(spec.mean or [0.0] * c, dtype=torch.float32).view(1, c, 1, 1)
        std = torch.tensor(spec.std or [1.0] * c, dtype=torch.float32).view(1, c, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.register_buffer(
            "rgb_index", torch.tensor(spec.rgb_indices, dtype=torch.long), persistent=False
        )
        self.mix: nn.Conv2d | None = None
        if spec.adapter == "learned":
            self.mix = nn.Conv2d(c, 3, kernel_size=1)
            self.reset_mix()

    @property
    def trainable(self) -> bool:
        """True for a ``learned`` adapter (it has parameters to train)."""
        return self.mix is not None

    @torch.no_grad()
    def reset_mix(self) -> None:
        """Set the learned 1x1 mix to the plain RGB pick (one-hot weights, zero bias)."""
        if self.mix is None:
            return
        self.mix.weight.zero_()
        self.mix.bias.zero_()
        for out, i in enumerate(self.spec.rgb_indices):
            self.mix.weight[out, i, 0, 0] = 1.0

    def check(self, x: Any) -> None:
        """Refuse input that does not match the spec (shape, band count, dtype, finiteness).

        Raises:
            InputShapeError: not ``(B, C, H, W)`` or another band count than the spec names.
            InputError: a dtype the spec's kind cannot take, NaN/Inf, or ``unit`` values
                outside ``[0, 1]``.
        """
        spec = self.spec
        if not isinstance(x, Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputShapeError(
                f"images must be a (B, {spec.channels}, H, W) tensor, got {shape}; add a batch "
                "dimension"
            )
        if x.shape[1] != spec.channels:
            tables = [k for k, v in BAND_TABLES.items() if len(v) == x.shape[1]]
            hint = f" (e.g. bands={tables[0]!r})" if tables else ""
            raise InputShapeError(
                f"images have {x.shape[1]} bands but the input spec names {spec.channels} "
                f"({', '.join(spec.bands)}); pass an input spec with the {x.shape[1]} band names "
                f"in channel order{hint}"
            )
        floating = x.is_floating_point()
        if not floating and (spec.kind != "raw" or x.dtype == torch.bool):
            raise InputError(
                f"images have dtype {x.dtype} but the input spec says kind={spec.kind!r} "
                "(floats); declare kind='raw' with scale (255 for uint8, 10000 for Sentinel-2 DN)"
            )
        if floating and not torch.isfinite(x).all():
            raise InputError("images contain NaN or Inf values; fill or mask them first")
        if spec.kind == "raw" and spec.scale is None and x.dtype != torch.uint8:
            raise InputError(
                f"images have dtype {x.dtype} and kind='raw' but no scale is declared; set scale, "
                "the raw value that maps to 1.0 (10000 for Sentinel-2 reflectance DN, 4095 or "
                "2750 for brighter RGB)"
            )
        if spec.kind == "unit":
            lo, hi = float(x.min()), float(x.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise InputError(
                    f"image values span [{lo:.4g}, {hi:.4g}] but the input spec says [0, 1]; "
                    "declare kind='zscore' with mean/std/scale or kind='raw' with scale"
                )

    def to_unit(self, x: Tensor) -> Tensor:
        """All bands on the backbone scale (de-normalised, offset, divided by scale), unclipped."""
        spec = self.spec
        v = x.float()
        if spec.kind == "zscore":
            v = v * self.std + self.mean
        if spec.kind != "unit":
            scale = spec.scale if spec.scale is not None else 255.0  # raw uint8 (checked)
            v = (v + spec.offset) / scale
        return v

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` as the spec describes -> ``(B, 3, H, W)`` float32 in ``[0, 1]``."""
        self.check(x)
        v = self.to_unit(x)
        rgb = v.index_select(1, self.rgb_index) if self.mix is None else self.mix(v)
        return rgb.clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return self.spec.describe()


def input_spec(value: InputSpec | Mapping[str, Any] | None) -> InputSpec | None:
    """An :class:`InputSpec` from a spec, its config dict, or None."""
    if value is None or isinstance(value, InputSpec):
        return value
    if isinstance(value, Mapping):
        return InputSpec.from_config(value)
    raise ConfigError(
        f"input_spec must be an InputSpec or its config dict, got {type(value).__name__}"
    )


__all__ = ["ADAPTERS", "KINDS", "RGB_NAMES", "InputAdapter", "InputSpec", "as_sequence",
           "input_spec"]  # fmt: skip
