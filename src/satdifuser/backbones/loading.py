"""Reading checkpoints: configs, state dicts, model construction and checkpoint layouts.

Weights are read with safetensors or ``torch.load(weights_only=True)`` only. Supported layouts:

- a diffusers pipeline folder: ``unet/``, optional ``vae/``, ``scheduler/``, optional
  ``text_encoder/`` + ``tokenizer/`` (what :meth:`DiffusionBackbone.save_pretrained` writes);
- the DiffusionSat release: ``<root>/resolution{256,512}/checkpoint-150000/unet`` (or
  ``unet_ema``) with ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/`` under the
  resolution folder (``backbones.md`` sections 4-5);
- a Hugging Face hub id (``owner/name``), fetched with ``huggingface_hub.snapshot_download`` and
  then read as a pipeline folder.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel, UNet2DModel
from torch import Tensor, nn

from satdifuser.backbones.metadata import MetadataEmbedding
from satdifuser.errors import CheckpointError, UnsupportedArchitectureError

WEIGHT_STEMS: tuple[str, ...] = ("diffusion_pytorch_model", "model")
_EMA_KEYS = (
    "decay",
    "inv_gamma",
    "min_decay",
    "optimization_step",
    "power",
    "update_after_step",
    "use_ema_warmup",
)
_UNET_CLASSES: dict[str, type[nn.Module]] = {
    "UNet2DConditionModel": UNet2DConditionModel,
    "SatUNet": UNet2DConditionModel,
    "UNet2DModel": UNet2DModel,
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing or malformed file raises :class:`CheckpointError`."""
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file {path}; the folder must hold it")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); re-save the checkpoint") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _load_file(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({exc}); it is truncated or "
                "damaged: download or export the weights again"
            ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refusing a class is the typical case
        raise CheckpointError(
            f"cannot read {path} with torch.load(weights_only=True) ({type(exc).__name__}); "
            "it is not a plain tensor state dict; convert it to safetensors"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a name -> tensor state dict")
    return state


def read_state_dict(folder: Path) -> dict[str, Tensor]:
    """Read a model's weights from ``folder`` as float32 tensors.

    Looks for ``diffusion_pytorch_model`` / ``model`` as ``.safetensors``, a sharded
    ``.safetensors.index.json``, ``.fp16.safetensors``, then ``.bin`` (weights_only).

    Raises:
        CheckpointError: no weight file, or one that is not a plain state dict.
    """
    candidates: list[Path] = []
    for stem in WEIGHT_STEMS:
        candidates += [
            folder / f"{stem}.safetensors",
            folder / f"{stem}.safetensors.index.json",
            folder / f"{stem}.fp16.safetensors",
            folder / f"{stem}.bin",
            folder / f"{stem}.fp16.bin",
        ]
    for path in candidates:
        if not path.is_file():
            continue
        if path.name.endswith(".index.json"):
            index = read_json(path)
            shards = sorted(set(index.get("weight_map", {}).values()))
            state: dict[str, Tensor] = {}
            for shard in shards:
                state.update(_load_file(folder / shard))
        else:
            state = _load_file(path)
        return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    raise CheckpointError(
        f"no weights in {folder} (looked for diffusion_pytorch_model.safetensors or .bin); "
        "point to a folder saved with save_pretrained"
    )


_SUPPORTED = (
    "satdifuser runs Stable Diffusion 1.x/2.x-style UNet2DConditionModel (text cross-attention "
    "only), DiffusionSat UNets and UNet2DModel; use such a checkpoint"
)


def unsupported_parts(config: dict[str, Any], metadata: bool) -> list[str]:
    """What in a UNet config needs inputs satdifuser does not pass (empty when supported).

    satdifuser calls the UNet with the noisy sample, the timestep, text embeddings and (for
    DiffusionSat, ``metadata=True``) metadata class labels; nothing else.

    Args:
        config: ``unet/config.json`` content.
        metadata: The UNet is built with DiffusionSat metadata MLPs (class labels are passed).
    """
    problems = []
    addition = config.get("addition_embed_type")
    if addition is not None:
        what = "SDXL-style pooled text + size/crop ids" if addition == "text_time" else "inputs"
        problems.append(f"addition_embed_type={addition!r} ({what} as added conditioning)")
    hid_type, hid_dim = config.get("encoder_hid_dim_type"), config.get("encoder_hid_dim")
    if hid_type is not None or hid_dim is not None:
        problems.append(
            f"encoder_hid_dim_type={hid_type!r}, encoder_hid_dim={hid_dim!r} (projected "
            "text/image encoder states)"
        )
    if not metadata:
        class_type, num_class = config.get("class_embed_type"), config.get("num_class_embeds")
        if class_type is not None or num_class is not None:
            problems.append(
                f"class_embed_type={class_type!r}, num_class_embeds={num_class!r} (class "
                "labels, e.g. an upscaler's noise level)"
            )
    in_ch, out_ch = config.get("in_channels"), config.get("out_channels")
    if isinstance(in_ch, int) and isinstance(out_ch, int) and in_ch > out_ch:
        problems.append(
            f"in_channels={in_ch} > out_channels={out_ch} (extra input channels, as in "
            "inpainting, depth or image-conditioned UNets)"
        )
    return problems


def _instantiate(
    cls: type[nn.Module], config: dict[str, Any], state: dict[str, Tensor] | None, where: Path | str
) -> nn.Module:
    """Build ``cls`` from ``config``; load ``state`` strictly (built on meta, no random init)."""
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    if state is None:
        return cls.from_config(config)  # type: ignore[attr-defined]
    with torch.device("meta"):
        model = cls.from_config(config)  # type: ignore[attr-defined]
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[1:3])[:300]
        raise CheckpointError(
            f"weights in {where} do not match the {cls.__name__} config ({detail}); "
            "the config.json and weights must come from the same model"
        ) from None
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        model = cls.from_config(config)  # type: ignore[attr-defined]
        model.load_state_dict(state, strict=True)
    return model


def build_unet(
    config: dict[str, Any],
    state: dict[str, Tensor] | None,
    where: Path | str = "<config>",
    use_metadata: bool | None = None,
) -> tuple[nn.Module, MetadataEmbedding | None]:
    """Build a UNet (and DiffusionSat metadata MLPs) from a config and optional weights.

    DiffusionSat UNets (``use_metadata`` in the config or ``metadata_embedding.*`` weights) are
    built as stock ``UNet2DConditionModel`` with ``class_embed_type="identity"``; the metadata
    MLPs are loaded separately and everything else strictly (``backbones.md`` section 4).

    Args:
        config: ``unet/config.json`` content.
        state: Weights (float32) or None for random initialisation.
        where: Path named in error messages.
        use_metadata: Force building the metadata MLPs (random init only).

    Returns:
        ``(unet, metadata_embedding_or_None)``.

    Raises:
        CheckpointError: unknown UNet class, or weights that do not match the config.
        UnsupportedArchitectureError: a UNet that needs inputs satdifuser does not pass (SDXL
            added conditioning, class labels, extra input channels); the message names them.
    """
    config = dict(config)
    class_name = config.get("_class_name") or (
        "UNet2DConditionModel" if "cross_attention_dim" in config else "UNet2DModel"
    )
    if class_name not in _UNET_CLASSES:
        raise CheckpointError(
            f"{where}: unsupported UNet class {class_name!r}; expected one of "
            f"{', '.join(_UNET_CLASSES)}"
        )
    cls = _UNET_CLASSES[class_name]
    num_metadata = int(config.pop("num_metadata", 0) or 0)
    flag = bool(config.pop("use_metadata", False))
    for key in _EMA_KEYS:
        config.pop(key, None)
    md_state: dict[str, Tensor] = {}
    if state is not None:
        prefix = "metadata_embedding."
        md_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    has_md = (
        bool(md_state) if state is not None else (flag if use_metadata is None else use_metadata)
    )
    if state is not None and flag and not md_state:
        raise CheckpointError(
            f"{where}: config says use_metadata=true but the weights hold no metadata_embedding.* "
            "tensors; use the matching DiffusionSat weights"
        )
    problems = unsupported_parts(config, metadata=has_md)
    if problems:
        raise UnsupportedArchitectureError(
            f"{where}: unsupported UNet architecture: {'; '.join(problems)}; {_SUPPORTED}"
        )
    if has_md:
        if cls is not UNet2DConditionModel:
            raise CheckpointError(f"{where}: metadata MLPs need a UNet2DConditionModel")
        config["class_embed_type"] = "identity"
        config["num_class_embeds"] = None
        num_metadata = num_metadata or (len({k.split(".")[0] for k in md_state}) if md_state else 7)
    unet = _instantiate(cls, config, state, where)
    metadata: MetadataEmbedding | None = None
    if has_md:
        metadata = MetadataEmbedding(
            unet.time_embedding.linear_1.in_features,
            unet.time_embedding.linear_2.out_features,
            num_metadata,
        )
        if md_state:
            try:
                metadata.load_diffusionsat_state_dict(md_state)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{where}: metadata_embedding.* weights do not match "
                    f"{num_metadata} TimestepEmbedding MLPs ({str(exc).splitlines()[0][:200]})"
                ) from None
    return unet, metadata


def build_vae(
    config: dict[str, Any], state: dict[str, Tensor] | None, where: Path | str = "<config>"
) -> AutoencoderKL:
    """Build an ``AutoencoderKL`` from its config and optional weights (strict)."""
    return _instantiate(AutoencoderKL, dict(config), state, where)  # type: ignore[return-value]


def alphas_cumprod_from(config: dict[str, Any]) -> Tensor:
    """``alphas_cumprod`` (float64) of a scheduler config, via diffusers' ``DDPMScheduler``."""
    params = set(inspect.signature(DDPMScheduler.__init__).parameters) - {"self"}
    kwargs = {k: v for k, v in config.items() if k in params}
    kwargs.pop("prediction_type", None)
    scheduler = DDPMScheduler(**kwargs)
    return scheduler.alphas_cumprod.to(torch.float64)


@dataclass(frozen=True)
class CheckpointParts:
    """Folders of one checkpoint."""

    root: Path
    unet: Path
    scheduler: Path
    vae: Path | None
    text_encoder: Path | None
    tokenizer: Path | None


def _pick_checkpoint(root: Path, checkpoint: str | None) -> Path | None:
    if checkpoint is not None:
        path = root / checkpoint
        if not path.is_dir():
            raise CheckpointError(f"no checkpoint folder {path}; check checkpoint={checkpoint!r}")
        return path
    found = sorted(
        (p for p in root.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()),
        key=lambda p: int(p.name[11:]),
    )
    return found[-1] if found else None


def find_parts(
    root: Path,
    checkpoint: str | None = None,
    unet_folder: str = "unet",
    resolution: int | None = None,
) -> CheckpointParts:
    """Locate the parts of a pipeline folder or a DiffusionSat release.

    Args:
        root: Pipeline folder, DiffusionSat ``resolution*`` folder, or the folder holding them.
        checkpoint: DiffusionSat checkpoint folder name (default: the highest ``checkpoint-N``).
        unet_folder: ``unet`` (online weights, what DiffusionSat's notebook loads) or ``unet_ema``.
        resolution: 256 or 512 when ``root`` holds both ``resolution256`` and ``resolution512``.

    Raises:
        CheckpointError: a required part is missing (the message names the path).
    """
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist; check the path")
    res_dirs = sorted(p for p in root.glob("resolution*") if p.is_dir())
    if res_dirs and not (root / unet_folder).is_dir():
        if resolution is not None:
            root = root / f"resolution{resolution}"
            if not root.is_dir():
                raise CheckpointError(f"no {root}; available: {[p.name for p in res_dirs]}")
        elif len(res_dirs) == 1:
            root = res_dirs[0]
        else:
            raise CheckpointError(
                f"{root} holds {[p.name for p in res_dirs]}; pass resolution=256 or 512, or "
                "point to one resolution folder"
            )
    unet = root / unet_folder
    if not unet.is_dir():
        ckpt = _pick_checkpoint(root, checkpoint)
        if ckpt is not None:
            unet = ckpt / unet_folder
    if not unet.is_dir():
        raise CheckpointError(
            f"missing UNet folder {unet} (expected {root}/{unet_folder}/ or "
            f"{root}/checkpoint-N/{unet_folder}/ with config.json and weights)"
        )
    scheduler = root / "scheduler"
    if not (scheduler / "scheduler_config.json").is_file():
        raise CheckpointError(
            f"missing {scheduler}/scheduler_config.json; copy the scheduler/ folder of the base "
            "model (SD 2.1 for DiffusionSat) next to the UNet"
        )

    def opt(name: str) -> Path | None:
        path = root / name
        return path if path.is_dir() else None

    return CheckpointParts(root, unet, scheduler, opt("vae"), opt("text_encoder"), opt("tokenizer"))


def is_hub_id(name: str) -> bool:
    """True for strings shaped like a hub repository id (``owner/name``)."""
    return bool(_HUB_ID.match(name)) and not Path(name).exists()


def download_from_hub(
    repo_id: str,
    revision: str | None = None,
    hub_cache_dir: str | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Fetch the parts of a diffusers pipeline repository; return the local snapshot folder.

    Only configs, safetensors weights (``.bin`` when a part has no safetensors) and tokenizer files
    are fetched into ``hub_cache_dir`` (the Hugging Face download cache; not the feature
    cache). With ``HF_HUB_OFFLINE=1`` only the local cache is used.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - diffusers depends on it
        from satdifuser.errors import DependencyNotFoundError

        raise DependencyNotFoundError(
            "loading from the hub needs huggingface_hub; pip install huggingface_hub"
        ) from None
    parts = ("unet", "vae", "text_encoder")
    patterns = ["*.json", "tokenizer/*"]
    for part in parts:
        patterns += [f"{part}/*.safetensors"]
    kwargs: dict[str, Any] = {"revision": revision, "cache_dir": hub_cache_dir}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns, **kwargs))
        missing = [
            p for p in parts if (path / p).is_dir() and not any((path / p).glob("*.safetensors"))
        ]
        if missing:
            path = Path(
                snapshot_download(repo_id, allow_patterns=[f"{p}/*.bin" for p in missing], **kwargs)
            )
    except Exception as exc:
        raise CheckpointError(
            f"cannot fetch hub repository {repo_id!r} (revision {revision!r}): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}; "
            "check the id, the network or HF_HUB_OFFLINE, or pass a local folder"
        ) from None
    return path


__all__ = [
    "CheckpointParts",
    "alphas_cumprod_from",
    "build_unet",
    "build_vae",
    "download_from_hub",
    "find_parts",
    "is_hub_id",
    "read_json",
    "read_state_dict",
    "unsupported_parts",
]
