"""The LightningCLI behind ``satdifuser fit|validate|test``.

Run directory (``trainer.default_root_dir``, ``runs/default`` unless the config sets it)::

    <run>/config.yaml            resolved config of the fit (full class paths)
    <run>/env.json               versions and environment of the fit
    <run>/best.safetensors       fusion + head at the best validation score (+ best.json)
    <run>/logs/fit/metrics.csv   CSV logs (TensorBoard events too when tensorboard is installed)
    <run>/test/                  config.yaml, env.json, metrics.json, metrics.md, *.png
    <run>/validate/              the same for ``validate``

``test``/``validate`` load ``--ckpt_path`` (``best``, a run directory or a ``.safetensors`` file;
default: ``<run>/best.safetensors``). ``fit`` refuses a run directory that already holds
``best.safetensors`` unless ``--overwrite true``. ``--cache_dir DIR`` (YAML ``cache_dir:``) trains
and evaluates on features cached in DIR (built on first use) instead of running the extractor;
``--train_crop N`` (YAML ``train_crop:``) then trains a segmentation task on random N px crops of
the cached training samples (``CachedDataModule(train_crop=N)``), ``--train_flips true`` (YAML
``train_flips: true``) on random flips and quarter turns of them (``train_flips=True``).

Errors: parse errors and errors raised while the classes are built become one
:class:`~satdifuser.errors.ConfigError` line naming the key (no usage dump, no traceback). Output
paths are checked before anything is written; a run that fails removes the folder it created
(never one that existed before, and never one holding ``best.safetensors``). A run stopped by
SIGTERM keeps what it saved and raises :class:`~satdifuser.errors.RunInterruptedError` (exit 143).
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import platform
import sys
import time
from argparse import ArgumentError
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from satdifuser._system import cpu_model
from satdifuser.cli.config_errors import (
    config_group,
    instantiation_message,
    locate_key,
    option_strings,
    parser_error_message,
    trainer_error_message,
)
from satdifuser.cli.main import own_error
from satdifuser.cli.run_folder import (
    check_writable_folder,
    interrupted_message,
    missing_folders,
    remove_created,
)
from satdifuser.errors import (
    CheckpointError,
    ConfigError,
    RunInterruptedError,
    SatdifuserError,
)
from satdifuser.tasks import BEST_NAME, BaseTask, load_trainable, resolve_checkpoint
from satdifuser.tasks.report import write_evaluation_report
from satdifuser.viz import atomic_write_json, atomic_write_text

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 40,
    "default_root_dir": "runs/default",
    "enable_checkpointing": False,  # best.safetensors replaces Lightning's pickled .ckpt files
    "log_every_n_steps": 10,
}
"""Trainer defaults (the paper trains 40 epochs)."""


def environment_info(argv: list[str] | None = None) -> dict[str, Any]:
    """Versions, hardware and command of this process (written to ``env.json``)."""
    versions = {}
    for dist in ("satdifuser", "torch", "lightning", "torchmetrics", "diffusers", "jsonargparse",
                 "safetensors", "numpy", "transformers"):  # fmt: skip
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cpu = cpu_model()
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": ["satdifuser", *(argv if argv is not None else sys.argv[1:])],
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": gpus,
    }


class RunConfigSaver(SaveConfigCallback):
    """Writes the resolved config atomically to ``path`` (rank 0) and hands it to the task."""

    def __init__(
        self,
        parser: LightningArgumentParser,
        config: Any,
        path: str = "config.yaml",
        overwrite: bool = True,
    ) -> None:
        super().__init__(parser, config, overwrite=overwrite, save_to_log_dir=False)
        self.path = Path(path)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Dump the config (full class paths) to ``path``; keep a copy on the task."""
        text = self.parser.dump(self.config, skip_none=False)
        atomic_write_text(self.path, text)
        if isinstance(pl_module, BaseTask):
            pl_module.run_config = text


class SatdifuserCLI(LightningCLI):
    """LightningCLI with satdifuser's run directory, checkpoints, cache and reports."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.argv = list(args or [])
        self._created: list[Path] = []  # output folders this run creates (removed on failure)
        no_exit = {"exit_on_error": False}  # parse errors raise ArgumentError: no usage dump
        try:
            super().__init__(
                model_class=BaseTask,
                subclass_mode_model=True,
                datamodule_class=LightningDataModule,
                subclass_mode_data=True,
                save_config_callback=RunConfigSaver,
                save_config_kwargs={"overwrite": True},
                trainer_defaults=dict(TRAINER_DEFAULTS),
                seed_everything_default=0,
                auto_configure_optimizers=False,
                parser_kwargs={"default_env": False, **no_exit,
                               **{name: dict(no_exit) for name in self.subcommands()}},
                args=args,
                run=run,
            )  # fmt: skip
        except SIGTERMException:
            trainer = getattr(self, "trainer", None)
            message = interrupted_message(str(self.subcommand), trainer, BEST_NAME)
            raise RunInterruptedError(message) from None
        except Exception:
            remove_created(self._created, keep=BEST_NAME)
            raise

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Only fit, validate and test (predict is not offered)."""
        return {
            "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
            "validate": {"model", "dataloaders", "datamodule"},
            "test": {"model", "dataloaders", "datamodule"},
        }

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Top-level ``cache_dir`` and ``overwrite`` options."""
        parser.add_argument(
            "--cache_dir", "--cache-dir", type=str | None, default=None,
            help="Root of the feature cache (content-addressed <split>-<key> folders, shared with "
            "extract, demo and bench): extract once there, then train/evaluate on cached "
            "features. 'auto': $SATDIFUSER_CACHE or ~/.cache/satdifuser/features.",
        )  # fmt: skip
        parser.add_argument(
            "--train_crop", "--train-crop", type=int | None, default=None,
            help="With cache_dir, segmentation: train on random crops of this many input pixels "
            "of the cached training samples (every map at its stride and the mask; a new crop "
            "each epoch, seeded); a multiple of the coarsest feature stride. null: whole samples.",
        )  # fmt: skip
        parser.add_argument(
            "--train_flips", "--train-flips", type=bool, default=False,
            help="With cache_dir, segmentation: also flip and turn each cached training sample "
            "(crop or whole) by a random element of the dihedral group (flips; quarter turns "
            "when square), the same for every map and the mask; new each epoch, seeded.",
        )  # fmt: skip
        parser.add_argument(
            "--overwrite", type=bool, default=False,
            help="fit: allow a run directory that already holds best.safetensors.",
        )  # fmt: skip

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; a parse error becomes one :class:`ConfigError` line naming the key."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as exc:
            sub = self.argv[0] if self.argv else "fit"
            raise ConfigError(
                parser_error_message(str(exc), sub, self.argv, option_strings(parser, sub))
            ) from exc

    def instantiate_classes(self) -> None:
        """Build the classes; an error that is not satdifuser's becomes one line."""
        try:
            super().instantiate_classes()
        except SatdifuserError:
            raise
        except Exception as exc:
            own = own_error(exc)
            if own is not None:  # raised inside a constructor jsonargparse called
                raise self._with_key(own, exc) from exc
            raise ConfigError(instantiation_message(exc)) from exc

    def _with_key(self, own: SatdifuserError, exc: Exception) -> SatdifuserError:
        """``own`` with its message prefixed by the config key it is about, when that is clear."""
        group = config_group(exc)
        cfg = self.config.get(str(self.subcommand), self.config)
        key = locate_key(str(own), cfg.items(), group)
        prefix = key or (f"{group}.init_args" if group else None)
        if prefix is None or str(own).startswith(prefix):
            return own
        try:
            keyed = copy.copy(own)
            keyed.args = (f"{prefix}: {own}",)
        except Exception:  # an error class that cannot be copied keeps its own message
            return own
        return keyed

    def before_instantiate_classes(self) -> None:
        """Check output paths (nothing is written yet); registry names become class paths."""
        self._check_outputs()
        cfg = self.config.get(str(self.subcommand), self.config)
        init = cfg.get("model", {}).get("init_args") if cfg.get("model") else None
        if init is None:
            return
        for key in ("fusion", "head"):
            value = init.get(key)
            if isinstance(value, str):
                init[key] = registry_to_class_path(key, value, init.get(f"{key}_args"))
                init[f"{key}_args"] = None

    def _parse_ckpt_path(self) -> None:
        """No-op: checkpoints are safetensors files, never unpickled to read hyperparameters."""

    # -- run directory ------------------------------------------------------------------------

    def _cfg(self, key: str) -> Any:
        return self._get(self.config, key)

    def run_dir(self) -> Path:
        """Folder of the run: ``trainer.default_root_dir``, or the folder of ``--ckpt_path``."""
        trainer_cfg = self._cfg("trainer") or {}
        root = Path(trainer_cfg.get("default_root_dir") or TRAINER_DEFAULTS["default_root_dir"])
        ckpt = self._cfg("ckpt_path")
        if self.subcommand in ("validate", "test") and ckpt not in (None, "best"):
            p = Path(str(ckpt))
            return p if p.is_dir() else p.parent
        return root

    def out_dir(self) -> Path:
        """Where this subcommand writes: the run folder (fit) or ``<run>/<subcommand>``."""
        run = self.run_dir()
        return run if self.subcommand == "fit" else run / str(self.subcommand)

    def _check_outputs(self) -> None:
        """Refuse unusable output paths before anything is created; note what this run creates."""
        if self.subcommand is None:
            return
        ckpt = self._cfg("ckpt_path")
        key, fix = "trainer.default_root_dir", None
        if self.subcommand != "fit" and ckpt not in (None, "best"):
            key = "ckpt_path"
            fix = f"{self.subcommand} writes beside the checkpoint: copy it to a writable folder"
        out = self.out_dir()
        check_writable_folder(out, key, fix)
        if self.subcommand == "fit" and (out / BEST_NAME).exists() and not self._cfg("overwrite"):
            raise ConfigError(
                f"run directory {out} already holds {BEST_NAME}; choose another "
                "trainer.default_root_dir, or pass --overwrite true to replace that run"
            )
        cache_dir = self._cfg("cache_dir")
        if cache_dir and str(cache_dir) != "auto":
            check_writable_folder(Path(cache_dir), "cache_dir")
        self._created = missing_folders(out)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Default loggers in ``<run>/logs/<subcommand>`` and the config saver's target path."""
        out = self.out_dir()
        self.save_config_kwargs = {"overwrite": True, "path": str(out / "config.yaml")}
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        if trainer_cfg.get("logger") in (None, True):
            kwargs["logger"] = default_loggers(self.run_dir(), str(self.subcommand))
        try:
            return super().instantiate_trainer(**kwargs)
        except SatdifuserError:
            raise
        except Exception as exc:  # Trainer's checks: max_epochs, accelerator, devices ...
            params = inspect.signature(Trainer.__init__).parameters
            raise ConfigError(trainer_error_message(exc, params)) from exc

    def _datamodule(self, model: LightningModule, datamodule: Any) -> Any:
        cache_dir, train_crop = self._cfg("cache_dir"), self._cfg("train_crop")
        train_flips = bool(self._cfg("train_flips"))
        if not cache_dir:
            if train_crop is not None:
                raise ConfigError(
                    f"train_crop={train_crop} crops cached features, but cache_dir is not set; "
                    "set cache_dir (or crop images with the data module's crop options)"
                )
            if train_flips:
                raise ConfigError(
                    "train_flips=true flips cached features, but cache_dir is not set; set "
                    "cache_dir (or augment images with the data module's augment option)"
                )
            return datamodule
        if getattr(model, "sliding_window", None):
            raise ConfigError(
                f"cache_dir={cache_dir!r} and model.init_args.sliding_window="
                f"{model.sliding_window} do not combine: sliding-window evaluation runs the "
                "extractor on image windows; remove cache_dir (or set sliding_window: null)"
            )
        from satdifuser.features.cache import CachedDataModule

        if str(cache_dir) == "auto":
            from satdifuser.features.cache_root import default_cache_root

            cache_dir = str(default_cache_root())
        keep_image = getattr(model, "task_type", "") == "segmentation"  # image panels in reports
        return CachedDataModule(datamodule, model.extractor, cache_dir, keep_image=keep_image,
                                train_crop=train_crop, train_flips=train_flips)  # fmt: skip

    def _write_env(self, folder: Path, model: LightningModule, extra: dict[str, Any]) -> None:
        if not self.trainer.is_global_zero:
            return
        info = environment_info(self.argv)
        info["seed"] = self._cfg("seed_everything")
        if isinstance(model, BaseTask):
            info["extractor"] = model.extractor_identity()
            spec = getattr(model.extractor, "spec", None)
            if spec is not None and hasattr(spec, "digest"):
                info["feature_spec"] = spec.to_dict()
                info["feature_spec_digest"] = spec.digest()
        atomic_write_json(folder / "env.json", {**info, **extra})

    # -- subcommands --------------------------------------------------------------------------

    def fit(self, model: LightningModule, datamodule: Any = None, **kwargs: Any) -> None:
        """Train; keep ``<run>/best.safetensors``; print where the run went."""
        run = Path(self.trainer.default_root_dir)
        ckpt = self._cfg("ckpt_path")
        if ckpt is not None and isinstance(model, BaseTask):
            load_trainable(model, resolve_checkpoint(ckpt, run))
        dm = self._datamodule(model, datamodule)
        self._write_env(run, model, {"subcommand": "fit", "warm_start": ckpt})
        kwargs.pop("ckpt_path", None)
        self.trainer.fit(model, datamodule=dm, **kwargs)
        best = next((c for c in self.trainer.callbacks if type(c).__name__ ==
                     "BestTrainableCheckpoint"), None)  # fmt: skip
        if self.trainer.is_global_zero and best is not None and best.best_path is not None:
            print(
                f"satdifuser fit: best {best.monitor}={best.best_score:.4f} at epoch "
                f"{best.best_epoch}; checkpoint {best.best_path}; test with: satdifuser test "
                f"--config {run / 'config.yaml'}"
            )

    def _evaluate(self, stage: str, model: LightningModule, datamodule: Any, **kw: Any) -> None:
        if not isinstance(model, BaseTask):
            raise ConfigError(
                f"model {type(model).__name__} is not a satdifuser task; use "
                "satdifuser.tasks.ClassificationTask, MultiLabelClassificationTask or "
                "SegmentationTask"
            )
        ckpt = self._cfg("ckpt_path")
        run, out = self.run_dir(), self.out_dir()
        if ckpt is None and not (run / BEST_NAME).exists():
            raise CheckpointError(
                f"no --ckpt_path given and no {BEST_NAME} in run directory {run}; run "
                "`satdifuser fit` with this config first or pass --ckpt_path <run dir>"
            )
        path = resolve_checkpoint(ckpt if ckpt is not None else run, run)
        meta = load_trainable(model, path)
        dm = self._datamodule(model, datamodule)
        ckpt_info = {
            "checkpoint": str(path),
            "checkpoint_epoch": _num(meta.get("epoch")),
            "checkpoint_score": _num(meta.get("score")),
            "monitor": meta.get("monitor"),
        }
        self._write_env(out, model, {"subcommand": stage, **ckpt_info})
        kw.pop("ckpt_path", None)
        run_fn = self.trainer.test if stage == "test" else self.trainer.validate
        run_fn(model, datamodule=dm, **kw)
        if self.trainer.is_global_zero:
            key = "test" if stage == "test" else "val"
            paths = write_evaluation_report(model, out, key, {"checkpoint": ckpt_info})
            print(f"satdifuser {stage}: wrote {', '.join(str(p) for p in paths.values())}")

    def validate(self, model: LightningModule, datamodule: Any = None, **kw: Any) -> None:
        """Evaluate the checkpoint on the validation split; write ``<run>/validate/``."""
        self._evaluate("validate", model, datamodule, **kw)

    def test(self, model: LightningModule, datamodule: Any = None, **kw: Any) -> None:
        """Evaluate the checkpoint on the test split; write ``<run>/test/``."""
        self._evaluate("test", model, datamodule, **kw)


def registry_to_class_path(kind: str, name: str, args: dict[str, Any] | None) -> Namespace:
    """``("fusion", "moe", {...})`` -> ``Namespace(class_path=..., init_args=...)``.

    Raises:
        UnknownNameError: unknown registry name (with close matches).
        ConfigError: an argument the class does not take.
    """
    if kind == "fusion":
        from satdifuser.fusion import FUSIONS as registry

        skip = 1
    else:
        from satdifuser.heads import HEADS as registry

        skip = 2
    cls = registry.get(name)
    params = list(inspect.signature(cls).parameters)[skip:]
    for key in args or {}:
        if key not in params:
            raise ConfigError(
                f"model.init_args.{kind}_args has {key!r}, which {kind} {name!r} does not take; "
                f"accepted: {', '.join(params)}"
            )
    return Namespace(
        class_path=f"{cls.__module__}.{cls.__qualname__}", init_args=Namespace(**(args or {}))
    )


def default_loggers(run: Path, version: str) -> list[Logger]:
    """CSV logs in ``<run>/logs/<version>``, plus TensorBoard when it is installed."""
    loggers: list[Logger] = [CSVLogger(save_dir=str(run), name="logs", version=version)]
    if find_spec("tensorboard") is not None or find_spec("tensorboardX") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run), name="logs", version=version))
    return loggers


def _num(value: str | None) -> float | int | None:
    return None if value is None else json.loads(value)


__all__ = ["TRAINER_DEFAULTS", "RunConfigSaver", "SatdifuserCLI", "environment_info"]
