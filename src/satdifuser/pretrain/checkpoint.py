"""Atomic, pickle-free checkpoints of a pre-training run (exact resume).

``RUN_DIR/checkpoint/`` holds ``model.safetensors``, ``ema.safetensors``,
``optimizer.safetensors`` + ``optimizer.json``, ``rng.safetensors`` and ``state.json`` (step,
data order, numpy/python RNG states, totals), and, written last, ``manifest.json`` (the size of
every file). A checkpoint is written into a temporary folder and renamed into place, so a kill at
any moment leaves the previous checkpoint intact; a temporary folder left by a kill is removed at
the next start. Checkpoints written before the manifest existed load when all their files exist.

A ``checkpoint/`` folder that is incomplete or unreadable is never taken for "no checkpoint": it
stops the run with a :class:`~satdifuser.errors.CheckpointError`, so a damaged run is never
restarted at step 0 over its own files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from satdifuser.errors import CheckpointError

CKPT = "checkpoint"
_OLD = "checkpoint.old"
TMP_PREFIX = ".checkpoint-tmp-"
MANIFEST = "manifest.json"
FILES = (
    "model.safetensors",
    "ema.safetensors",
    "optimizer.safetensors",
    "optimizer.json",
    "rng.safetensors",
    "state.json",
)
_STATE_KEYS = ("step", "order", "totals", "rng")
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


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
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def read_tensors(path: Path, what: str = "tensor file") -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing, truncated or garbage file is one error naming it.

    Args:
        path: The ``.safetensors`` file.
        what: What the file is, for the message (``"checkpoint file"``, ``"exported weights"``).

    Raises:
        CheckpointError: The file is missing, unreadable or not a valid safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
        if len(head) < 8:
            raise ValueError(f"{size} bytes, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, _MAX_HEADER):
            raise ValueError(f"header claims {n} bytes but the file has {size}")
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{what} {path} is missing; restore it or use a new folder") from None
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(
            f"{what} {path} is not a readable safetensors file ({exc}); it is truncated or "
            "damaged: restore it or use a new folder"
        ) from None


def read_json(path: Path, what: str = "file") -> Any:
    """Parse a JSON file; a missing or garbage file is one error naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{what} {path} is missing; restore it or use a new folder") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{what} {path} is not readable JSON ({exc}); it is truncated or damaged: "
            "restore it or use a new folder"
        ) from None


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


def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete the temporary folders that a kill during a checkpoint write left in ``run_dir``.

    Call it only while no other process writes into ``run_dir``. Returns the removed folders.
    """
    stale = sorted(Path(run_dir).glob(f"{TMP_PREFIX}*"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


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
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=run_dir))
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
        manifest = {"format": 1, "files": {n: (tmp / n).stat().st_size for n in FILES}}
        with open(tmp / MANIFEST, "w") as fh:  # last: its presence marks a complete folder
            fh.write(json.dumps(manifest, indent=1))
            fh.flush()
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


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint (None when it is one).

    With a manifest, every listed file must exist with its recorded size; without one (a
    checkpoint written before manifests existed) every file of :data:`FILES` must exist.
    """
    if not folder.is_dir():
        return "not a folder"
    sizes: dict[str, int | None] = dict.fromkeys(FILES)
    if (folder / MANIFEST).exists():
        try:
            listed = json.loads((folder / MANIFEST).read_text())["files"]
            sizes.update({str(k): int(v) for k, v in listed.items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})"
    missing = [n for n in sizes if not (folder / n).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    for name, size in sizes.items():
        actual = (folder / name).stat().st_size
        if size is not None and actual != size:
            return f"{name} has {actual} bytes but the manifest says {size} (truncated)"
    return None


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder to resume ``run_dir`` from (None when the run has none).

    ``checkpoint/`` when it exists; else ``checkpoint.old/`` (a kill between the two renames of
    :func:`save_checkpoint` leaves only that one).

    Raises:
        CheckpointError: The folder to resume from is incomplete; nothing is changed, so the
            previous complete checkpoint (if any) stays where it is.
    """
    run_dir = Path(run_dir)
    final, old = run_dir / CKPT, run_dir / _OLD
    for folder in (final, old):
        if not folder.exists():
            continue
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        fallback = ""
        if folder == final and old.exists() and checkpoint_problem(old) is None:
            fallback = f", or delete it to resume from the previous checkpoint {old}"
        raise CheckpointError(
            f"checkpoint {folder} is incomplete ({problem}); the run was left untouched: "
            f"restore the file{fallback}, or use a new --out"
        )
    return None


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """Read every part of a checkpoint (tensors on CPU); a damaged part is one error naming it."""
    folder = Path(folder)
    what = "checkpoint file"
    model = read_tensors(folder / "model.safetensors", what)
    ema = read_tensors(folder / "ema.safetensors", what)
    opt_tensors = read_tensors(folder / "optimizer.safetensors", what)
    opt_meta = read_json(folder / "optimizer.json", what)
    rng = read_tensors(folder / "rng.safetensors", what)
    state = read_json(folder / "state.json", what)
    try:
        optimizer = optimizer_from_files(opt_tensors, opt_meta)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"{what} {folder / 'optimizer.json'} does not match optimizer.safetensors "
            f"({type(exc).__name__}: {exc}); restore the checkpoint or use a new --out"
        ) from None
    lacking = [k for k in _STATE_KEYS if not isinstance(state, dict) or k not in state]
    lacking += [k for k in ("generator", "torch") if k not in rng]
    if lacking:
        raise CheckpointError(
            f"checkpoint {folder} lacks {', '.join(lacking)} in state.json/rng.safetensors; "
            "restore the checkpoint or use a new --out"
        )
    return {"model": model, "ema": ema, "optimizer": optimizer, "rng": rng, "state": state}
