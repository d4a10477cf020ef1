"""Named backbones: tiny test models, SD 2.1 / DiffusionSat architectures, the shipped model.

``create_backbone(name_or_path, **overrides)`` resolves, in order: a registered name, a local
folder (pipeline folder or DiffusionSat release), a hub id (``owner/name``). ``satdifuser list
backbones`` prints the registered names.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from satdifuser.backbones.base import DiffusionBackbone, PredictionType
from satdifuser.backbones.loading import build_unet, build_vae, download_from_hub, is_hub_id
from satdifuser.errors import CheckpointError, ConfigError, UnknownNameError
from satdifuser.registry import Registry

BACKBONES: Registry[Callable[..., DiffusionBackbone]] = Registry("backbone")
"""Registered backbone factories (``satdifuser list backbones``)."""

SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

SD_SCHEDULER: dict[str, Any] = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

TINY_UNET: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "attention_head_dim": [2, 4, 4],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [16, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 32,
}
TINY_PIXEL_UNET: dict[str, Any] = {
    "_class_name": "UNet2DModel",
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [16, 32],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
}
SD21_UNET: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": 96,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "cross_attention_dim": 1024,
    "attention_head_dim": [5, 10, 20, 20],
    "use_linear_projection": True,
    "upcast_attention": True,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ],
}
SD_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 768,
    "scaling_factor": 0.18215,
}


def build_random(
    name: str,
    unet_config: dict[str, Any],
    vae_config: dict[str, Any] | None,
    prediction_type: str,
    seed: int,
    sample_size: int | None,
    metadata: bool = False,
) -> DiffusionBackbone:
    """Build a backbone from configs with seeded random weights (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, md = build_unet(unet_config, None, name, use_metadata=metadata)
        vae = build_vae(vae_config, None, name) if vae_config is not None else None
    return DiffusionBackbone(
        unet,
        {**SD_SCHEDULER, "prediction_type": prediction_type},
        vae=vae,
        metadata_embedding=md,
        sample_size=sample_size,
        name=name,
        pretrained=False,
    )


def _architecture(
    name: str,
    unet_config: dict[str, Any],
    prediction_type: str,
    metadata: bool,
    weights: str | None,
    seed: int,
    sample_size: int | None,
    **load: Any,
) -> DiffusionBackbone:
    if weights is not None:
        return create_backbone(weights, sample_size=sample_size, **load)
    warnings.warn(
        f"backbone {name!r} is built with RANDOM weights (architecture only, e.g. for speed "
        "benchmarks); pass weights='<folder or hub id>' for the trained model",
        stacklevel=3,
    )
    return build_random(name, unet_config, SD_VAE, prediction_type, seed, sample_size, metadata)


@BACKBONES.register("tiny-sd")
def tiny_sd(
    seed: int = 0, sample_size: int = 32, prediction_type: PredictionType = "epsilon"
) -> DiffusionBackbone:
    """Tiny latent text-conditioned UNet (1.5 M params) + tiny VAE, random weights, for tests."""
    return build_random("tiny-sd", TINY_UNET, TINY_VAE, prediction_type, seed, sample_size)


@BACKBONES.register("tiny-diffusionsat")
def tiny_diffusionsat(
    seed: int = 0, sample_size: int = 32, prediction_type: PredictionType = "v_prediction"
) -> DiffusionBackbone:
    """``tiny-sd`` plus 7 DiffusionSat metadata MLPs, v-prediction, random weights, for tests."""
    return build_random(
        "tiny-diffusionsat", TINY_UNET, TINY_VAE, prediction_type, seed, sample_size, True
    )


@BACKBONES.register("tiny-pixel")
def tiny_pixel(
    seed: int = 0, sample_size: int = 32, prediction_type: PredictionType = "epsilon"
) -> DiffusionBackbone:
    """Tiny pixel-space ``UNet2DModel`` (no VAE, 32 px), random weights, for tests."""
    return build_random("tiny-pixel", TINY_PIXEL_UNET, None, prediction_type, seed, sample_size)


@BACKBONES.register("sd21")
def sd21(
    weights: str | None = None, seed: int = 0, sample_size: int | None = None, **load: Any
) -> DiffusionBackbone:
    """Stable Diffusion 2.1 (768-v) UNet + VAE: random weights, or ``weights`` (folder/hub id)."""
    return _architecture(
        "sd21", SD21_UNET, "v_prediction", False, weights, seed, sample_size, **load
    )


@BACKBONES.register("sd21-base")
def sd21_base(
    weights: str | None = None, seed: int = 0, sample_size: int | None = None, **load: Any
) -> DiffusionBackbone:
    """Stable Diffusion 2.1-base (512, epsilon) UNet + VAE: random weights, or ``weights``."""
    cfg = {**SD21_UNET, "sample_size": 64, "upcast_attention": False}
    return _architecture("sd21-base", cfg, "epsilon", False, weights, seed, sample_size, **load)


@BACKBONES.register("diffusionsat-256")
def diffusionsat_256(
    weights: str | None = None, seed: int = 0, sample_size: int | None = None, **load: Any
) -> DiffusionBackbone:
    """DiffusionSat 256 (SD 2.1 UNet + 7 metadata MLPs, v): random weights, or ``weights``."""
    cfg = {**SD21_UNET, "sample_size": 32}
    return _architecture(
        "diffusionsat-256", cfg, "v_prediction", True, weights, seed, sample_size, **load
    )


@BACKBONES.register("diffusionsat-512")
def diffusionsat_512(
    weights: str | None = None, seed: int = 0, sample_size: int | None = None, **load: Any
) -> DiffusionBackbone:
    """DiffusionSat 512 (SD 2.1 UNet + 7 metadata MLPs, v): random weights, or ``weights``."""
    cfg = {**SD21_UNET, "sample_size": 64}
    return _architecture(
        "diffusionsat-512", cfg, "v_prediction", True, weights, seed, sample_size, **load
    )


def _shipped(name: str, sample_size: int | None) -> DiffusionBackbone:
    folder = SHIPPED_WEIGHTS / name
    if not (folder / "unet").is_dir():
        raise CheckpointError(
            f"the shipped weights folder {folder} is absent or incomplete (needs unet/ and "
            "scheduler/); reinstall satdifuser or train it with `satdifuser pretrain`"
        )
    return DiffusionBackbone.from_pretrained(folder, sample_size=sample_size, name=name)


@BACKBONES.register("satdifuser-eurosat-tiny")
def satdifuser_eurosat_tiny(sample_size: int | None = None) -> DiffusionBackbone:
    """The shipped pixel-space UNet pre-trained on EuroSAT RGB (``satdifuser/weights/``):
    Sentinel-2-like imagery at about 10 m."""
    return _shipped("satdifuser-eurosat-tiny", sample_size)


@BACKBONES.register("satdifuser-aerial-tiny")
def satdifuser_aerial_tiny(sample_size: int | None = None) -> DiffusionBackbone:
    """The shipped aerial UNet: ``satdifuser-eurosat-tiny`` fine-tuned on the Dubai aerial
    training tiles at 1.2 m (0.3 m x 4; never the validation tile 8): aerial imagery."""
    return _shipped("satdifuser-aerial-tiny", sample_size)


def _params(fn: Callable[..., Any], skip: int = 0) -> list[str]:
    params = list(inspect.signature(fn).parameters.values())[skip:]
    return [p.name for p in params if p.kind is not p.VAR_KEYWORD]


def _check(what: str, accepted: list[str], overrides: dict[str, Any]) -> None:
    unknown = [k for k in overrides if k not in accepted]
    if unknown:
        raise ConfigError(
            f"create_backbone({what!r}) got unknown override {unknown[0]!r}; accepted: "
            f"{', '.join(dict.fromkeys(accepted))}"
        )


def _load_hub(
    repo_id: str,
    revision: str | None = None,
    hub_cache_dir: str | None = None,
    local_files_only: bool | None = None,
    checkpoint: str | None = None,
    unet_folder: str = "unet",
    resolution: int | None = None,
    sample_size: int | None = None,
    prediction_type: PredictionType | None = None,
) -> DiffusionBackbone:
    path = download_from_hub(repo_id, revision, hub_cache_dir, local_files_only)
    return DiffusionBackbone.from_pretrained(
        path,
        checkpoint=checkpoint,
        unet_folder=unet_folder,
        resolution=resolution,
        sample_size=sample_size,
        prediction_type=prediction_type,
        name=repo_id if revision is None else f"{repo_id}@{revision}",
    )


def create_backbone(name_or_path: str, **overrides: Any) -> DiffusionBackbone:
    """Create a backbone by registered name, local folder or hub id.

    Args:
        name_or_path: A name from ``satdifuser list backbones`` (``tiny-sd``, ``sd21``,
            ``diffusionsat-256``, ``satdifuser-eurosat-tiny`` ...), a pipeline folder or
            DiffusionSat release folder, or a hub id ``owner/name``.
        **overrides: Keyword arguments of the factory (``seed``, ``sample_size``,
            ``prediction_type``, ``weights``) or of the loader (``checkpoint``, ``unet_folder``,
            ``resolution``, ``revision``, ``hub_cache_dir``, ``local_files_only``).

    Raises:
        UnknownNameError: not a name, folder or hub id (close names are suggested).
        CheckpointError: a folder or hub snapshot is missing parts.
        ConfigError: an override the factory does not take.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    loader = _params(_load_hub, 1)
    if name_or_path in BACKBONES:
        factory = BACKBONES.get(name_or_path)
        accepted = _params(factory)
        if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values()):
            accepted += loader
        _check(name_or_path, accepted, overrides)
        return factory(**overrides)
    path = Path(name_or_path).expanduser()
    if path.exists():
        _check(name_or_path, _params(DiffusionBackbone.from_pretrained, 1), overrides)
        return DiffusionBackbone.from_pretrained(path, **overrides)
    if is_hub_id(name_or_path):
        _check(name_or_path, loader, overrides)
        return _load_hub(name_or_path, **overrides)
    close = difflib.get_close_matches(name_or_path, BACKBONES.names(), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    raise UnknownNameError(
        f"backbone {name_or_path!r} is not a registered name, an existing folder or a hub id "
        f"(owner/name); {hint}run `satdifuser list backbones` for the names"
    )


__all__ = ["BACKBONES", "build_random", "create_backbone"]
