"""``satdifuser bench geobench``: GEO-Bench's protocol (tasks x partitions x seeds x models).

Every run is one (task, partition, seed, model): a satdifuser task (classification,
multi-label or segmentation, chosen by the GEO-Bench task) on a frozen extractor, trained by
``tasks.fit_and_test`` (the code path of ``satdifuser fit`` + ``test``) on the library's
feature cache (``CachedDataModule`` over ``GeoBenchDataModule``), validated every epoch, the
best epoch tested. Features are extracted once per (task, partition, model) and shared by the
seeds (content-addressed, so reruns and resumes reuse them).

Models (``--models``, comma-separated specs):

- ``satdifuser:BACKBONE[:FUSION]``: a diffusion backbone (registered name or folder),
  FUSION one of concat, gw (default), lw, moe;
- ``random:BACKBONE[:FUSION]``: the same UNet with seeded random weights (``random_like``);
- ``efficientnet_lite0[:FUSION]``: EfficientNet-Lite0 (ImageNet) stage outputs, same fusion
  and head (needs the ``efficientnet`` extra).

Recipe per task type (``configs/geobench/*.yaml``, CPU-sized widths): classification and
multi-label: every map pooled to at most ``--pool`` x ``--pool``, channels standardised on the
training rows, fusion + linear head; segmentation: full maps, fusion + UPerNet head, logits
upsampled to the mask (nothing ignored: GEO-Bench's mIoU over all classes).

Output under ``--out``: ``runs/<task>/<partition>/<model>/seed<k>/result.json`` (written
atomically, last: a run with a complete result whose config hash matches is never redone, so a
killed sweep resumes where it stopped), ``runs.csv`` (one row per run and metric, rewritten
after every run), ``tables/<task>.md``, ``aggregate.csv`` / ``aggregate.md`` (GEO-Bench's
normalised per-task IQM and the IQM over tasks, bootstrap 95 % intervals; see
``satdifuser.tasks.aggregate``) and ``iqm.png``. A run whose partition is missing or has fewer
than ``--min-samples`` samples in a split is recorded as skipped (NA) instead of failing.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError
from satdifuser.tasks.runner import seed_init

FUSIONS = {"concat": "concat", "gw": "global_weighted", "global_weighted": "global_weighted",
           "lw": "local_weighted", "local_weighted": "local_weighted", "moe": "moe"}  # fmt: skip
SHORT = {"concat": "concat", "global_weighted": "gw", "local_weighted": "lw", "moe": "moe"}
PRIMARY = {"classification": "overall_accuracy", "multilabel": "f1_micro",
           "segmentation": "miou"}  # fmt: skip
CONVENTION = {
    "overall_accuracy": "overall accuracy (micro), GEO-Bench's classification metric",
    "f1_micro": "micro F1 at sigmoid > 0.5, GEO-Bench's multi-label metric",
    "miou": "mIoU macro over all classes, nothing ignored (GEO-Bench's JaccardIndex)",
}
DEFAULT_BACKBONE = "satdifuser-eurosat-tiny"
DEFAULT_MODELS = (f"satdifuser:{DEFAULT_BACKBONE}:gw,efficientnet_lite0,"
                  f"random:{DEFAULT_BACKBONE}:gw")  # fmt: skip
CSV_COLUMNS = ("task", "partition", "seed", "model", "metric", "value", "status")
RESULT = "result.json"


# ----------------------------------------------------------------------------- model specs
@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--models`` entry: ``kind`` (satdifuser, random, efficientnet_lite0), the
    backbone (diffusion kinds) and the fusion registry name."""

    kind: str
    backbone: str | None
    fusion: str

    @property
    def name(self) -> str:
        """Canonical spec string (the ``model`` column)."""
        parts = [self.kind, *([self.backbone] if self.backbone else []), SHORT[self.fusion]]
        return ":".join(parts)

    @property
    def slug(self) -> str:
        """Folder name of the model's runs."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name.replace(":", "__")).strip("_")


def parse_model(text: str) -> ModelSpec:
    """Parse ``satdifuser:BACKBONE[:FUSION]``, ``random:BACKBONE[:FUSION]`` or
    ``efficientnet_lite0[:FUSION]`` (FUSION: concat, gw, lw, moe; default gw).

    Raises:
        ConfigError: unknown kind or fusion, or a diffusion kind without a backbone.
    """
    parts = [p.strip() for p in text.strip().split(":")]
    kind = {"efficientnet": "efficientnet_lite0"}.get(parts[0], parts[0])
    rest = parts[1:]
    fusion = "global_weighted"
    if rest and rest[-1] in FUSIONS and (kind == "efficientnet_lite0" or len(rest) >= 2):
        fusion = FUSIONS[rest.pop()]
    if kind == "efficientnet_lite0":
        if rest:
            raise ConfigError(f"--models {text!r}: efficientnet_lite0 takes only a fusion "
                              f"({', '.join(FUSIONS)}), e.g. efficientnet_lite0:gw")  # fmt: skip
        return ModelSpec(kind, None, fusion)
    if kind not in ("satdifuser", "random"):
        raise ConfigError(
            f"--models {text!r}: unknown model kind {parts[0]!r}; use satdifuser:BACKBONE[:FUSION]"
            ", random:BACKBONE[:FUSION] or efficientnet_lite0[:FUSION]"
        )
    backbone = ":".join(rest)
    if not backbone:
        raise ConfigError(f"--models {text!r}: {kind} needs a backbone, e.g. "
                          f"{kind}:{DEFAULT_BACKBONE}:gw")  # fmt: skip
    if len(rest) >= 2 and rest[-1] and rest[-1].isalpha() and not Path(backbone).exists():
        raise ConfigError(f"--models {text!r}: unknown fusion {rest[-1]!r}; choose from "
                          f"{', '.join(FUSIONS)}")  # fmt: skip
    return ModelSpec(kind, backbone, fusion)


def parse_partition(text: str) -> str:
    """``default``, ``0.01x_train`` ... (``0.1x`` and ``0.10x_train`` mean the same)."""
    t = text.strip()
    m = re.fullmatch(r"([0-9.]+)x(_train)?", t)
    if m:
        try:
            return f"{float(m.group(1)):.2f}x_train"
        except ValueError:
            pass
    return t


def partition_order(name: str) -> tuple[int, float, str]:
    """``default`` first, then train fractions ascending, then anything else by name."""
    if name == "default":
        return (0, 0.0, name)
    m = re.fullmatch(r"([0-9.]+)x_train", name)
    return (1, float(m.group(1)), name) if m else (2, 0.0, name)


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


# ----------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Recipe:
    """Training settings every run depends on (part of each run's config hash)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-2
    min_lr: float = 1e-5
    projection_dim: int = 64
    bottleneck_dim: int = 32
    num_groups: int = 8
    head_channels: int = 64
    pool: int = 4
    timesteps: tuple[int, ...] = (10,)
    taps: tuple[str, ...] | None = None
    random_seed: int = 0
    effnet_size: int = 224
    view: str = "rgb"


@dataclass
class Run:
    """One (task, partition, seed, model) of the sweep."""

    task: str
    partition: str
    seed: int
    model: ModelSpec
    folder: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.task} {self.partition} {self.model.name} seed{self.seed}"

    def config_hash(self) -> str:
        blob = json.dumps(self.config, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def read_result(run: Run) -> dict[str, Any] | None:
    """The run's ``result.json`` when it is complete and made with this configuration."""
    path = run.folder / RESULT
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(res, dict) or res.get("config_hash") != run.config_hash():
        return None
    if res.get("status") == "ok" and isinstance(res.get("metrics"), dict):
        return res
    if res.get("status") == "skipped" and res.get("reason"):
        return res
    return None


def _scalar_metrics(test: dict[str, float | None]) -> dict[str, float]:
    return {k.split("/", 1)[1]: float(v) for k, v in test.items()
            if k.startswith("test/") and k.count("/") == 1 and v is not None}  # fmt: skip


def build_task(task_type: str, extractor: Any, num_classes: int, recipe: Recipe, fusion: str,
               ignore_index: int, class_names: list[str], n_train: int) -> Any:  # fmt: skip
    """The library task of one run (classification, multi-label or segmentation)."""
    from satdifuser.bench.recipe import ProbeConfig, fusion_args
    from satdifuser.tasks import (
        ClassificationTask,
        MultiLabelClassificationTask,
        SegmentationTask,
    )

    cfg = ProbeConfig(fusion=fusion, projection_dim=recipe.projection_dim,
                      bottleneck_dim=recipe.bottleneck_dim, num_groups=recipe.num_groups,
                      epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                      min_lr=recipe.min_lr)  # fmt: skip
    warmup = max(1, recipe.epochs // 8)
    steps = recipe.epochs * math.ceil(max(1, n_train) / recipe.batch_size)
    common: dict[str, Any] = dict(
        fusion=fusion, fusion_args=fusion_args(cfg, steps), lr=recipe.lr,
        min_lr=recipe.min_lr, warmup_epochs=min(warmup, max(0, recipe.epochs - 1)),
        warmup_start_lr=min(2e-5, recipe.lr), early_stopping_patience=None,
        class_names=class_names,
    )  # fmt: skip
    if task_type == "segmentation":
        return SegmentationTask(extractor, num_classes, head="upernet",
                                head_args={"channels": recipe.head_channels},
                                ignore_index=ignore_index, **common)  # fmt: skip
    if task_type == "multilabel":
        return MultiLabelClassificationTask(extractor, num_classes, standardize=True, **common)
    return ClassificationTask(extractor, num_classes, head="linear", standardize=True,
                              ignore_index=ignore_index, **common)  # fmt: skip


def train_run(run: Run, data: Any, extractor: Any, info: dict[str, Any], recipe: Recipe
              ) -> dict[str, Any]:  # fmt: skip
    """Train and test one run on its cached data; the result fields (no file written)."""
    from satdifuser.tasks import fit_and_test

    data.datamodule.seed = run.seed  # batch order of this seed (the cache is shared)
    seed_init(run.seed)  # the seed also decides the initialisation of fusion and head
    task = build_task(info["task_type"], extractor, info["num_classes"], recipe,
                      run.model.fusion, info["ignore_index"], info["classes"],
                      info["sizes"]["train"])  # fmt: skip
    t0 = time.perf_counter()
    result = fit_and_test(task, data, run.folder, max_epochs=recipe.epochs, seed=run.seed,
                          progress=False)  # fmt: skip
    metrics = _scalar_metrics(result.test)
    return {"status": "ok", "metrics": metrics,
            "best_epoch": result.best_epoch, "seconds": time.perf_counter() - t0,
            "model_dir": str(result.model_dir) if result.model_dir else None}  # fmt: skip


# ---------------------------------------------------------------------------------- bench
def build_parser() -> argparse.ArgumentParser:
    """The options of ``satdifuser bench geobench``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench geobench",
        description="GEO-Bench protocol: tasks x partitions x seeds x models through the fit "
        "path; runs.csv, per-task tables, normalised IQM with bootstrap 95%% CIs, plot. "
        "Resumable: finished runs are never redone.",
    )
    a = p.add_argument
    a("--root", default=None, help="GEO-Bench root (classification_v1.0/ ...), a benchmark "
      "folder or a folder of task folders (default: $SATDIFUSER_DATA/geobench, $GEO_BENCH_DIR)")
    a("--tasks", default=None, help="comma list of tasks (default: every task found)")
    a("--partitions", default="default",
      help="comma list: default, 0.01x_train ... 1.00x_train (0.1x is short for 0.10x_train)")
    a("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    a("--models", default=DEFAULT_MODELS,
      help="comma list of satdifuser:BACKBONE[:FUSION], random:BACKBONE[:FUSION], "
      f"efficientnet_lite0[:FUSION]; FUSION concat|gw|lw|moe (default {DEFAULT_MODELS})")
    a("--epochs", type=int, default=10, help="training epochs per run (default 10)")
    a("--out", default="runs/bench-geobench", help="output folder (default runs/bench-geobench)")
    a("--cache-dir", default=None, help="feature cache (default $SATDIFUSER_CACHE or user cache)")
    a("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    r = p.add_argument_group("recipe")
    r.add_argument("--timesteps", default="10", help="diffusion timesteps (default 10)")
    r.add_argument("--taps", default=None, help="fnmatch tap patterns (default: decoder resnet "
                   "+ attention taps, as bench eurosat)")
    r.add_argument("--pool", type=int, default=4, help="classification maps pooled to at most "
                   "N x N (default 4)")
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--lr", type=float, default=1e-2)
    r.add_argument("--projection-dim", type=int, default=64)
    r.add_argument("--bottleneck-dim", type=int, default=32)
    r.add_argument("--head-channels", type=int, default=64, help="UPerNet width (segmentation)")
    r.add_argument("--random-seed", type=int, default=0, help="seed of random:... weights")
    r.add_argument("--effnet-size", type=int, default=224, help="EfficientNet input size")
    g = p.add_argument_group("aggregation")
    g.add_argument("--normalizer", default="auto",
                   help="auto (the benchmark's normalizer.json where it lists the task, else the "
                   "sweep's min-max), sweep, or a normalizer.json path")
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    g.add_argument("--min-samples", type=int, default=1,
                   help="skip (NA) a run when a split has fewer samples (default 1)")
    return p


class GeoBenchSweep:
    """One invocation of the sweep (see the module docstring)."""

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
            raise DatasetNotFoundError(f"--root {self.root}: no GEO-Bench task folder found "
                                       "(task_specs.pkl + *_partition.json) at or below it")
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
        self.write_csv(runs)
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
            self.write_csv(runs)
            dt = time.perf_counter() - t0
            if reason is None:  # the ETA counts trained runs only (a skip costs nothing)
                done_s, n_done = done_s + dt, n_done + 1
            left = len(todo) - i
            eta = done_s / max(1, n_done) * (to_train - n_done)
            self.log(f"[{i}/{len(todo)}] {run.key}: {line} ({dt:.1f} s); elapsed "
                     f"{_dur(time.perf_counter() - t_start)}, ETA {_dur(eta)} "
                     f"({left} runs left)")  # fmt: skip
        return runs

    # --------------------------------------------------------------------------- output
    def rows(self, runs: Sequence[Run]) -> list[dict[str, Any]]:
        """One row per run and metric (primary metric first); skipped runs: one NA row."""
        out = []
        for run in runs:
            res = self.results.get(run.key)
            if res is None:
                continue
            base = {"task": run.task, "partition": run.partition, "seed": run.seed,
                    "model": run.model.name}  # fmt: skip
            if res["status"] == "skipped":
                metric = res.get("primary_metric") or self.guess_primary(run.task)
                out.append({**base, "metric": metric, "value": "NA",
                            "status": f"skipped: {res['reason']}"})  # fmt: skip
                continue
            primary = res["primary_metric"]
            names = [primary, *sorted(k for k in res["metrics"] if k != primary)]
            for m in names:
                if m in res["metrics"]:
                    out.append({**base, "metric": m, "value": res["metrics"][m], "status": "ok"})
        return out

    def guess_primary(self, task: str) -> str:
        from satdifuser.data.geobench_tasks import GEOBENCH_TASKS

        info = GEOBENCH_TASKS.get(task)
        return PRIMARY.get(info.task_type if info else "classification", "overall_accuracy")

    def write_csv(self, runs: Sequence[Run]) -> None:
        from satdifuser.viz import atomic_write_text

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows(runs))
        atomic_write_text(self.out / "runs.csv", buf.getvalue())

    def records(self, runs: Sequence[Run]) -> list[dict[str, Any]]:
        """(task, partition, model, seed, score) of the primary metric, None when skipped."""
        recs = []
        for run in runs:
            res = self.results.get(run.key, {})
            score = None
            if res.get("status") == "ok":
                score = res["metrics"].get(res["primary_metric"])
            recs.append({"task": run.task, "partition": run.partition, "model": run.model.name,
                         "seed": run.seed, "score": score})  # fmt: skip
        return recs

    def ranges(self) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
        """Normaliser ranges of the tasks that have one, and where each came from."""
        from satdifuser.tasks.aggregate import load_normalizer

        choice = self.args.normalizer
        if choice == "sweep":
            return {}, {}
        if choice != "auto":
            table = load_normalizer(choice)
            return ({t: table[t] for t in self.tasks if t in table},
                    {t: choice for t in self.tasks if t in table})  # fmt: skip
        ranges, where = {}, {}
        for task, tdir in self.tasks.items():
            path = tdir.parent / "normalizer.json"
            if path.is_file():
                table = load_normalizer(path)
                if task in table:
                    ranges[task], where[task] = table[task], str(path)
        return ranges, where

    def finish(self, runs: Sequence[Run], seconds: float) -> dict[str, Any]:
        from satdifuser.tasks.aggregate import aggregate
        from satdifuser.viz import atomic_write_text

        recs = self.records(runs)
        ranges, where = self.ranges()
        agg = aggregate(recs, ranges, repeat=self.args.bootstrap, seed=0)
        tables = self.out / "tables"
        tables.mkdir(parents=True, exist_ok=True)
        for task in self.tasks:
            atomic_write_text(tables / f"{task}.md", self.task_table(task, runs))
        buf = io.StringIO()
        fields = list(agg[0].to_dict()) if agg else ["model", "partition", "task", "iqm"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(r.to_dict() for r in agg)
        atomic_write_text(self.out / "aggregate.csv", buf.getvalue())
        atomic_write_text(self.out / "aggregate.md", self.aggregate_md(agg, where, seconds))
        self.plot(agg)
        n_ok = sum(1 for r in self.results.values() if r.get("status") == "ok")
        n_skip = sum(1 for r in self.results.values() if r.get("status") == "skipped")
        self.log(f"{n_ok} runs finished, {n_skip} skipped; wrote {self.out / 'runs.csv'}, "
                 f"{tables}/, {self.out / 'aggregate.md'}, {self.out / 'iqm.png'}")  # fmt: skip
        return {"runs": len(runs), "ok": n_ok, "skipped": n_skip,
                "aggregate": [r.to_dict() for r in agg]}  # fmt: skip

    def task_table(self, task: str, runs: Sequence[Run]) -> str:
        import numpy as np

        mine = [r for r in runs if r.task == task]
        res = [self.results.get(r.key, {}) for r in mine]
        primary = next((x["primary_metric"] for x in res if x.get("primary_metric")),
                       self.guess_primary(task))  # fmt: skip
        sizes = {r.partition: self.results.get(r.key, {}).get("split_sizes") for r in mine}
        lines = [f"# {task}: {primary} (%), mean ± std over seeds (n)", "",
                 f"Metric: {CONVENTION.get(primary, primary)}. Task folder: "
                 f"`{self.tasks[task]}`. Epochs {self.recipe.epochs}, best validation epoch "
                 "tested. NA: skipped (reason below).", "",
                 "| model | " + " | ".join(self.partitions) + " |",
                 "|---|" + "---:|" * len(self.partitions)]  # fmt: skip
        notes: dict[str, str] = {}
        for spec in self.models:
            cells = []
            for part in self.partitions:
                vals, skipped = [], None
                for r in mine:
                    if r.model.name != spec.name or r.partition != part:
                        continue
                    x = self.results.get(r.key)
                    if x and x.get("status") == "ok" and primary in x["metrics"]:
                        vals.append(100 * x["metrics"][primary])
                    elif x and x.get("status") == "skipped":
                        skipped = x["reason"]
                if vals:
                    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
                    cells.append(f"{np.mean(vals):.2f} ± {sd:.2f} ({len(vals)})")
                else:
                    cells.append("NA")
                    if skipped:
                        notes[part] = skipped
            lines.append(f"| {spec.name} | " + " | ".join(cells) + " |")
        lines.append("")
        for part in self.partitions:
            s = sizes.get(part)
            if s:
                lines.append(f"- {part}: train {s.get('train')}, val {s.get('val')}, "
                             f"test {s.get('test')} samples")  # fmt: skip
        for part, why in notes.items():
            lines.append(f"- {part}: NA, {why}")
        return "\n".join(lines) + "\n"

    def aggregate_md(self, agg: Sequence[Any], where: dict[str, str], seconds: float) -> str:
        from satdifuser.tasks.aggregate import AGGREGATED

        def cell(r: Any) -> str:
            if r is None or math.isnan(r.iqm):
                return "NA"
            return f"{r.iqm:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"

        cmd = "satdifuser bench geobench " + shlex.join(self.argv)
        lines = ["# GEO-Bench sweep: normalised IQM with bootstrap 95 % CI", "",
                 f"Command: `{cmd}`  ", f"Wall time of this invocation: {_dur(seconds)}.", "",
                 "Per task: IQM over seeds of the normalised primary metric, CI from a "
                 f"bootstrap over seeds ({self.args.bootstrap} resamples, seed 0). Aggregated: "
                 "IQM of every (task, seed) normalised score, CI from a bootstrap stratified by "
                 "task (GEO-Bench's `plot_tools.py`).", ""]  # fmt: skip
        for part in self.partitions:
            rows = [r for r in agg if r.partition == part]
            if not rows:
                continue
            tasks = [t for t in self.tasks if any(r.task == t for r in rows)]
            lines += [f"## {part}", "", "| model | " + " | ".join([*tasks, "**IQM (all tasks)**"])
                      + " |", "|---|" + "---:|" * (len(tasks) + 1)]  # fmt: skip
            for spec in self.models:
                by = {r.task: r for r in rows if r.model == spec.name}
                if not by:
                    continue
                lines.append(f"| {spec.name} | " + " | ".join(
                    [cell(by.get(t)) for t in tasks] + [f"**{cell(by.get(AGGREGATED))}**"]) + " |")
            lines.append("")
        lines += ["## Normalisation", ""]
        seen = {}
        for r in agg:
            if r.task != AGGREGATED and r.task not in seen:
                seen[r.task] = r
        for task, r in seen.items():
            src = where.get(task, "the sweep's min and max over all runs of the task")
            flat = "" if r.norm_max > r.norm_min else "; zero width: no normalised score (NA)"
            lines.append(f"- {task} ({self.guess_primary(task)}): [{r.norm_min:.4f}, "
                         f"{r.norm_max:.4f}] from {src}{flat}")  # fmt: skip
        return "\n".join(lines) + "\n"

    def plot(self, agg: Sequence[Any]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from satdifuser.tasks.aggregate import AGGREGATED
        from satdifuser.viz.atomic import save_figure

        rows = [r for r in agg if r.task == AGGREGATED]
        fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(self.partitions) + 2.5), 3.6))
        n = max(1, len(self.models))
        for j, spec in enumerate(self.models):
            xs, ys, lo, hi = [], [], [], []
            for i, part in enumerate(self.partitions):
                r = next((x for x in rows if x.model == spec.name and x.partition == part), None)
                if r is None or math.isnan(r.iqm):
                    continue
                xs.append(i + (j - (n - 1) / 2) * 0.12)
                ys.append(r.iqm)
                lo.append(r.iqm - r.ci_low if not math.isnan(r.ci_low) else 0.0)
                hi.append(r.ci_high - r.iqm if not math.isnan(r.ci_high) else 0.0)
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=spec.name,
                        linestyle="-" if len(xs) > 1 else "none")  # fmt: skip
        ax.set_xticks(range(len(self.partitions)), self.partitions)
        ax.set_xlim(-0.5, len(self.partitions) - 0.5)
        ax.set_ylabel("normalised IQM (95 % CI)")
        scored = {r.task for r in agg if r.task != AGGREGATED and not math.isnan(r.iqm)}
        ax.set_title(f"GEO-Bench normalised IQM ({len(scored)} of {len(self.tasks)} tasks "
                     "scored)", fontsize=10)  # fmt: skip
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        save_figure(fig, self.out / "iqm.png")
        plt.close(fig)


def _dur(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser bench geobench`` (see ``--help``)."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads={args.threads} must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sweep = GeoBenchSweep(args, argv)
    if any(m.kind == "efficientnet_lite0" for m in sweep.models):
        from satdifuser.baselines.efficientnet_lite import _import_efficientnet

        _import_efficientnet()  # fail before any work when the optional extra is missing
    runs = sweep.execute()
    sweep.finish(runs, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))


__all__ = ["ModelSpec", "Recipe", "Run", "build_parser", "parse_model", "parse_partition",
           "read_result", "run", "train_run"]  # fmt: skip
