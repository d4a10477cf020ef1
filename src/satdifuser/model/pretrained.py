"""``save_pretrained`` / ``from_pretrained`` of :class:`SatDiFuserModel` (diffusers style).

A model folder holds ``config.json`` (plain JSON: task, classes, input contract, feature spec
with the backbone and its weights id, fusion and head by registry name and arguments),
``model.safetensors`` (standardiser statistics, fusion and head; no pickle anywhere) and a short
``README.md`` model card. The frozen backbone is not copied: it is rebuilt from its name or
folder and refused when its content id differs from the saved one.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from satdifuser import __version__
from satdifuser.errors import CheckpointError, ConfigError, SatdifuserError
from satdifuser.features.spec import FeatureInfo

if TYPE_CHECKING:
    from satdifuser.model.core import SatDiFuserModel

FORMAT = "satdifuser-model-v1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"


def save_model(model: SatDiFuserModel, directory: str | Path, card: dict[str, Any] | None = None
               ) -> Path:  # fmt: skip
    """Write the model folder atomically (a temporary sibling folder renamed into place)."""
    import shutil
    import tempfile

    from safetensors.torch import save_file

    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"model output {out} is a file; pass a folder path")
    facts = {**model.card, **(card or {})}
    config = {"format": FORMAT, "satdifuser_version": __version__, **model.config(),
              "card": facts}  # fmt: skip
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        (tmp / CARD_NAME).write_text(model_card(config))
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def model_card(config: dict[str, Any]) -> str:
    """A short Markdown card: what it predicts, from what, how it was trained, versions."""
    feats, card = config["features"], config.get("card", {})
    lines = [
        f"# satdifuser model: {config['task_type']}, {len(config['class_names'])} classes",
        "",
        f"- classes: {', '.join(config['class_names'])}",
        f"- backbone: `{feats['backbone']}` (weights id `{feats['backbone_weights_id']}`)",
        f"- features: {json.dumps(feats['args'])}",
        f"- fusion: `{config['fusion']['name']}` {json.dumps(config['fusion']['args'])}; "
        f"head: `{config['head']['name']}`; standardize: {config['standardize']}",
        f"- input: {json.dumps(config['input'])}",
    ]
    for key in ("data", "metrics", "command", "trained"):
        if key in card:
            lines.append(f"- {key}: {json.dumps(card[key]) if not isinstance(card[key], str) else card[key]}")  # noqa: E501
    lines += [
        f"- versions: satdifuser {config['satdifuser_version']}, torch {torch.__version__}, "
        f"python {platform.python_version()}",
        "",
        "Load it with `SatDiFuserModel.from_pretrained(folder)`; predict with "
        "`satdifuser predict --model folder INPUT... --out OUT`.",
        "",
    ]
    return "\n".join(lines)


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checked ``config.json`` of a model folder."""
    folder = Path(directory)
    path = folder / CONFIG_NAME
    if not folder.is_dir() or not path.is_file():
        raise CheckpointError(
            f"{folder} is not a satdifuser model folder (no {CONFIG_NAME}); pass the folder "
            "written by fit (RUN/model), demo (OUT/model) or save_pretrained"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not readable JSON ({exc}); re-save the model") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(
            f"{path} has format {got!r}, expected {FORMAT!r}; pass a model saved by satdifuser"
        )
    return config


def _build_extractor(config: dict[str, Any], backbone: Any, path: Path) -> nn.Module:
    from satdifuser.backbones import DiffusionBackbone, create_backbone
    from satdifuser.features.extractor import FeatureExtractor

    feats = config["features"]
    kind, args = feats.get("extractor"), feats.get("args")
    select = None
    if kind == "SelectMaps" and isinstance(args, dict):  # a subset of a FeatureExtractor's maps
        select, args = args.get("select") or {}, args.get("extractor")
        kind = "FeatureExtractor" if isinstance(args, dict) and "timesteps" in args else None
    if kind != "FeatureExtractor" or not isinstance(args, dict):
        raise CheckpointError(
            f"{path}: extractor {feats.get('extractor')!r} cannot be rebuilt from a config; pass "
            "extractor= to from_pretrained"
        )
    source = backbone if backbone is not None else feats["backbone"]
    bb = source if isinstance(source, DiffusionBackbone) else create_backbone(str(source))
    want = feats.get("backbone_weights_id")
    if want and bb.weights_id() != want:
        raise CheckpointError(
            f"{path} was trained on backbone weights {want} but {feats['backbone']!r} now has "
            f"weights {bb.weights_id()}; pass backbone= with the original weights (the model's "
            "fusion and head only fit those)"
        )
    extractor = FeatureExtractor(bb, **args)
    if select is None:
        return extractor
    from satdifuser.features.cache_view import SelectMaps

    return SelectMaps(extractor, select.get("taps"), select.get("timesteps"))


def load_model(
    directory: str | Path,
    *,
    backbone: Any = None,
    extractor: nn.Module | None = None,
    device: str | torch.device | None = None,
) -> SatDiFuserModel:
    """See :meth:`SatDiFuserModel.from_pretrained`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from satdifuser.fusion.base import FUSIONS
    from satdifuser.heads.base import HEADS
    from satdifuser.model.core import SatDiFuserModel
    from satdifuser.model.standardize import ChannelStandardizer

    folder = Path(directory)
    config = read_config(folder)
    try:
        feats = config["features"]
        saved_info = [FeatureInfo(str(r[0]), int(r[1]), int(r[2]), int(r[3]))
                      for r in feats["feature_info"]]  # fmt: skip
        ex = extractor if extractor is not None else _build_extractor(config, backbone, folder)
        if [tuple(vars(f).values()) for f in ex.feature_info] != [
            tuple(vars(f).values()) for f in saved_info
        ]:
            raise CheckpointError(
                f"{folder}: the extractor's feature layout differs from the saved one; load with "
                "the saved feature configuration"
            )
        want = feats.get("identity")
        ident = getattr(ex, "identity", None)
        if extractor is not None and want and callable(ident) and ident() != want:
            raise CheckpointError(
                f"{folder}: the given extractor has identity {ident()} but the model was trained "
                f"on {want}; pass the extractor it was trained with"
            )
        fusion = FUSIONS.get(config["fusion"]["name"])(saved_info, **config["fusion"]["args"])
        head = HEADS.get(config["head"]["name"])(
            list(fusion.out_channels), len(config["class_names"]), **config["head"]["args"]
        )
        std = ChannelStandardizer([f.channels for f in saved_info], bool(config["standardize"]))
        try:
            model = SatDiFuserModel(
                ex, fusion, head, config["task_type"], config["class_names"], std,
                input_contract=config.get("input"), ignore_index=config.get("ignore_index"),
                card=config.get("card"), class_colors=config.get("class_colors"),
            )  # fmt: skip
        except ConfigError as exc:  # a value of config.json the model rejects: name the file
            raise ConfigError(f"{folder / CONFIG_NAME}: {exc}") from None
    except CheckpointError:
        raise
    except SatdifuserError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(
            f"{folder / CONFIG_NAME} is missing or mangles a field ({type(exc).__name__}: {exc}); "
            "re-save the model"
        ) from None
    weights = folder / WEIGHTS_NAME
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{weights} is missing or not a readable safetensors file ({exc}); re-save the model"
        ) from None
    mine = model.state_dict()
    missing, extra = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
    bad = [k for k in mine if k in state and state[k].shape != mine[k].shape]
    if missing or extra or bad:
        raise CheckpointError(
            f"{weights} does not fit {CONFIG_NAME}: missing {missing[:2]}, unexpected "
            f"{extra[:2]}, shape mismatch {bad[:2]}; the folder mixes two models"
        )
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(f"{weights} holds NaN or Inf weights; retrain the model")
    model.load_state_dict(state, strict=True)
    if device is not None:
        model.to(device)
    return model.eval()


__all__ = ["CARD_NAME", "CONFIG_NAME", "FORMAT", "WEIGHTS_NAME", "load_model", "read_config",
           "save_model"]  # fmt: skip
