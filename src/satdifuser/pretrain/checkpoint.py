"""Atomic, pickle-free checkpoints of a pre-training run (exact resume).

``RUN_DIR/checkpoint/`` holds ``model.safetensors``, ``ema.safetensors``,
``optimizer.safetensors`` + ``optimizer.json``, ``rng.safetensors`` and ``state.json`` (step,
data order, numpy/python RNG states, totals). A checkpoint is written into a temporary folder
and renamed into place, so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from satdifuser.errors import CheckpointError

CKPT = "checkpoint"
_OLD = "checkpoint.old"
FILES = (
    "model.safetensors",
    "ema.safetensors",
    "optimizer.safetensors",
    "optimizer.json",
    "rng.safetensors",
    "state.json",
)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (safetensors) and JSON metadata."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, list[str]] = {}
    for idx, entry in sd["state"].items():
        layout[str(idx)] = []
        for name, value in entry.items():
            if not torch.is_tensor(value):
                value = torch.tensor(value)
            tensors[f"{idx}.{name}"] = value
            layout[str(idx)].append(name)
    return tensors, {"param_groups": sd["param_groups"], "state_layout": layout}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, Any]:
    """Rebuild an optimizer state dict from :func:`optimizer_to_files` output."""
    state = {
        int(idx): {name: tensors[f"{idx}.{name}"] for name in names}
        for idx, names in meta["state_layout"].items()
    }
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: Path,
    *,
    model: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> Path:
    """Write a complete checkpoint atomically and return its folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-tmp-", dir=run_dir))
    try:
        _save_tensors(model, tmp / "model.safetensors")
        _save_tensors(ema, tmp / "ema.safetensors")
        opt_tensors, opt_meta = optimizer_to_files(optimizer)
        _save_tensors(opt_tensors, tmp / "optimizer.safetensors")
        (tmp / "optimizer.json").write_text(json.dumps(opt_meta))
        _save_tensors(rng, tmp / "rng.safetensors")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        for name in FILES:
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        final, old = run_dir / CKPT, run_dir / _OLD
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        _fsync_dir(run_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of ``run_dir`` (None when there is none)."""
    for name in (CKPT, _OLD):
        folder = run_dir / name
        if folder.is_dir() and all((folder / f).is_file() for f in FILES):
            return folder
    return None


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """Read every part of a checkpoint (tensors on CPU)."""
    try:
        return {
            "model": load_file(str(folder / "model.safetensors")),
            "ema": load_file(str(folder / "ema.safetensors")),
            "optimizer": optimizer_from_files(
                load_file(str(folder / "optimizer.safetensors")),
                json.loads((folder / "optimizer.json").read_text()),
            ),
            "rng": load_file(str(folder / "rng.safetensors")),
            "state": json.loads((folder / "state.json").read_text()),
        }
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {folder} is unreadable ({type(exc).__name__}: {exc}); "
            "delete it to restart from the previous one, or use a new --out"
        ) from None
