"""Checkpoints that hold only the trainable parts (fusion + head) in safetensors.

The frozen backbone is rebuilt from the config, so a checkpoint is a few MB, loads without
unpickling anything, and says in its metadata what it was trained with (task, fusion, head,
classes, feature layout, the monitored score and the resolved run config).

``best.safetensors`` in the run directory is written by :class:`BestTrainableCheckpoint` whenever
the monitored validation metric improves; ``resolve_checkpoint`` turns ``best``, a run directory or
a file path into that file.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from satdifuser import __version__
from satdifuser._typing import PathLike
from satdifuser.errors import CheckpointError
from satdifuser.viz.atomic import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from satdifuser.tasks.base import BaseTask

BEST_NAME = "best.safetensors"
MODEL_DIR = "model"
"""Folder of the run directory that holds the best epoch's :class:`SatDiFuserModel`."""
FORMAT = "satdifuser-trainable-v1"


def save_trainable(task: BaseTask, path: PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write the task's fusion + head state and its description to ``path`` (atomic).

    Args:
        task: The task whose ``trainable_state_dict()`` is saved.
        path: Target ``.safetensors`` file.
        extra: More metadata (JSON-serialisable values), e.g. epoch and score.
    """
    tensors = {
        k: v.detach().cpu().contiguous().clone() for k, v in task.trainable_state_dict().items()
    }
    meta = {"format": FORMAT, "satdifuser_version": __version__, **task.checkpoint_metadata()}
    meta.update(extra or {})
    text_meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    return atomic_write_bytes(path, save(tensors, metadata=text_meta))


def read_checkpoint(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a trainable checkpoint.

    Raises:
        CheckpointError: missing, unreadable or not a satdifuser trainable checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"checkpoint {p} does not exist; train first (satdifuser fit) or "
            "pass --ckpt_path with a run directory or .safetensors file"
        )
    try:
        tensors = load_file(str(p))
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {p} is not a readable safetensors file ({exc}); pass a best.safetensors "
            "written by satdifuser fit"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {p} has format {meta.get('format')!r}, expected {FORMAT!r}; pass a "
            "best.safetensors written by satdifuser fit"
        )
    return tensors, meta


def load_trainable(task: BaseTask, path: PathLike) -> dict[str, str]:
    """Load fusion + head weights from ``path`` into ``task``; returns the checkpoint metadata.

    Raises:
        CheckpointError: other task type, class count or feature layout, or mismatching keys.
    """
    tensors, meta = read_checkpoint(path)
    mine = task.checkpoint_metadata()
    for key in ("task", "num_classes", "feature_info"):
        if key in meta and meta[key] != _text(mine[key]):
            raise CheckpointError(
                f"checkpoint {path} was trained with {key}={_short(meta[key])} but the config "
                f"gives {key}={_short(_text(mine[key]))}; use the run's own config.yaml "
                "(satdifuser test --config <run>/config.yaml --ckpt_path best)"
            )
    if meta.get("extractor") not in (None, mine["extractor"]):
        warnings.warn(
            f"checkpoint {path} was trained on features of extractor {meta['extractor']!r} but "
            f"the config builds {mine['extractor']!r} (other weights or feature settings); the "
            "head may not fit these features",
            stacklevel=2,
        )
    task.load_trainable_state_dict(tensors, source=str(path))
    return meta


def resolve_checkpoint(ckpt_path: PathLike, run_dir: PathLike) -> Path:
    """``best`` -> ``<run_dir>/best.safetensors``; a directory -> its ``best.safetensors``.

    Raises:
        CheckpointError: nothing found there.
    """
    text = str(ckpt_path)
    p = Path(run_dir) / BEST_NAME if text == "best" else Path(text)
    if p.is_dir():
        p = p / BEST_NAME
    if not p.is_file():
        raise CheckpointError(
            f"no checkpoint at {p} (from ckpt_path={text!r}); run `satdifuser fit` first or pass "
            "--ckpt_path <run dir> / <file>.safetensors"
        )
    if p.suffix != ".safetensors":
        raise CheckpointError(
            f"ckpt_path={text!r} is not a .safetensors file; satdifuser checkpoints are "
            f"{BEST_NAME} files in the run directory (pickled Lightning .ckpt files are not read)"
        )
    return p


class BestTrainableCheckpoint(Callback):
    """Keep ``<dirpath>/best.safetensors`` (+ ``best.json``) at the best validation score.

    Args:
        monitor: Logged metric to watch (``val/overall_accuracy``).
        mode: ``max`` or ``min``.
        dirpath: Folder; the trainer's ``default_root_dir`` when None.
    """

    def __init__(
        self, monitor: str, mode: Literal["min", "max"] = "max", dirpath: PathLike | None = None
    ) -> None:
        self.monitor = monitor
        self.mode = mode
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.best_score: float | None = None
        self.best_path: Path | None = None
        self.best_epoch: int | None = None

    def _better(self, score: float) -> bool:
        if not math.isfinite(score):
            return False
        if self.best_score is None:
            return True
        return score > self.best_score if self.mode == "max" else score < self.best_score

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Save when the monitored value improved (never during the sanity check)."""
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if not self._better(score):
            return
        self.best_score, self.best_epoch = score, trainer.current_epoch
        folder = self.dirpath or Path(trainer.default_root_dir)
        self.best_path = folder / BEST_NAME
        if trainer.is_global_zero:
            extra = {
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "monitor": self.monitor,
                "mode": self.mode,
                "score": score,
            }
            config = getattr(pl_module, "run_config", None)
            if config:
                extra["config"] = config
            save_trainable(pl_module, self.best_path, extra)  # type: ignore[arg-type]
            info = {k: v for k, v in extra.items() if k != "config"}
            model = getattr(pl_module, "model", None)
            if model is not None and callable(getattr(model, "save_pretrained", None)):
                card = {"trained": {"epoch": trainer.current_epoch, self.monitor: score},
                        "command": "satdifuser fit", **getattr(pl_module, "card", {})}  # fmt: skip
                data = _data_description(trainer)
                if data:
                    card["data"] = data
                model.save_pretrained(folder / MODEL_DIR, card=card)
            atomic_write_json(folder / "best.json", {**info, "checkpoint": BEST_NAME})

    def state_dict(self) -> dict[str, Any]:
        """Callback state (best score so far)."""
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best_score = state_dict.get("best_score")
        self.best_epoch = state_dict.get("best_epoch")


def _data_description(trainer: Trainer) -> str | None:
    dm = getattr(trainer, "datamodule", None)
    if dm is None:
        return None
    inner = getattr(dm, "datamodule", dm)
    parts = [type(inner).__name__]
    for attr in ("root", "task", "budget", "partition"):
        value = getattr(inner, attr, None)
        if value is not None:
            parts.append(f"{attr}={value}")
    return " ".join(parts)


def _text(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


__all__ = [
    "BEST_NAME",
    "MODEL_DIR",
    "BestTrainableCheckpoint",
    "load_trainable",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_trainable",
]
