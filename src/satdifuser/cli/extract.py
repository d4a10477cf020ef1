"""``satdifuser extract``: extract the features of a dataset split once into an on-disk cache.

Examples::

    satdifuser extract --backbone tiny-pixel --dataset eurosat --split train --budget 200 \\
        --cache-dir features/eurosat --batch-size 32
    torchrun --nproc_per_node 4 -m satdifuser extract ... # each rank writes its own shards

The cache lands in ``<cache-dir>/<split>-<key>/`` (content-addressed: the key covers the
extractor, the dataset and its options, the sample ids and the storage options), the folder
``satdifuser fit --cache_dir <cache-dir>`` and ``demo``/``bench`` look for, so another
configuration never reuses (or touches) it. A rerun resumes an interrupted build (also after
``kill -9``) and ends with the same bytes as an uninterrupted run. See ``docs/cache.md``.

Like ``satdifuser fit``, ``--config`` instantiates only a ``FeatureExtractor`` subclass and a
``LightningDataModule`` subclass (nested classes only where the constructor's type allows them),
and ``--dataset`` only a ``torch.utils.data.Dataset`` subclass: a YAML naming ``os.system`` is
refused before anything is called. Bad option values are one-line errors raised before any file
is created (:mod:`satdifuser.cli.validate`).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from satdifuser.cli import validate
from satdifuser.errors import ConfigError, SatdifuserError

DATASETS = {
    "eurosat": "satdifuser.data.eurosat.EuroSAT",
    "dubai": "satdifuser.data.dubai_aerial.DubaiAerial",
    "mask-folder": "satdifuser.data.mask_folder.MaskFolder",
}
"""Short names of ``--dataset``; any ``package.module.Class`` path works too."""


def _csv(values: Sequence[str]) -> list[str]:
    return [v for item in values for v in item.split(",") if v]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``satdifuser extract`` (bad values are one-line errors)."""
    p = validate.OneLineArgumentParser(
        prog="satdifuser extract",
        description="Extract frozen-diffusion features of one dataset split into a cache.",
    )
    g = p.add_argument_group("extractor (everything here keys the cache)")
    g.add_argument("--backbone", default="tiny-sd", help="registry name or checkpoint folder")
    g.add_argument("--timesteps", nargs="+", type=validate.int_list, default=None,
                   help="e.g. 21 61 161 (or 21,61,161)")  # fmt: skip
    g.add_argument(
        "--taps", nargs="+", default=None, help="tap patterns (default: the reference's)"
    )
    g.add_argument("--image-size", type=validate.positive_int, default=None,
                   help="working size (backbone default)")  # fmt: skip
    g.add_argument("--noise", choices=["add_noise", "ddim_inversion"], default="add_noise")
    g.add_argument("--ensemble", type=validate.positive_int, default=1)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--posterior", choices=["mean", "sample"], default="mean")
    g.add_argument("--compute-dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    g.add_argument("--prompt", default="a satellite image")
    g.add_argument("--no-metadata", action="store_true", help="drop DiffusionSat metadata")
    g.add_argument("--inversion-steps", type=validate.positive_int, default=50)
    p.add_argument("--config", type=Path, default=None,
                   help="a `satdifuser fit` YAML: takes model.init_args.extractor and data "
                   "from it (the extractor and data options below are then ignored)")  # fmt: skip
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="eurosat", help=f"{', '.join(DATASETS)} or a class path")
    d.add_argument("--root", default=None, help="data root (default: $SATDIFUSER_DATA, shared/)")
    d.add_argument("--split", default="train", help="split name (also the cache sub-folder)")
    d.add_argument(
        "--budget", type=validate.positive_int, default=None, help="labels per class (EuroSAT)"
    )
    d.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra dataset argument (YAML value), repeatable")  # fmt: skip
    d.add_argument(
        "--limit", type=validate.positive_int, default=None, help="only the first N samples"
    )
    c = p.add_argument_group("cache")
    c.add_argument("--cache-dir", required=True, type=Path,
                   help="cache root; the split goes to DIR/<split>-<key>/")  # fmt: skip
    c.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                   help="storage dtype")  # fmt: skip
    c.add_argument("--keep-taps", nargs="+", default=None, metavar="PATTERN",
                   help="store only maps whose tap matches (fnmatch)")  # fmt: skip
    c.add_argument("--max-gb", type=validate.positive_float, default=None,
                   help="refuse above this size (1e9 B)")  # fmt: skip
    c.add_argument("--batch-size", type=validate.positive_int, default=8)
    c.add_argument("--shard-size", type=validate.positive_int, default=None,
                   help="rows per shard (auto ~256 MiB)")  # fmt: skip
    c.add_argument("--num-workers", type=validate.non_negative_int, default=0,
                   help="image-reading workers")  # fmt: skip
    c.add_argument("--device", type=validate.device, default="auto",
                   help="auto (GPU of LOCAL_RANK if any), cpu, cuda:N")  # fmt: skip
    c.add_argument("--threads", type=validate.positive_int, default=None, help="torch CPU threads")
    c.add_argument("--overwrite", action="store_true", help="rebuild a cache of another config")
    c.add_argument("--verify", action="store_true", help="re-hash every shard of a complete cache")
    c.add_argument("--dry-run", action="store_true", help="print the estimate and stop")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--rank", type=validate.non_negative_int, default=None,
                   help="rank without a process group")  # fmt: skip
    c.add_argument("--world-size", type=validate.positive_int, default=None,
                   help="ranks without a process group")  # fmt: skip
    return p


def _dataset_class(name: str) -> type:
    """The ``torch.utils.data.Dataset`` subclass of ``--dataset`` (nothing else is called).

    Raises:
        ConfigError: not a class path, not importable, or not a Dataset subclass.
    """
    from torch.utils.data import Dataset

    path = DATASETS.get(name, name)
    module, _, attr = path.rpartition(".")
    hint = f"use one of {', '.join(DATASETS)} or the class path of a torch Dataset"
    if not module:
        raise ConfigError(f"--dataset {name!r} is neither a short name nor a class path; {hint}")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"--dataset {name!r}: cannot import {path}; {hint}") from None
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        raise ConfigError(
            f"--dataset {name!r}: {path} is not a torch.utils.data.Dataset subclass, so it is "
            f"not called; {hint}"
        )
    return cls


def make_dataset(args: argparse.Namespace) -> Any:
    """The dataset of ``--dataset`` with root/split/budget when its constructor takes them."""
    import yaml
    from torch.utils.data import Subset

    cls = _dataset_class(args.dataset)
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    for key in ("root", "split", "budget"):
        value = getattr(args, key)
        if key in params and value is not None:
            kwargs[key] = value
        elif value is not None and key != "split":
            raise ConfigError(f"--{key} is not an argument of {cls.__name__}; drop it")
    for item in args.data_arg:
        key, sep, value = item.partition("=")
        if not sep or key not in params:
            raise ConfigError(
                f"--data-arg {item!r}: expected KEY=VALUE with KEY among "
                f"{', '.join(n for n in params if n != 'self')}"
            )
        kwargs[key] = yaml.safe_load(value)
    dataset = cls(**kwargs)
    if args.limit is not None:
        dataset = Subset(dataset, range(min(args.limit, len(dataset))))
    return dataset


def make_extractor(args: argparse.Namespace) -> Any:
    """The ``FeatureExtractor`` of the extractor options."""
    from satdifuser.features.extractor import FeatureExtractor

    timesteps = [t for item in args.timesteps for t in item] if args.timesteps else None
    return FeatureExtractor(
        backbone=args.backbone,
        timesteps=timesteps,
        taps=_csv(args.taps) if args.taps else None,
        image_size=args.image_size,
        noise=args.noise,
        ensemble=args.ensemble,
        seed=args.seed,
        posterior=args.posterior,
        dtype=args.compute_dtype,
        prompt=args.prompt,
        use_metadata=not args.no_metadata,
        inversion_steps=args.inversion_steps,
    )


_NOISE = ("Does not validate against", "Subtypes:", "Errors:", "Given value type:",
          "- Expected a <class 'NoneType'>")  # fmt: skip


def _one_line(message: str) -> str:
    """jsonargparse's indented error tree as one line (innermost given value only)."""
    lines = [line.strip() for line in message.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line or line.startswith(_NOISE):
            continue
        if line.startswith("Given value:"):
            if any(o.startswith("Given value:") for o in out):
                continue
            line = line[:120]
        out.append(line.removeprefix("- "))
    text = " ".join(out).replace('Parser key "extractor"', "model.init_args.extractor")
    return text.replace('Parser key "data"', "data")


def _instantiate(path: Path, ex_node: dict[str, Any], data_node: dict[str, Any]) -> tuple[Any, Any]:
    """(extractor, data module) through the same typed parser as ``satdifuser fit``.

    Like LightningCLI, only a subclass of ``FeatureExtractor`` (``model.init_args.extractor``)
    and of ``LightningDataModule`` (``data``) is instantiated, and nested ``class_path`` values
    only where the constructor's annotation allows that class; anything else (``os.system``,
    ``builtins.print``) is refused before it is called.
    """
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    from satdifuser.features.extractor import FeatureExtractor

    parser = ArgumentParser(exit_on_error=False, default_env=False)
    parser.add_subclass_arguments(FeatureExtractor, "extractor", required=True)
    parser.add_subclass_arguments(LightningDataModule, "data", required=True)
    try:
        cfg = parser.parse_object({"extractor": ex_node, "data": data_node})
    except argparse.ArgumentError as exc:
        raise ConfigError(f"--config {path}: {_one_line(str(exc))}; fix the YAML") from None
    try:
        init = parser.instantiate_classes(cfg)
    except SatdifuserError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--config {path}: {_one_line(str(exc))}; fix the YAML") from None
    return init.extractor, init.data


def from_config(path: Path, split: str) -> tuple[Any, Any, str]:
    """(dataset of ``split``, extractor, data name) from a ``satdifuser fit`` YAML.

    Raises:
        ConfigError: When the file is unreadable, not a mapping, lacks
            ``model.init_args.extractor`` or ``data``, or names a class of the wrong kind.
    """
    import yaml

    from satdifuser.features.cache_plan import check_deterministic

    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        why = " ".join(str(exc).split())
        raise ConfigError(f"--config {path} is unreadable ({why}); pass a fit YAML") from None
    model = cfg.get("model") if isinstance(cfg, dict) else None
    init_args = model.get("init_args") if isinstance(model, dict) else None
    ex_node = init_args.get("extractor") if isinstance(init_args, dict) else None
    data_node = cfg.get("data") if isinstance(cfg, dict) else None
    if not isinstance(ex_node, dict) or not isinstance(data_node, dict):
        got = (
            "" if isinstance(cfg, dict) else f" (its top level is {str(cfg)[:40]!r}, not a mapping)"
        )
        raise ConfigError(
            f"--config {path} needs model.init_args.extractor and data (class_path + init_args)"
            f"{got}, as in configs/eurosat_tiny.yaml"
        )
    if "class_path" not in ex_node:  # plain init_args of the default extractor
        ex_node = {"class_path": "satdifuser.features.FeatureExtractor", "init_args": ex_node}
    extractor, dm = _instantiate(path, ex_node, data_node)
    if split == "train" and getattr(dm, "augment", False):
        raise ConfigError(
            f"--config {path}: data has augment: true, but a feature cache stores one fixed view "
            "of each image; set augment: false"
        )
    if callable(getattr(dm, "dataset", None)):
        dataset = dm.dataset(split)
    else:
        dm.setup({"train": "fit", "val": "validate"}.get(split, split))
        dataset = getattr(dm, f"{split}_dataloader")().dataset
    check_deterministic(dataset, split)
    return dataset, extractor, type(dm).__name__


def init_distributed() -> tuple[int, int, int, bool]:
    """Rank, world size, local rank from torchrun/srun variables; joins the process group.

    Returns:
        (rank, world_size, local_rank, created): ``created`` when this call initialised the group
        (with ``MASTER_ADDR`` set); without it, ranks coordinate through the file system.
    """
    import torch
    import torch.distributed as dist

    env = os.environ
    rank = int(env.get("RANK", env.get("SLURM_PROCID", 0)))
    world = int(env.get("WORLD_SIZE", env.get("SLURM_NTASKS", 1)))
    local = int(env.get("LOCAL_RANK", env.get("SLURM_LOCALID", 0)))
    if world <= 1 or dist.is_initialized() or "MASTER_ADDR" not in env:
        return rank, world, local, False
    env.setdefault("RANK", str(rank))
    env.setdefault("WORLD_SIZE", str(world))
    env.setdefault("MASTER_PORT", "29500")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, timeout=timedelta(hours=12))
    return rank, world, local, True


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser extract``."""
    args = build_parser().parse_args(argv)
    import torch
    import torch.distributed as dist

    from satdifuser.features.cache import FeatureCacheBuilder, human_bytes, verify_cache
    from satdifuser.features.cache_plan import make_plan, split_folder

    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, local, created = init_distributed()
    if args.rank is not None or args.world_size is not None:
        rank = args.rank if args.rank is not None else 0
        world = args.world_size if args.world_size is not None else 1
    device = args.device
    if device == "auto":
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
        if device != "cpu" and local >= torch.cuda.device_count():
            raise ConfigError(
                f"--device auto: LOCAL_RANK={local} but this machine has "
                f"{torch.cuda.device_count()} GPU(s); start at most that many ranks per machine"
            )
    say = print if rank == 0 else (lambda *a, **k: None)
    try:
        if args.config is not None:
            dataset, extractor, data_name = from_config(args.config, args.split)
            if args.limit is not None:
                from torch.utils.data import Subset

                dataset = Subset(dataset, range(min(args.limit, len(dataset))))
        else:
            dataset, extractor, data_name = make_dataset(args), make_extractor(args), args.dataset
        keep = _csv(args.keep_taps or [])
        folder = split_folder(args.cache_dir, args.split, make_plan(
            dataset, extractor, dtype=args.dtype, keep_taps=keep, batch_size=args.batch_size,
            shard_size=args.shard_size,
        ))  # fmt: skip
        builder = FeatureCacheBuilder(
            dataset, extractor, folder, dtype=args.dtype, keep_taps=keep,
            batch_size=args.batch_size, shard_size=args.shard_size, num_workers=args.num_workers,
            device=device, rank=None if created else rank, world_size=None if created else world,
        )  # fmt: skip
        builder.prepare(overwrite=args.overwrite, max_gb=args.max_gb)
        plan, ranks = builder.plan, builder.ranks
        if builder.complete:
            if args.verify:
                verify_cache(folder, full=True)
            say(f"cache {folder} is complete and matches the configuration (key {plan.key})"
                + ("; every shard re-hashed OK" if args.verify else "; nothing to do"))  # fmt: skip
            return 0
        done, remaining = builder.done_shards(), builder.remaining_bytes()
        info, bb = plan.feature_info, plan.fingerprint["backbone"]
        say(f"extract {data_name}/{args.split}: {plan.num_samples} samples -> {folder} "
            f"(key {plan.key}; {len(info)} maps, {plan.storage_dtype}; backbone {bb}; "
            f"{ranks.world_size} rank(s), device {device})")  # fmt: skip
        say(f"estimated size {human_bytes(plan.estimated_bytes)} "
            f"({human_bytes(plan.bytes_per_sample)} per sample) in {plan.num_shards} shards of "
            f"{plan.shard_size}; {human_bytes(remaining)} still to write")  # fmt: skip
        if done:
            say(f"resuming: {len(done)} of {plan.num_shards} shards already on disk")
        if builder.layout_adopted:
            say(f"note: keeping the existing layout (batch size {plan.batch_size}, shard size "
                f"{plan.shard_size}) so the result equals an uninterrupted run")  # fmt: skip
        if args.dry_run:
            return 0
        try:
            report = builder.run(progress=not args.no_progress)
        except KeyboardInterrupt:
            print(f"satdifuser extract: interrupted; the shards finished so far stay in {folder} "
                  "and rerunning the same command resumes from them", file=sys.stderr)  # fmt: skip
            return 130
        rate = report.samples_extracted / report.seconds if report.seconds else 0.0
        n, secs = report.samples_extracted, report.seconds
        print(f"rank {ranks.rank}: wrote {report.shards_written} shards, {n} images in "
              f"{secs:.1f} s ({rate:.2f} img/s)")  # fmt: skip
        if builder.complete:
            say(f"cache complete: {folder / 'index.json'}")
        else:
            print(f"rank {ranks.rank}: done; the index is written by the last rank to finish")
        return 0
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
        sys.stdout.flush()


__all__ = [
    "DATASETS",
    "build_parser",
    "from_config",
    "init_distributed",
    "make_dataset",
    "make_extractor",
    "run",
]
