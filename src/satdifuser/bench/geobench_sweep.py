"""The sweep of ``satdifuser bench geobench``: plan the runs, skip finished ones, train the rest.

``GeoBenchSweep`` checks the options, finds the tasks under ``--root``, builds one frozen extractor
per (model, task type), extracts features once per (task, partition, model) into the library's
cache and trains each seed on them (``geobench_train.train_run``); each run's ``result.json`` is
written last. Tables, IQM and the plot are ``geobench_report``'s.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from satdifuser.bench.geobench_report import duration, write_csv
from satdifuser.bench.geobench_runs import (
    PRIMARY,
    RESULT,
    ModelSpec,
    Recipe,
    Run,
    parse_model,
    parse_partition,
    partition_order,
    read_result,
)
from satdifuser.bench.geobench_train import train_run
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError


def _list(text: str, what: str) -> list[str]:
    out = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    if not out:
        raise ConfigError(f"{what}={text!r} is empty; give a comma-separated list")
    return out


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in _list(text, what)]
    except ValueError:
        raise ConfigError(f"{what}={text!r} must be comma-separated integers, e.g. 0,1,2") from None


class GeoBenchSweep:
    """One invocation of the sweep (see ``satdifuser.bench.geobench``)."""

    def __init__(self, args: argparse.Namespace, argv: Sequence[str],
                 log: Callable[[str], None] | None = None) -> None:  # fmt: skip
        from satdifuser.data.geobench import _resolve_root, find_tasks
        from satdifuser.features.cache_root import default_cache_root

        self.args, self.argv = args, list(argv)
        self.log = log or (lambda s: print(s, flush=True))
        for name, v in (("--epochs", args.epochs), ("--pool", args.pool),
                        ("--batch-size", args.batch_size), ("--bootstrap", args.bootstrap),
                        ("--min-samples", args.min_samples)):  # fmt: skip
            if v < 1:
                raise ConfigError(f"{name}={v} must be >= 1")
        self.seeds = _ints(args.seeds, "--seeds")
        self.partitions = sorted({parse_partition(p) for p in _list(args.partitions,
                                  "--partitions")}, key=partition_order)  # fmt: skip
        self.models = list({m.name: m for m in map(parse_model, _list(args.models,
                            "--models"))}.values())  # fmt: skip
        self.recipe = Recipe(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            projection_dim=args.projection_dim, bottleneck_dim=args.bottleneck_dim,
            num_groups=max(1, min(8, args.bottleneck_dim, args.projection_dim)),
            head_channels=args.head_channels, pool=args.pool,
            timesteps=tuple(_ints(args.timesteps, "--timesteps")),
            taps=tuple(_list(args.taps, "--taps")) if args.taps else None,
            random_seed=args.random_seed, effnet_size=args.effnet_size,
        )  # fmt: skip
        self.root = _resolve_root(args.root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"--root {self.root}: no such folder; point it at the "
                                       "GEO-Bench root or a folder of task folders")  # fmt: skip
        found = find_tasks(self.root)
        if not found:
            raise DatasetNotFoundError(
                f"--root {self.root}: no GEO-Bench task folder found "
                "(task_specs.pkl + *_partition.json) at or below it"
            )
        if args.tasks:
            wanted = _list(args.tasks, "--tasks")
            missing = [t for t in wanted if t not in found]
            if missing:
                raise ConfigError(f"--tasks {', '.join(missing)} not found under {self.root}; "
                                  f"found: {', '.join(found)}")  # fmt: skip
            self.tasks = {t: found[t] for t in wanted}
        else:
            self.tasks = found
        self.out = Path(args.out)
        self.cache = Path(args.cache_dir) if args.cache_dir else default_cache_root()
        self._backbones: dict[str, Any] = {}
        self._extractors: dict[tuple[str, str], Any] = {}
        self.results: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------ extractors
    def backbone(self, spec: ModelSpec) -> Any:
        from satdifuser.bench.features import load_backbone, random_like

        key = f"{spec.kind}:{spec.backbone}"
        if key not in self._backbones:
            bb = load_backbone(str(spec.backbone))
            if spec.kind == "random":
                bb = random_like(bb, seed=self.recipe.random_seed)
            self._backbones[key] = bb
        return self._backbones[key]

    def weights_id(self, spec: ModelSpec) -> str:
        if spec.kind == "efficientnet_lite0":
            return "efficientnet-lite0-imagenet"
        return str(self.backbone(spec).weights_id())

    def extractor(self, spec: ModelSpec, task_type: str) -> Any:
        """The frozen extractor of a model for a task type (pooled maps unless segmentation)."""
        key = (spec.name, "seg" if task_type == "segmentation" else "cls")
        if key in self._extractors:
            return self._extractors[key]
        r = self.recipe
        pool = None if task_type == "segmentation" else r.pool
        if spec.kind == "efficientnet_lite0":
            from satdifuser.baselines import EfficientNetLiteExtractor
            from satdifuser.features.cache_view import SelectMaps
            from satdifuser.features.pooling import PooledExtractor

            ex: Any = EfficientNetLiteExtractor("imagenet", image_size=r.effnet_size,
                                                include_head=False)  # fmt: skip
            # pooled (classification) or every stage map (segmentation; SelectMaps gives the
            # bare extractor the feature spec the cache keys on, as bench dubai does)
            ex = PooledExtractor(ex, pool) if pool is not None else SelectMaps(ex, taps=None)
        else:
            from satdifuser.bench.features import tap_groups
            from satdifuser.features import FeatureExtractor

            bb = self.backbone(spec)
            groups = tap_groups(bb)
            taps = list(r.taps) if r.taps else groups["resnet"] + groups["attention"]
            ex = FeatureExtractor(bb, timesteps=list(r.timesteps), taps=taps,
                                  image_size=bb.sample_size, pool=pool)  # fmt: skip
        self._extractors[key] = ex
        return ex

    # ----------------------------------------------------------------------------- plan
    def split_sizes(self, task: str, partition: str) -> tuple[dict[str, int], str | None]:
        """Samples per split of a partition, or the reason the runs on it are skipped."""
        from satdifuser.data import geobench_format as fmt

        try:
            path, part = fmt.load_partition(self.tasks[task], partition)
        except DatasetNotFoundError:
            have = ", ".join(fmt.list_partitions(self.tasks[task])) or "none"
            return {}, f"partition {partition!r} not found (available: {have})"
        except DataFormatError as exc:
            return {}, f"unreadable partition ({exc})"
        sizes = {}
        for split in ("train", "val", "test"):
            try:
                sizes[split] = len(fmt.split_ids(path, part, split))
            except DataFormatError:
                sizes[split] = 0
        small = [f"{k} has {v}" for k, v in sizes.items() if v < self.args.min_samples]
        if small:
            return sizes, (f"too few samples: {', '.join(small)} "
                           f"(< --min-samples {self.args.min_samples})")  # fmt: skip
        return sizes, None

    def plan(self) -> list[Run]:
        """Every run, in order task, partition, model, seed, with its configuration."""
        runs = []
        for task, tdir in self.tasks.items():
            for part in self.partitions:
                pfile = tdir / f"{part}_partition.json"
                pid = (hashlib.sha256(pfile.resolve().read_bytes()).hexdigest()[:16]
                       if pfile.exists() else "missing")  # fmt: skip
                for spec in self.models:
                    for seed in self.seeds:
                        folder = self.out / "runs" / task / part / spec.slug / f"seed{seed}"
                        config = {"task": task, "task_dir": str(tdir.resolve()),
                                  "partition": part, "partition_sha": pid, "seed": seed,
                                  "model": spec.name, "weights": self.weights_id(spec),
                                  "recipe": asdict(self.recipe),
                                  "min_samples": self.args.min_samples}  # fmt: skip
                        runs.append(Run(task, part, seed, spec, folder, config))
        return runs

    # ------------------------------------------------------------------------------ run
    def data_for(self, run: Run, sizes: dict[str, int]) -> tuple[Any, Any, dict[str, Any]]:
        from satdifuser.data import GeoBenchDataModule
        from satdifuser.features.cache import CachedDataModule

        dm = GeoBenchDataModule(root=str(self.tasks[run.task]), task=run.task,
                                batch_size=self.recipe.batch_size, partition=run.partition,
                                view=self.recipe.view, seed=run.seed)  # fmt: skip
        info = {"task_type": dm.task_type, "num_classes": dm.num_classes,
                "classes": list(dm.classes), "ignore_index": dm.ignore_index,
                "sizes": sizes}  # fmt: skip
        ex = self.extractor(run.model, info["task_type"])
        data = CachedDataModule(dm, ex, self.cache, in_memory=True, progress=False)
        data.setup("fit")
        data.setup("test")
        return data, ex, info

    def execute(self) -> list[Run]:
        from satdifuser.viz import atomic_write_json

        runs = self.plan()
        todo = []
        for run in runs:
            res = read_result(run)
            if res is not None:
                self.results[run.key] = res
            else:
                todo.append(run)
        self.log(f"{len(runs)} runs ({len(self.tasks)} tasks x {len(self.partitions)} "
                 f"partitions x {len(self.models)} models x {len(self.seeds)} seeds): "
                 f"{len(runs) - len(todo)} already done, {len(todo)} to do; out {self.out}, "
                 f"feature cache {self.cache}")  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        write_csv(self, runs)
        checks = {(r.task, r.partition): self.split_sizes(r.task, r.partition) for r in todo}
        to_train = sum(1 for r in todo if checks[(r.task, r.partition)][1] is None)
        t_start, done_s, n_done = time.perf_counter(), 0.0, 0
        groups: dict[tuple[str, str, str], tuple[Any, Any, dict[str, Any]]] = {}
        for i, run in enumerate(todo, 1):
            t0 = time.perf_counter()
            if run.folder.exists():  # a run killed before its result: start it afresh
                shutil.rmtree(run.folder)
            run.folder.mkdir(parents=True, exist_ok=True)
            sizes, reason = checks[(run.task, run.partition)]
            head = {"config_hash": run.config_hash(), "config": run.config, "task": run.task,
                    "partition": run.partition, "seed": run.seed, "model": run.model.name,
                    "split_sizes": sizes}  # fmt: skip
            if reason is not None:
                res = {**head, "status": "skipped", "reason": reason}
                line = f"skipped: {reason}"
            else:
                gkey = (run.task, run.partition, run.model.name)
                if gkey not in groups:
                    groups.clear()  # one group's in-memory features at a time
                    groups[gkey] = self.data_for(run, sizes)
                data, ex, info = groups[gkey]
                out = train_run(run, data, ex, info, self.recipe)
                primary = PRIMARY[info["task_type"]]
                res = {**head, "task_type": info["task_type"], "primary_metric": primary,
                       "num_classes": info["num_classes"], **out}  # fmt: skip
                line = f"{primary} {out['metrics'].get(primary, math.nan):.4f}"
            atomic_write_json(run.folder / RESULT, res)  # last: marks the run finished
            self.results[run.key] = res
            write_csv(self, runs)
            dt = time.perf_counter() - t0
            if reason is None:  # the ETA counts trained runs only (a skip costs nothing)
                done_s, n_done = done_s + dt, n_done + 1
            left = len(todo) - i
            eta = done_s / max(1, n_done) * (to_train - n_done)
            self.log(f"[{i}/{len(todo)}] {run.key}: {line} ({dt:.1f} s); elapsed "
                     f"{duration(time.perf_counter() - t_start)}, ETA {duration(eta)} "
                     f"({left} runs left)")  # fmt: skip
        return runs


__all__ = ["GeoBenchSweep"]
