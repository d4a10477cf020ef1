"""Output folders of ``fit|validate|test``: checked before anything is written, removed on failure.

A run must not fail half-way because its output path is a file or a read-only folder, and a run
that failed must not leave a folder holding only ``env.json`` and ``logs/`` behind. Only folders
that did not exist before the run are ever removed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from satdifuser.errors import ConfigError


def check_writable_folder(path: Path, key: str, fix: str | None = None) -> None:
    """Raise :class:`ConfigError` unless ``path`` is, or can be created as, a writable folder.

    Args:
        path: The folder the command will write into (it may not exist yet).
        key: The config key or option that chose ``path`` (named in the message).
        fix: What to do when the folder is read-only (default: choose another ``key``).

    Raises:
        ConfigError: ``path`` or one of its parents is a file, or the deepest existing folder
            is not writable.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise ConfigError(
                f"{key}={str(path)!r}: {existing} is a broken symbolic link; "
                f"remove it or choose another {key}"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{key}={str(path)!r}: {existing} is a file, not a folder; choose a folder path "
            f"for {key}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{key}={str(path)!r}: folder {existing} is not writable (read-only or owned by "
            f"another user); {fix or f'choose a writable {key} or fix its permissions'}"
        )


def missing_folders(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    current = path.absolute()
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing


def remove_created(created: list[Path], keep: str | None = None) -> bool:
    """Remove folders a failed run created (``created`` from :func:`missing_folders`).

    The deepest folder is removed with its content unless it holds a file named ``keep``
    (a checkpoint worth keeping); its parents are removed only when they are empty.

    Returns:
        True when the deepest folder was removed (or never created).
    """
    if not created:
        return True
    run = created[0]
    if run.is_dir():
        if keep is not None and (run / keep).exists():
            return False
        shutil.rmtree(run, ignore_errors=True)
    for parent in created[1:]:
        try:
            parent.rmdir()
        except OSError:  # not empty (someone else writes there) or already gone
            break
    return not run.exists()


def interrupted_message(
    subcommand: str,
    trainer: Any,
    checkpoint: str = "best.safetensors",
    signal_name: str = "SIGTERM",
) -> str:
    """What a run stopped by ``signal_name`` finished and kept (one line).

    Args:
        subcommand: ``fit``, ``validate`` or ``test``.
        trainer: The Lightning ``Trainer`` (None when it was not built yet).
        checkpoint: File name of the run's best checkpoint.
        signal_name: The signal, as named in the message.
    """
    if subcommand != "fit" or trainer is None:
        return f"{subcommand} stopped by {signal_name} before it finished; no report was written"
    run = Path(trainer.default_root_dir)
    done = f"with {trainer.current_epoch}"
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        done += f" of {trainer.max_epochs}"
    kept = (
        f"{run / checkpoint} holds the best epoch so far"
        if (run / checkpoint).exists()
        else f"no checkpoint was saved yet ({run} keeps the logs)"
    )
    return (
        f"fit stopped by {signal_name} {done} epochs completed; {kept}; training did not finish, "
        "rerun fit (with --overwrite true) to train to the end"
    )


__all__ = ["check_writable_folder", "interrupted_message", "missing_folders", "remove_created"]
