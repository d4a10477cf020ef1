"""Output folders of ``fit|validate|test``: checked before anything is written, removed on failure.

A run must not fail half-way because its output path is a file or a read-only folder, and a run
that failed must not leave a folder holding only ``env.json`` and ``logs/`` behind. Only folders
that did not exist before the run are ever removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from satdifuser.features.atomic_io import check_writable_folder  # re-exported for the cli


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
