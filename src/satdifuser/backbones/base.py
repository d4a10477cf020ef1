"""The backbone contract: a frozen diffusion UNet with its VAE, noise schedule and conditioning."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import UNet2DConditionModel
from torch import Tensor, nn

from satdifuser._typing import PathLike
from satdifuser.backbones.loading import (
    alphas_cumprod_from,
    build_unet,
    build_vae,
    find_parts,
    read_json,
    read_state_dict,
)
from satdifuser.backbones.metadata import MetadataEmbedding, normalize_metadata
from satdifuser.backbones.text import TEXT_TOKENS, encode_prompt
from satdifuser.errors import CheckpointError, ConfigError, InputError

PredictionType = Literal["epsilon", "v_prediction", "sample"]
BACKBONE_FILE = "satdifuser_backbone.json"
PROMPT_FILE = "prompt_embeds.safetensors"

_BACKBONE_KEYS = {"format_version", "name", "sample_size", "prediction_type", "pretrained"}


def _downsamplers(unet: nn.Module) -> int:
    count = 0
    for block in unet.down_blocks:  # type: ignore[union-attr]
        if getattr(block, "downsamplers", None) is not None:
            count += len(block.downsamplers)
    return count


class DiffusionBackbone(nn.Module):
    """A frozen diffusion model used as a feature extractor.

    Args:
        unet: A diffusers ``UNet2DConditionModel`` (latent or text-conditioned) or ``UNet2DModel``.
        scheduler_config: The noise scheduler's config (betas, ``prediction_type``).
        vae: Optional ``AutoencoderKL`` for latent models; its ``scaling_factor`` is used.
        metadata_embedding: DiffusionSat's 7 metadata MLPs (UNet built with an identity class
            embedding), or None.
        text_encoder_dir: Folder of a ``transformers`` text encoder (``text_encoder/``); its
            ``tokenizer/`` sibling is used. Only loaded when a prompt is first encoded.
        prompt_embeds: Cached prompt embeddings ``{prompt: (1, 77, D)}``.
        sample_size: Default working image size in pixels (None: the UNet's ``sample_size`` times
            the latent downsampling).
        name: Registry name or source, for messages and model cards.
        pretrained: Whether the weights are trained (False for random architecture builds).

    Attributes:
        prediction_type: ``epsilon``, ``v_prediction`` or ``sample``.
        alphas_cumprod: (1000,) float64 cumulative alphas of the training schedule (CPU tensor).
        in_channels: Image channels the backbone takes (3 for SD).
        latent_downsample: Pixels per latent pixel along one side (8 for SD, 1 for pixel models).
        total_downsample: Image size must be a multiple of this.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        unet: nn.Module,
        scheduler_config: dict[str, Any],
        vae: nn.Module | None = None,
        metadata_embedding: MetadataEmbedding | None = None,
        text_encoder_dir: PathLike | None = None,
        prompt_embeds: dict[str, Tensor] | None = None,
        sample_size: int | None = None,
        name: str = "custom",
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae
        self.metadata_embedding = metadata_embedding
        self.scheduler_config = dict(scheduler_config)
        prediction = self.scheduler_config.get("prediction_type", "epsilon")
        if prediction not in ("epsilon", "v_prediction", "sample"):
            raise ConfigError(
                f"prediction_type {prediction!r} is not supported; use epsilon, v_prediction or "
                "sample"
            )
        self.prediction_type: PredictionType = prediction
        self.alphas_cumprod = alphas_cumprod_from(self.scheduler_config)
        self.text_encoder_dir = Path(text_encoder_dir) if text_encoder_dir else None
        self._prompt_embeds: dict[str, Tensor] = dict(prompt_embeds or {})
        self.name = name
        self.pretrained = pretrained
        self.is_conditional = isinstance(unet, UNet2DConditionModel)
        self.latent_downsample = (
            2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1  # type: ignore[union-attr]
        )
        self.unet_downsample = 2 ** _downsamplers(unet)
        self.total_downsample = self.latent_downsample * self.unet_downsample
        self.latent_channels = int(unet.config.in_channels)  # type: ignore[union-attr]
        self.in_channels = int(
            vae.config.in_channels if vae is not None else unet.config.in_channels  # type: ignore[union-attr]
        )
        unet_size = unet.config.sample_size  # type: ignore[union-attr]
        if isinstance(unet_size, (list, tuple)):
            unet_size = unet_size[0]
        self.sample_size = int(sample_size or int(unet_size or 64) * self.latent_downsample)
        self.vae_scaling_factor = float(
            getattr(vae.config, "scaling_factor", 0.18215) if vae is not None else 1.0  # type: ignore[union-attr]
        )
        shift = getattr(vae.config, "shift_factor", None) if vae is not None else None
        self.vae_shift_factor = float(shift or 0.0)
        self._weights_id: str | None = None
        self.requires_grad_(False)
        self.eval()

    # ------------------------------------------------------------------ frozen
    def train(self, mode: bool = True) -> DiffusionBackbone:
        """The backbone is frozen: it always stays in eval mode."""
        return super().train(False)

    @property
    def has_metadata(self) -> bool:
        """True when the UNet takes DiffusionSat metadata."""
        return self.metadata_embedding is not None

    @property
    def cross_attention_dim(self) -> int | None:
        """Width of the text tokens, or None for unconditional UNets."""
        if not self.is_conditional:
            return None
        dim = self.unet.config.cross_attention_dim  # type: ignore[union-attr]
        return int(dim[0] if isinstance(dim, (list, tuple)) else dim)

    # ------------------------------------------------------------ conditioning
    def prompt_embedding(self, prompt: str) -> Tensor | None:
        """(1, 77, D) embedding of ``prompt``, computed once and cached; None if unconditional.

        With a text encoder folder the embedding comes from it (needs ``transformers``);
        otherwise it is zeros of the right shape.
        """
        if not self.is_conditional:
            return None
        if prompt not in self._prompt_embeds:
            if self.text_encoder_dir is not None:
                emb = encode_prompt(self.text_encoder_dir, prompt)
            else:
                if self.pretrained:
                    warnings.warn(
                        f"backbone {self.name!r} has no text encoder: the prompt embedding is "
                        "zeros; add text_encoder/ and tokenizer/ to the checkpoint folder",
                        stacklevel=2,
                    )
                emb = torch.zeros(1, TEXT_TOKENS, int(self.cross_attention_dim or 0))
            self._prompt_embeds[prompt] = emb.float().cpu()
        return self._prompt_embeds[prompt]

    def metadata_labels(
        self,
        metadata: Tensor | None,
        batch: int,
        use_metadata: bool = True,
        gsd_scale: float = 1.0,
    ) -> Tensor | None:
        """The ``class_labels`` carrying DiffusionSat's metadata embedding, (B, D) or None.

        Args:
            metadata: (B, 7) physical metadata (see ``normalize_metadata``) or None for zeros
                (DiffusionSat's "unknown").
            batch: Batch size B.
            use_metadata: False drops the term (a zero class embedding), as SatDiFuser did.
            gsd_scale: Input size / working size, applied to the GSD.
        """
        if self.metadata_embedding is None:
            return None
        device = next(self.unet.parameters()).device
        dtype = self.unet.time_embedding.linear_2.weight.dtype  # type: ignore[union-attr]
        if not use_metadata:
            return torch.zeros(batch, self.metadata_embedding.out_features, device=device)
        if metadata is None:
            normalized = torch.zeros(batch, self.metadata_embedding.embeddings.__len__())
        else:
            normalized = normalize_metadata(metadata, gsd_scale)
        if normalized.shape[0] != batch:
            raise InputError(
                f"metadata has {normalized.shape[0]} rows but the batch has {batch} images; "
                "pass one metadata row per image"
            )
        return self.metadata_embedding(
            normalized.to(device),
            self.unet.time_proj,
            dtype,  # type: ignore[arg-type]
        )

    # ----------------------------------------------------------------- compute
    def encode(self, images: Tensor, posterior: str = "mean", seed: int = 0) -> Tensor:
        """Map images in [-1, 1] (B, C, H, W) to the UNet's input space.

        Latent models return ``(posterior - shift) * scaling_factor``; the posterior ``sample`` uses
        one noise pattern drawn from ``seed`` (CPU generator) shared by all images, so an image's
        latent never depends on its batch. Pixel models return the images unchanged.
        """
        if self.vae is None:
            return images
        dist = self.vae.encode(images).latent_dist  # type: ignore[union-attr]
        latents = dist.mean
        if posterior == "sample":
            gen = torch.Generator("cpu").manual_seed(seed)
            eps = torch.randn((1, *latents.shape[1:]), generator=gen, dtype=torch.float32)
            latents = latents + dist.std * eps.to(latents.device, latents.dtype)
        return (latents - self.vae_shift_factor) * self.vae_scaling_factor

    def unet_forward(
        self,
        sample: Tensor,
        timesteps: Tensor,
        encoder_hidden_states: Tensor | None = None,
        class_labels: Tensor | None = None,
    ) -> Tensor:
        """One UNet call; the raw model output (epsilon, v or x0 per ``prediction_type``)."""
        if self.is_conditional:
            out = self.unet(
                sample,
                timesteps,
                encoder_hidden_states=encoder_hidden_states,
                class_labels=class_labels,
                return_dict=False,
            )
        else:
            out = self.unet(sample, timesteps, return_dict=False)
        return out[0]

    # ---------------------------------------------------------------- identity
    def config_dict(self) -> dict[str, Any]:
        """JSON-able description of the architecture and schedule."""

        def clean(cfg: Any) -> dict[str, Any]:
            return {k: v for k, v in dict(cfg).items() if not k.startswith("_")}

        return {
            "unet_class": type(self.unet).__name__,
            "unet": clean(self.unet.config),  # type: ignore[union-attr]
            "vae": clean(self.vae.config) if self.vae is not None else None,  # type: ignore[union-attr]
            "scheduler": self.scheduler_config,
            "metadata": len(self.metadata_embedding.embeddings) if self.metadata_embedding else 0,
            "sample_size": self.sample_size,
        }

    def weights_id(self) -> str:
        """Stable digest of the config and every weight tensor (cached; keys feature caches)."""
        if self._weights_id is None:
            h = hashlib.sha256(json.dumps(self.config_dict(), sort_keys=True, default=str).encode())
            for name, tensor in sorted(self.state_dict().items()):
                t = tensor.detach().to("cpu").contiguous()
                h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
                h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
            self._weights_id = h.hexdigest()[:16]
        return self._weights_id

    # ------------------------------------------------------------- persistence
    def save_pretrained(self, directory: PathLike) -> Path:
        """Save as a diffusers-style pipeline folder in safetensors (written atomically).

        Layout: ``unet/`` (DiffusionSat metadata MLPs as ``metadata_embedding.*`` keys with
        ``use_metadata`` in its config), ``vae/``, ``scheduler/``, cached prompt embeddings,
        ``text_encoder/`` + ``tokenizer/`` copies when present, and ``satdifuser_backbone.json``.
        """
        from safetensors.torch import save_file

        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            unet_cfg = {k: v for k, v in dict(self.unet.config).items() if not k.startswith("_")}  # type: ignore[union-attr]
            unet_cfg["_class_name"] = type(self.unet).__name__
            unet_state = {k: v.contiguous() for k, v in self.unet.state_dict().items()}
            if self.metadata_embedding is not None:
                unet_cfg["class_embed_type"] = None
                unet_cfg["use_metadata"] = True
                unet_cfg["num_metadata"] = len(self.metadata_embedding.embeddings)
                unet_state.update(
                    {
                        k: v.contiguous()
                        for k, v in self.metadata_embedding.diffusionsat_state_dict().items()
                    }
                )
            self._write_part(tmp / "unet", unet_cfg, unet_state, save_file)
            if self.vae is not None:
                vae_cfg = {k: v for k, v in dict(self.vae.config).items() if not k.startswith("_")}  # type: ignore[union-attr]
                vae_cfg["_class_name"] = type(self.vae).__name__
                vae_state = {k: v.contiguous() for k, v in self.vae.state_dict().items()}
                self._write_part(tmp / "vae", vae_cfg, vae_state, save_file)
            (tmp / "scheduler").mkdir()
            (tmp / "scheduler" / "scheduler_config.json").write_text(
                json.dumps(self.scheduler_config, indent=2, sort_keys=True)
            )
            if self._prompt_embeds:
                keys = {f"prompt_{i}": p for i, p in enumerate(self._prompt_embeds)}
                save_file(
                    {k: self._prompt_embeds[p].contiguous() for k, p in keys.items()},
                    str(tmp / PROMPT_FILE),
                    metadata=keys,
                )
            if self.text_encoder_dir is not None:
                shutil.copytree(self.text_encoder_dir, tmp / "text_encoder")
                tok = self.text_encoder_dir.parent / "tokenizer"
                if tok.is_dir():
                    shutil.copytree(tok, tmp / "tokenizer")
            meta = {
                "format_version": 1,
                "name": self.name,
                "sample_size": self.sample_size,
                "prediction_type": self.prediction_type,
                "pretrained": self.pretrained,
            }
            (tmp / BACKBONE_FILE).write_text(json.dumps(meta, indent=2))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @staticmethod
    def _write_part(
        folder: Path, config: dict[str, Any], state: dict[str, Tensor], save: Any
    ) -> None:
        folder.mkdir()
        (folder / "config.json").write_text(
            json.dumps(config, indent=2, sort_keys=True, default=list)
        )
        save(state, str(folder / "diffusion_pytorch_model.safetensors"))

    @classmethod
    def from_pretrained(
        cls,
        directory: PathLike,
        checkpoint: str | None = None,
        unet_folder: str = "unet",
        resolution: int | None = None,
        sample_size: int | None = None,
        prediction_type: PredictionType | None = None,
        name: str | None = None,
    ) -> DiffusionBackbone:
        """Load from a pipeline folder (``save_pretrained`` output) or a DiffusionSat release.

        Args:
            directory: The folder.
            checkpoint: DiffusionSat checkpoint folder (default: highest ``checkpoint-N``).
            unet_folder: ``unet`` or ``unet_ema``.
            resolution: 256 or 512 for a folder holding both ``resolution*`` folders.
            sample_size: Override of the default working image size (pixels).
            prediction_type: Override of the scheduler's prediction type.
            name: Name used in messages (default: the folder).

        Raises:
            CheckpointError: missing parts (the message names the path) or mismatched weights.
        """
        root = Path(directory).expanduser()
        parts = find_parts(root, checkpoint, unet_folder, resolution)
        extra: dict[str, Any] = {}
        meta_path = parts.root / BACKBONE_FILE
        if meta_path.is_file():
            extra = read_json(meta_path)
            unknown = set(extra) - _BACKBONE_KEYS
            if unknown:
                raise ConfigError(
                    f"{meta_path} has unknown key {sorted(unknown)[0]!r}; expected only "
                    f"{sorted(_BACKBONE_KEYS)}; re-save with this satdifuser version"
                )
        unet, metadata = build_unet(
            read_json(parts.unet / "config.json"), read_state_dict(parts.unet), parts.unet
        )
        vae = None
        if parts.vae is not None:
            vae = build_vae(
                read_json(parts.vae / "config.json"), read_state_dict(parts.vae), parts.vae
            )
        elif isinstance(unet, UNet2DConditionModel):
            raise CheckpointError(
                f"missing VAE folder {parts.root / 'vae'} for the latent UNet in {parts.unet}; "
                "copy the base model's vae/ folder there"
            )
        sched = read_json(parts.scheduler / "scheduler_config.json")
        if prediction_type is not None:
            sched["prediction_type"] = prediction_type
        prompts: dict[str, Tensor] = {}
        if (parts.root / PROMPT_FILE).is_file():
            from safetensors import safe_open

            with safe_open(str(parts.root / PROMPT_FILE), framework="pt") as f:
                keys = f.metadata() or {}
                prompts = {keys[k]: f.get_tensor(k) for k in f.keys() if k in keys}
        return cls(
            unet,
            sched,
            vae=vae,
            metadata_embedding=metadata,
            text_encoder_dir=parts.text_encoder,
            prompt_embeds=prompts,
            sample_size=sample_size or extra.get("sample_size"),
            name=name or str(extra.get("name") or root),
            pretrained=bool(extra.get("pretrained", True)),
        )


__all__ = ["DiffusionBackbone", "PredictionType"]
