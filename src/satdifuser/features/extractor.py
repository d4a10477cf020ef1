"""The frozen diffusion feature extractor (SatDiFuser, Jia et al., ICCV 2025, arXiv 2503.07890).

Images (B, 3, H, W) in [0, 1] are resized to the working size (bilinear, antialias), mapped to
[-1, 1], encoded once (VAE posterior mean by default), noised to every timestep (and ensemble
draw) and passed through the UNet in ONE batched call that stops right after the last tapped
module. ``ddim_inversion`` instead walks the deterministic DDIM inversion (see ``noise.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.backbones import DiffusionBackbone, create_backbone
from satdifuser.errors import ConfigError, InputError, InputShapeError
from satdifuser.features.noise import (
    add_noise,
    ddim_step,
    draw_noise,
    inversion_schedule,
    to_epsilon,
)
from satdifuser.features.spec import (
    DEFAULT_TAPS,
    DEFAULT_TIMESTEPS,
    FeatureInfo,
    FeatureSpec,
    scales,
)
from satdifuser.features.taps import (
    installed_taps,
    latent_sizes,
    resolve_taps,
    run_until_taps,
    to_map,
)

PREPROCESSING = "resize=bilinear-antialias;range=[-1,1];v1"
"""Identifies the image preprocessing in :meth:`FeatureExtractor.identity`."""

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class FeatureExtractor(nn.Module):
    """Frozen diffusion UNet features at several timesteps and taps.

    Args:
        backbone: A :class:`DiffusionBackbone` or anything :func:`create_backbone` takes.
        timesteps: UNet timesteps (0-999); default the reference's effective 21, 61, 161.
        taps: Module patterns (see ``resolve_taps``); default every ``attn1`` and ``conv2`` of the
            decoder (``up_blocks``) like the reference, or ``up_blocks.*.conv2`` for UNets without
            transformer blocks.
        image_size: Square working size in pixels (a multiple of ``total_downsample``); None uses
            the backbone's default; 0 keeps each batch's own size (non-square allowed).
        noise: ``add_noise`` (forward process, fixed seed) or ``ddim_inversion`` (eta 0).
        ensemble: Noise draws averaged per timestep (``add_noise`` only), batched together.
        seed: Seed of the noise draws and of a sampled posterior.
        posterior: VAE posterior ``mean`` (deterministic) or ``sample``.
        dtype: UNet/VAE autocast dtype; outputs are always float32.
        prompt: Text prompt of text-conditioned UNets (embedded once).
        use_metadata: Feed DiffusionSat metadata (zeros when none is given); False drops the term.
        inversion_steps: Steps of the DDIM inversion grid over 1000 timesteps (stride 1000/steps).
        pool: Adaptive-average-pool every map to at most ``pool`` x ``pool`` (None: full maps).
            Part of the spec, so it keys the feature cache; needs a fixed ``image_size``.

    The backbone is frozen and deliberately *not* a registered submodule: it is not part of
    ``state_dict()`` or ``parameters()``; ``.to()``/``.cuda()`` still move it. ``train()`` keeps
    everything in eval mode.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        backbone: str | DiffusionBackbone = "tiny-sd",
        timesteps: Sequence[int] | None = None,
        taps: Sequence[str] | None = None,
        image_size: int | None = None,
        noise: Literal["add_noise", "ddim_inversion"] = "add_noise",
        ensemble: int = 1,
        seed: int = 0,
        posterior: Literal["mean", "sample"] = "mean",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        prompt: str = "a satellite image",
        use_metadata: bool = True,
        inversion_steps: int = 50,
        pool: int | None = None,
    ) -> None:
        super().__init__()
        bb = create_backbone(backbone) if isinstance(backbone, str) else backbone
        if not isinstance(bb, DiffusionBackbone):
            raise ConfigError(
                f"backbone must be a name, path or DiffusionBackbone, got {type(bb).__name__}"
            )
        self._bb = (bb,)  # not a registered submodule (frozen; kept out of state_dict)
        ts = tuple(int(t) for t in (DEFAULT_TIMESTEPS if timesteps is None else timesteps))
        n_train = len(bb.alphas_cumprod)
        if not ts or len(set(ts)) != len(ts) or not all(0 <= t < n_train for t in ts):
            raise ConfigError(
                f"timesteps={list(ts)} must be a non-empty list of distinct integers in "
                f"[0, {n_train - 1}]; e.g. [21, 61, 161]"
            )
        for arg, value, choices in (
            ("noise", noise, ("add_noise", "ddim_inversion")),
            ("posterior", posterior, ("mean", "sample")),
            ("dtype", dtype, tuple(_DTYPES)),
        ):
            if value not in choices:
                raise ConfigError(f"{arg}={value!r} is not one of {', '.join(choices)}")
        if ensemble < 1 or (noise == "ddim_inversion" and ensemble != 1):
            raise ConfigError(
                f"ensemble={ensemble} is invalid: it must be >= 1, and 1 with ddim_inversion "
                "(the inversion is deterministic)"
            )
        size = bb.sample_size if image_size is None else int(image_size)
        if size < 0 or (size and size % bb.total_downsample):
            raise ConfigError(
                f"image_size={image_size} is not a multiple of {bb.total_downsample} (the total "
                f"downsampling of backbone {bb.name!r}); use e.g. "
                f"{max(1, round(max(size, 1) / bb.total_downsample)) * bb.total_downsample}"
            )
        if pool is not None and (isinstance(pool, bool) or not isinstance(pool, int) or pool < 1):
            raise ConfigError(
                f"pool={pool!r} must be an integer >= 1 (e.g. 4 for 4 x 4 maps) or null (full maps)"
            )
        if pool is not None and not size:
            raise ConfigError(
                "pool needs a fixed working size, but image_size=0 keeps each batch's own size; "
                "set image_size (e.g. 64) or pool: null"
            )
        self.backbone_source = backbone if isinstance(backbone, str) else bb.name
        self._inversion_steps = int(inversion_steps)
        self._schedule: list[int] = []
        extra: dict[str, str] = {}
        if noise == "ddim_inversion":
            self._schedule = inversion_schedule(ts, inversion_steps, n_train)
            extra["inversion_steps"] = str(inversion_steps)
        if taps is None:
            names = [n for n, _ in bb.unet.named_modules()]
            has_attn1 = any(n.startswith("up_blocks.") and n.endswith(".attn1") for n in names)
            taps = DEFAULT_TAPS if has_attn1 else ("up_blocks.*.conv2",)
        tap_names = resolve_taps(bb.unet, tuple(taps))
        self.spec = FeatureSpec(
            timesteps=ts,
            taps=tuple(taps),
            image_size=size,
            noise=noise,
            ensemble=int(ensemble),
            seed=int(seed),
            posterior=posterior,
            dtype=dtype,
            prompt=prompt,
            use_metadata=bool(use_metadata),
            extra=extra,
            pool=None if pool is None else int(pool),
        )
        self.tap_names: list[str] = tap_names
        self._levels = len(bb.unet.down_blocks)  # type: ignore[arg-type]
        self._prompt = bb.prompt_embedding(prompt)
        self._tap_channels, self._tap_reduction, self._stop_after = self._probe()
        self.feature_info: list[FeatureInfo] = [
            FeatureInfo(tap, t, self._tap_channels[tap], self._pooled_reduction(tap))
            for t in ts
            for tap in tap_names
        ]
        self.eval()

    def _pooled_reduction(self, tap: str) -> int:
        """Reduction of a tap's map as returned (after the optional pooling)."""
        r, pool, size = self._tap_reduction[tap], self.spec.pool, self.spec.image_size
        if pool is None:
            return r
        side = -(-size // r)  # the UNet's ceil
        return r if side <= pool else max(1, size // pool)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (besides the backbone) that rebuild this extractor."""
        spec = self.spec
        return {
            "timesteps": list(spec.timesteps),
            "taps": list(spec.taps),
            "image_size": spec.image_size,
            "noise": spec.noise,
            "ensemble": spec.ensemble,
            "seed": spec.seed,
            "posterior": spec.posterior,
            "dtype": spec.dtype,
            "prompt": spec.prompt,
            "use_metadata": spec.use_metadata,
            "inversion_steps": self._inversion_steps,
            "pool": spec.pool,
        }

    # ----------------------------------------------------------------- basics
    @property
    def backbone(self) -> DiffusionBackbone:
        """The frozen backbone."""
        return self._bb[0]

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Frozen: stays in eval mode whatever ``mode`` is."""
        super().train(False)
        self.backbone.eval()
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> FeatureExtractor:  # .to(), .cuda(), ...
        super()._apply(fn, recurse)
        self.backbone._apply(fn, recurse)
        if self._prompt is not None:
            self._prompt = fn(self._prompt)
        return self

    @property
    def device(self) -> torch.device:
        """Device of the backbone."""
        return next(self.backbone.unet.parameters()).device

    def _probe(self) -> tuple[dict[str, int], dict[str, int], str]:
        """Dummy pass on the smallest latent: tap channels, reductions and firing order."""
        bb = self.backbone
        side = bb.unet_downsample
        latent = torch.zeros(1, bb.latent_channels, side, side, device=self.device)
        with torch.inference_mode(), installed_taps(bb.unet, self.tap_names) as store:
            order: list[str] = []
            ehs = None if self._prompt is None else self._prompt.to(self.device)
            labels = bb.metadata_labels(None, 1, use_metadata=False)
            # record firing order: dict insertion order of the store
            bb.unet_forward(latent, torch.tensor([0], device=self.device), ehs, labels)
            order = list(store)
            sizes = latent_sizes(side, side, self._levels)
            channels, reduction = {}, {}
            for name in self.tap_names:
                fmap = to_map(store[name], sizes)
                channels[name] = int(fmap.shape[1])
                reduction[name] = bb.latent_downsample * side // int(fmap.shape[2])
        return channels, reduction, order[-1]

    # --------------------------------------------------------------- identity
    def identity(self) -> str:
        """Digest of everything that determines the features (keys the feature cache)."""
        prompt = "none"
        if self._prompt is not None:
            prompt = hashlib.sha256(self._prompt.float().cpu().numpy().tobytes()).hexdigest()[:16]
        return self.spec.digest(self.backbone.weights_id(), PREPROCESSING, prompt)

    def pyramid_channels(self) -> list[int]:
        """Channels of each :meth:`pyramid` level, finest first."""
        return [
            sum(f.channels for f in self.feature_info if f.reduction == r)
            for r in scales(self.feature_info)
        ]

    def pyramid(self, features: Sequence[Tensor], per_timestep: bool = False) -> list[Any]:
        """Group maps by spatial size, finest first.

        Args:
            features: Output of :meth:`forward` (``feature_info`` order).
            per_timestep: False: one tensor per level holding every timestep's taps concatenated
                along channels (timestep-major, then taps in ``feature_info`` order). True: a list
                per timestep of per-level tensors (the reference's layout).

        Returns:
            ``list[Tensor]`` (levels) or ``list[list[Tensor]]`` (timesteps, then levels).
        """
        if len(features) != len(self.feature_info):
            raise InputError(
                f"got {len(features)} feature maps but feature_info lists "
                f"{len(self.feature_info)}; pass the extractor's own output"
            )
        levels = scales(self.feature_info)
        pairs = list(zip(self.feature_info, features, strict=True))
        if not per_timestep:
            return [torch.cat([f for i, f in pairs if i.reduction == r], dim=1) for r in levels]
        return [
            [
                torch.cat([f for i, f in pairs if i.reduction == r and i.timestep == t], 1)
                for r in levels
            ]
            for t in self.spec.timesteps
        ]

    # ---------------------------------------------------------------- forward
    def _check(self, images: Tensor, metadata: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise InputShapeError(
                f"images must be a (B, C, H, W) tensor, got {shape}; add a batch dimension"
            )
        if images.shape[0] == 0:
            raise InputError("images is an empty batch (B=0); pass at least one image")
        if images.shape[1] != self.backbone.in_channels:
            raise InputShapeError(
                f"images have {images.shape[1]} channels but backbone {self.backbone.name!r} takes "
                f"{self.backbone.in_channels}; select the RGB bands"
            )
        if not images.is_floating_point():
            raise InputError(
                f"images have dtype {images.dtype}; pass floats in [0, 1] (e.g. uint8 / 255)"
            )
        if not torch.isfinite(images).all():
            raise InputError("images contain NaN or Inf values; clean or mask them first")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(
                f"image values span [{lo:.4g}, {hi:.4g}] but [0, 1] is expected; rescale "
                "(e.g. divide by 255 or 4095 and clip)"
            )
        if metadata is not None:
            metadata = torch.as_tensor(metadata, dtype=torch.float32)
            if metadata.ndim != 2 or metadata.shape != (images.shape[0], 7):
                raise InputError(
                    f"metadata has shape {tuple(metadata.shape)} but ({images.shape[0]}, 7) is "
                    "expected (lon, lat, gsd, cloud_cover, year, month, day per image); pass one "
                    "row per image or None"
                )
        return images.clamp(0, 1), metadata

    def prepare(self, images: Tensor) -> Tensor:
        """Resize to the working size and map to [-1, 1] (float32)."""
        x = images.float()
        size = self.spec.image_size
        if size and tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        h, w = x.shape[-2:]
        k = self.backbone.total_downsample
        if h % k or w % k:
            raise InputShapeError(
                f"image is {h}x{w} but backbone {self.backbone.name!r} needs multiples of {k}; "
                f"resize or pad (e.g. to {max(1, round(h / k)) * k}x{max(1, round(w / k)) * k}) or "
                "set image_size"
            )
        return x * 2 - 1

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        """Extract features.

        Args:
            images: (B, C, H, W) float in [0, 1].
            metadata: (B, 7) DiffusionSat metadata in physical units (NaN = unknown; the GSD is
                the input's and is scaled by the resize), or None for zeros. Ignored by backbones
                without metadata MLPs.

        Returns:
            float32 maps (B, C_i, H_i, W_i) in ``feature_info`` order (timestep-major, then taps).

        Raises:
            InputError: wrong shape, channels, dtype, range, NaN/Inf, empty batch or metadata.
        """
        images, metadata = self._check(images, metadata)
        with torch.inference_mode():
            feats = self._extract(images.to(self.device), metadata)
            if self.spec.pool is not None:
                from satdifuser.features.pooling import pool_map

                feats = [pool_map(f, self.spec.pool) for f in feats]
        return [f.float().clone() for f in feats]  # normal tensors, usable in autograd

    def _extract(self, images: Tensor, metadata: Tensor | None) -> list[Tensor]:
        bb, spec = self.backbone, self.spec
        x = self.prepare(images)
        batch = x.shape[0]
        dtype = _DTYPES[spec.dtype]
        autocast = torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32)
        with autocast:
            z0 = bb.encode(x, spec.posterior, spec.seed).float()
            labels = bb.metadata_labels(
                metadata, batch, spec.use_metadata, gsd_scale=images.shape[-2] / x.shape[-2]
            )
        sizes = latent_sizes(z0.shape[-2], z0.shape[-1], self._levels)
        if spec.noise == "add_noise":
            maps = self._batched(z0, labels, autocast)
        else:
            maps = self._inversion(z0, labels, autocast)
        return [to_map(m, sizes) for m in maps]

    def _cond(
        self, n: int, labels: Tensor | None, reps: int
    ) -> tuple[Tensor | None, Tensor | None]:
        ehs = None if self._prompt is None else self._prompt.to(self.device).expand(n, -1, -1)
        if labels is not None:
            labels = labels.repeat(reps, 1)
        return ehs, labels

    def _batched(self, z0: Tensor, labels: Tensor | None, autocast: Any) -> list[Tensor]:
        """All timesteps x ensemble draws in one truncated UNet call; average over draws."""
        bb, spec = self.backbone, self.spec
        nt, k, b = len(spec.timesteps), spec.ensemble, z0.shape[0]
        noise = draw_noise(z0.shape[1:], nt * k, spec.seed).to(z0.device)
        noise = noise.reshape(nt * k, 1, *z0.shape[1:]).expand(-1, b, -1, -1, -1)
        t = torch.tensor(spec.timesteps, device=z0.device).repeat_interleave(k * b)
        x0 = z0.unsqueeze(0).expand(nt * k, -1, -1, -1, -1)
        xt = add_noise(
            x0.reshape(-1, *z0.shape[1:]), noise.reshape(-1, *z0.shape[1:]), bb.alphas_cumprod, t
        )
        ehs, labels = self._cond(xt.shape[0], labels, nt * k)
        with autocast, installed_taps(bb.unet, self.tap_names, self._stop_after) as store:
            run_until_taps(lambda: bb.unet_forward(xt, t, ehs, labels))
        out: list[Tensor] = []
        for ti in range(nt):
            for name in self.tap_names:
                m = store[name].float()
                m = m.reshape(nt, k, b, *m.shape[1:])[ti]
                out.append(m.mean(0) if k > 1 else m[0])
        return out

    def _inversion(self, z0: Tensor, labels: Tensor | None, autocast: Any) -> list[Tensor]:
        """Deterministic DDIM inversion walk; taps at the requested timesteps."""
        bb, spec = self.backbone, self.spec
        wanted = set(spec.timesteps)
        ehs, labels = self._cond(z0.shape[0], labels, 1)
        alphas = bb.alphas_cumprod
        x = z0
        found: dict[int, dict[str, Tensor]] = {}
        for i, t in enumerate(self._schedule):
            last = i == len(self._schedule) - 1
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            taps = self.tap_names if t in wanted else []
            with autocast, installed_taps(bb.unet, taps, self._stop_after if last else None) as st:
                out = run_until_taps(lambda: bb.unet_forward(x, tt, ehs, labels))  # noqa: B023
            if t in wanted:
                found[t] = {n: v.float() for n, v in st.items()}
            if last:
                break
            eps = to_epsilon(out, x, alphas[t], bb.prediction_type)
            x = ddim_step(x, eps, alphas[t], alphas[self._schedule[i + 1]])
        return [found[t][name] for t in spec.timesteps for name in self.tap_names]

    def extra_repr(self) -> str:
        return f"backbone={self.backbone.name!r}, spec={json.dumps(self.spec.to_dict())}"


__all__ = ["PREPROCESSING", "FeatureExtractor"]
