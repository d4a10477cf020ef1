"""Configuration of generative pre-training: model, schedule and optimisation.

Pixel space, not latent: EuroSAT tiles are 64x64, and an SD-style VAE (downsampling factor 8)
would turn them into 8x8 latents, too coarse for the spatial features satdifuser taps, and the
VAE alone (~84M parameters) would dwarf a 10M-parameter budget. A small pixel-space
``UNet2DModel`` keeps every decoder block at a useful resolution and runs on 2 CPU cores.

The default model is the measured one of ``shared/docs/pretraining.md``: 7.05M parameters,
~25 training images/s with bf16 autocast on 2 CPU threads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from satdifuser._atomic_io import atomic_write_text
from satdifuser.errors import CheckpointError, ConfigError

BetaSchedule = Literal["linear", "cosine"]
PredictionType = Literal["epsilon", "v_prediction"]
LossWeighting = Literal["mse", "min_snr"]

# fields that decide the UNet and its noise schedule: a warm start (--init-from) keeps them
ARCHITECTURE_FIELDS = (
    "sample_size",
    "block_out_channels",
    "down_block_types",
    "up_block_types",
    "layers_per_block",
    "attention_head_dim",
    "norm_num_groups",
    "num_train_timesteps",
)

# diffusers' name of each beta schedule
_DIFFUSERS_BETA = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides the training trajectory (stored in the run dir, fixed on resume).

    Args:
        sample_size: Image side in pixels (images are resized to it when they differ).
        block_out_channels: UNet channels per resolution level.
        down_block_types: diffusers down block class names, one per level.
        up_block_types: diffusers up block class names, one per level.
        layers_per_block: ResNet layers per block.
        attention_head_dim: Channels per attention head.
        norm_num_groups: GroupNorm groups (must divide every channel count).
        num_train_timesteps: DDPM steps.
        beta_schedule: ``linear`` (DDPM, 1e-4 to 0.02) or ``cosine`` (squaredcos_cap_v2).
        prediction_type: ``epsilon`` or ``v_prediction``.
        loss_weighting: ``mse`` (plain MSE on the prediction target) or ``min_snr``
            (Min-SNR-gamma, Hang et al., ICCV 2023: per-sample weight ``min(SNR_t, gamma) /
            SNR_t`` for epsilon, ``min(SNR_t, gamma) / (SNR_t + 1)`` for v prediction, with
            ``SNR_t = alphas_cumprod / (1 - alphas_cumprod)``).
        min_snr_gamma: The ``gamma`` of ``min_snr`` (unused with ``mse``).
        timestep_power: Timesteps are drawn as ``floor(T * u**p)``, ``u ~ U[0, 1)``: 1 is
            uniform (the same draw as ``randint``), above 1 favours low ``t`` (where the
            features are read), below 1 high ``t``. Mean of ``t / T`` is ``1 / (p + 1)``.
        lr: AdamW learning rate after warm-up (constant afterwards).
        warmup_steps: Linear warm-up steps.
        weight_decay: AdamW weight decay.
        grad_clip: Global gradient-norm clip (0 disables).
        batch_size: Images per step.
        flips: Random horizontal and vertical flips.
        rot90: Random 90-degree rotations (with ``flips``: the full dihedral group, uniformly).
        bf16: bf16 autocast for the UNet forward pass where the hardware runs bf16 natively
            (CPUs with AVX512-BF16/AMX, recent GPUs); fp32 elsewhere, as emulated bf16
            convolutions are ~70x slower. Each run records whether bf16 was used.
        ema_max_decay: EMA decay cap; the decay warms up as ``min(cap, (1+step)/(10+step))``.
        seed: Seed of initialisation, data order, flips, noise and timesteps.
    """

    sample_size: int = 64
    block_out_channels: tuple[int, ...] = (32, 64, 128, 192)
    down_block_types: tuple[str, ...] = (
        "DownBlock2D",
        "DownBlock2D",
        "DownBlock2D",
        "AttnDownBlock2D",
    )
    up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D")
    layers_per_block: int = 1
    attention_head_dim: int = 64
    norm_num_groups: int = 32
    num_train_timesteps: int = 1000
    beta_schedule: BetaSchedule = "linear"
    prediction_type: PredictionType = "epsilon"
    loss_weighting: LossWeighting = "mse"
    min_snr_gamma: float = 5.0
    timestep_power: float = 1.0
    lr: float = 2e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    batch_size: int = 64
    flips: bool = True
    rot90: bool = False
    bf16: bool = True
    ema_max_decay: float = 0.999
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("block_out_channels", "down_block_types", "up_block_types"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
                raise ConfigError(f"{name}={value!r} must be a non-empty list")
            object.__setattr__(self, name, tuple(value))
        self._check_types()
        levels = len(self.block_out_channels)
        if len(self.down_block_types) != levels or len(self.up_block_types) != levels:
            raise ConfigError(
                f"block_out_channels has {levels} levels but down_block_types has "
                f"{len(self.down_block_types)} and up_block_types {len(self.up_block_types)}; "
                "give one block type per level"
            )
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ConfigError(
                f"norm_num_groups={self.norm_num_groups} does not divide block_out_channels {bad}; "
                "pick a norm_num_groups that divides every channel count"
            )
        if self.sample_size % (2 ** (levels - 1)):
            raise ConfigError(
                f"sample_size={self.sample_size} is not divisible by 2**{levels - 1}; "
                "use a multiple of the UNet's total downsampling"
            )
        if self.beta_schedule not in _DIFFUSERS_BETA:
            raise ConfigError(
                f"beta_schedule={self.beta_schedule!r} is unknown; expected linear or cosine"
            )
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ConfigError(
                f"prediction_type={self.prediction_type!r} is unknown; "
                "expected epsilon or v_prediction"
            )
        if self.loss_weighting not in ("mse", "min_snr"):
            raise ConfigError(
                f"loss_weighting={self.loss_weighting!r} is unknown; expected mse or min_snr"
            )
        for name in ("min_snr_gamma", "timestep_power"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be > 0")
        if self.batch_size < 1 or self.lr <= 0 or self.warmup_steps < 0:
            raise ConfigError(
                f"batch_size={self.batch_size}, lr={self.lr}, warmup_steps={self.warmup_steps}: "
                "expected batch_size >= 1, lr > 0, warmup_steps >= 0"
            )
        if not 0.0 <= self.ema_max_decay < 1.0:
            raise ConfigError(f"ema_max_decay={self.ema_max_decay} must be in [0, 1)")
        self._check_attention()

    def _check_types(self) -> None:
        """Every field has its type, and counts and rates are in range (a JSON typo is caught)."""
        positive = ("sample_size", "layers_per_block", "attention_head_dim", "norm_num_groups")
        for name in (*positive, "num_train_timesteps", "warmup_steps", "batch_size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name}={value!r} must be an integer")
        for name in (*positive, "num_train_timesteps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        for c in self.block_out_channels:
            if not isinstance(c, int) or isinstance(c, bool) or c < 1:
                raise ConfigError(
                    f"block_out_channels {list(self.block_out_channels)} must be integers >= 1"
                )
        for name in ("down_block_types", "up_block_types"):
            if not all(isinstance(b, str) for b in getattr(self, name)):
                raise ConfigError(f"{name}={list(getattr(self, name))!r} must be block class names")
        numbers = ("lr", "weight_decay", "grad_clip", "ema_max_decay")
        for name in (*numbers, "min_snr_gamma", "timestep_power"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value):
                raise ConfigError(f"{name}={value!r} must be a finite number")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError(
                f"weight_decay={self.weight_decay}, grad_clip={self.grad_clip}: expected >= 0"
            )
        for name in ("flips", "rot90", "bf16"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")

    def _check_attention(self) -> None:
        """Every level with attention (and the mid block) has at least one full head."""
        levels = len(self.block_out_channels)
        attn = {levels - 1: "the mid block"}
        for i, name in enumerate(self.down_block_types):
            if "Attn" in name:
                attn.setdefault(i, name)
        for i, name in enumerate(self.up_block_types):
            if "Attn" in name:
                attn.setdefault(levels - 1 - i, name)
        for level in sorted(attn):
            channels = self.block_out_channels[level]
            if channels < self.attention_head_dim:
                raise ConfigError(
                    f"block_out_channels[{level}]={channels} is below attention_head_dim="
                    f"{self.attention_head_dim}, but {attn[level]} uses attention at that level "
                    "(zero heads); raise the channels or lower --attention-head-dim"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields (tuples become lists)."""
        out = dataclasses.asdict(self)
        out.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> PretrainConfig:
        """Build from :meth:`to_dict` output; an unknown key is an error naming it.

        A missing key takes its default, so a config written before a field existed (e.g.
        ``rot90``, ``loss_weighting``) still loads, with the behaviour it was trained with.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        if not isinstance(data, dict):
            raise ConfigError(f"{source} must be a JSON object of config keys, got {data!r:.60}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source} has unknown key(s) {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> PretrainConfig:
        """Read a config written by :meth:`save`."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot read pre-training config {path}: {exc}; "
                "the run dir is damaged, start a new one with another --out"
            ) from None
        try:
            return cls.from_dict(data, source=str(path))
        except ConfigError as exc:
            if str(path) in str(exc):
                raise
            raise ConfigError(f"{path} holds an invalid config: {exc}") from None

    def unet_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.UNet2DModel`` for this config."""
        return {
            "sample_size": self.sample_size,
            "in_channels": 3,
            "out_channels": 3,
            "layers_per_block": self.layers_per_block,
            "block_out_channels": self.block_out_channels,
            "down_block_types": self.down_block_types,
            "up_block_types": self.up_block_types,
            "attention_head_dim": self.attention_head_dim,
            "norm_num_groups": self.norm_num_groups,
        }

    def scheduler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.DDPMScheduler`` for the training schedule."""
        return {
            "num_train_timesteps": self.num_train_timesteps,
            "beta_schedule": _DIFFUSERS_BETA[self.beta_schedule],
            "beta_start": 0.0001,
            "beta_end": 0.02,
            "prediction_type": self.prediction_type,
            "clip_sample": True,
            "clip_sample_range": 1.0,
        }


def build_unet(config: PretrainConfig):  # -> diffusers.UNet2DModel
    """A freshly initialised UNet for ``config`` (seed the global RNG first for determinism)."""
    from diffusers import UNet2DModel

    return UNet2DModel(**config.unet_kwargs())


def build_scheduler(config: PretrainConfig):  # -> diffusers.DDPMScheduler
    """The DDPM noise schedule used in training."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**config.scheduler_kwargs())


def check_model(config: PretrainConfig) -> None:
    """Build ``config``'s UNet on the meta device and run one forward pass (no memory, ~0.1 s).

    Catches what the field checks cannot: an unknown diffusers block name, or a combination
    diffusers refuses, before any run folder exists.

    Raises:
        ConfigError: diffusers cannot build or run the model.
    """
    import torch

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unet = build_unet(config)
            size = config.sample_size
            unet(torch.zeros(1, 3, size, size), torch.zeros(1, dtype=torch.long))
    except Exception as exc:  # diffusers raises ValueError, TypeError, ZeroDivisionError, ...
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(
            f"the UNet of this config cannot be built ({type(exc).__name__}: {first}); check "
            "--channels, --down-blocks, --up-blocks (diffusers block class names), "
            "--attention-head-dim and --norm-groups"
        ) from None
