"""Generative pre-training of a small pixel-space diffusion UNet (``satdifuser pretrain``)."""

from __future__ import annotations

from satdifuser.pretrain.config import PretrainConfig, build_scheduler, build_unet
from satdifuser.pretrain.export import export_pipeline
from satdifuser.pretrain.image_pool import find_data_root, load_images, pretrain_paths
from satdifuser.pretrain.trainer import PretrainTrainer, RunOptions, resolve_config

__all__ = [
    "PretrainConfig",
    "PretrainTrainer",
    "RunOptions",
    "build_scheduler",
    "build_unet",
    "export_pipeline",
    "find_data_root",
    "load_images",
    "pretrain_paths",
    "resolve_config",
]
