"""``satdifuser bench eurosat``: fixed EuroSAT split, label budgets, seeds, baselines, ablations.

One command, one run. Features are extracted once per extractor and split into the library's
content-addressed feature cache (``CachedDataModule``, shared with ``satdifuser demo`` and
``fit``); every diffusion-feature model is then a :class:`~satdifuser.tasks.ClassificationTask`
(standardiser + fusion + linear head) trained by ``tasks.fit_and_test`` on a view of that cache
(``features.cache_view.CachedView``: a label budget and a subset of the maps, held in memory),
validated every epoch, the best epoch tested. Methods:

(i) satdifuser: the shipped (or ``--backbone``) diffusion model, fusions concat/GW/LW/MoE;
(ii) the same UNet with seeded random weights, same fusions;
(iii) EfficientNet-Lite0 ImageNet: logistic-regression probe on the pooled 1280-d head features
(L2 chosen on val), and GW fusion over its stages;
(iv) a small CNN trained from scratch on the same labels (random flips).
Ablations (GW, shipped backbone): single timesteps vs all, attention vs resnet vs both taps.
The baselines that are not satdifuser models (pooled probe, small CNN) train in
``satdifuser.baselines``.

Seeds change the initialisation and batch order only: the label budget k always takes the first
k images of each class of the fixed split's ``train`` (the split file's rule), so the labelled
images are the same for every seed.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from satdifuser.baselines.cnn_training import CNNConfig
from satdifuser.bench import tables
from satdifuser.bench.common import Timer, cpu_description
from satdifuser.bench.merge import earlier_rows
from satdifuser.bench.recipe import ProbeConfig, classification_task, fit_task
from satdifuser.errors import ConfigError
from satdifuser.features.cache_root import default_cache_root
from satdifuser.tasks.runner import seed_init

FUSION_NAMES = {
    "concat": "concat",
    "gw": "global_weighted",
    "global_weighted": "global_weighted",
    "lw": "local_weighted",
    "local_weighted": "local_weighted",
    "moe": "moe",
}
SHORT = {"concat": "concat", "global_weighted": "GW", "local_weighted": "LW", "moe": "MoE"}
PARTS = ("satdifuser", "random", "efficientnet", "cnn", "ablations")
DEFAULT_BACKBONE = "satdifuser-eurosat-tiny"


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"{what}={text!r} must be comma-separated integers, e.g. 10,50,200"
        ) from None
    if not values:
        raise ConfigError(f"{what}={text!r} is empty; give at least one integer")
    return values


def _names(text: str, choices: dict[str, str] | Sequence[str], what: str) -> list[str]:
    out = []
    for v in (v.strip() for v in text.split(",")):
        if not v:
            continue
        if v not in choices:
            raise ConfigError(
                f"{what} {v!r} is unknown; choose from {', '.join(choices)} (comma-separated)"
            )
        out.append(choices[v] if isinstance(choices, dict) else v)
    if not out:
        raise ConfigError(f"{what}={text!r} is empty")
    return list(dict.fromkeys(out))


def build_parser() -> argparse.ArgumentParser:
    """The options of ``satdifuser bench eurosat``."""
    p = argparse.ArgumentParser(
        prog="satdifuser bench eurosat",
        description="EuroSAT benchmark on the fixed split: satdifuser fusions vs random weights, "
        "EfficientNet-Lite0 (probe and GW) and a small CNN; label budgets x seeds; ablations.",
    )
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="registered name or folder")
    p.add_argument("--data", default=None, help="data root (else $SATDIFUSER_DATA, shared/data)")
    p.add_argument("--budgets", default="10,50,200", help="labels per class (default 10,50,200)")
    p.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    p.add_argument("--fusions", default="concat,gw,lw,moe", help="concat, gw, lw, moe")
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    p.add_argument("--timesteps", default="10", help="timesteps of the main runs (default 10)")
    p.add_argument("--ablation-timesteps", default="10,250", help="timesteps swept by the ablation")
    p.add_argument("--ablation-budgets", default="200", help="budgets of the ablations")
    p.add_argument("--taps", default=None, help="fnmatch tap patterns (default: resnet+attention)")
    p.add_argument("--ensemble", type=int, default=1,
                   help="noise draws averaged per timestep (default 1)")  # fmt: skip
    p.add_argument("--random-seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--pool", type=int, default=4, help="max side of pooled maps (default 4)")
    p.add_argument("--epochs", type=int, default=20, help="fusion epochs (paper: 40)")
    p.add_argument("--projection-dim", type=int, default=64, help="fusion width (paper: 384)")
    p.add_argument("--bottleneck-dim", type=int, default=32, help="bottleneck (paper: 96)")
    p.add_argument("--num-experts", type=int, default=4, help="MoE experts (paper: 8)")
    p.add_argument("--cnn-epochs", type=int, default=15)
    p.add_argument("--cnn-width", type=int, default=16)
    p.add_argument("--effnet-size", type=int, default=224, help="EfficientNet input size")
    p.add_argument("--effnet-pool", type=int, default=7, help="max side of EfficientNet maps")
    p.add_argument("--quick", action="store_true",
                   help="budgets of at most 2/class and 2 epochs (tests)")
    p.add_argument("--out", default="satdifuser-bench-eurosat", help="output folder")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: user cache dir)")
    p.add_argument(
        "--append-md",
        default=None,
        help="markdown file to append the results section to (default docs/BENCHMARKS.md when "
        "./docs exists and --quick is off; 'none' disables)",
    )
    p.add_argument("--include-runs", default=None, metavar="RESULTS_JSON",
                   help="take the rows of the parts not run now from an earlier run's "
                   "results.json (same recipe required)")
    p.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


class Bench:
    """One run of the EuroSAT benchmark (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, argv: Sequence[str]) -> None:
        self.args = args
        self.argv = list(argv)
        self.budgets = _ints(args.budgets, "--budgets")
        self.seeds = _ints(args.seeds, "--seeds")
        self.timesteps = _ints(args.timesteps, "--timesteps")
        self.ablation_timesteps = _ints(args.ablation_timesteps, "--ablation-timesteps")
        self.ablation_budgets = _ints(args.ablation_budgets, "--ablation-budgets")
        self.fusions = _names(args.fusions, FUSION_NAMES, "--fusions")
        self.parts = _names(args.parts, PARTS, "--parts")
        checks = (("--pool", args.pool), ("--epochs", args.epochs), ("--ensemble", args.ensemble))
        for name, v in checks:
            if v < 1:
                raise ConfigError(f"{name}={v} must be >= 1")
        if args.quick:
            self.budgets = sorted({min(b, 2) for b in self.budgets})
            self.ablation_budgets = sorted({min(b, 2) for b in self.ablation_budgets})
        self.probe = ProbeConfig(
            epochs=2 if args.quick else args.epochs,
            min_steps=2 if args.quick else ProbeConfig.min_steps,
            projection_dim=args.projection_dim,
            bottleneck_dim=args.bottleneck_dim,
            num_groups=min(8, args.bottleneck_dim, args.projection_dim),
            num_experts=args.num_experts,
        )
        self.cnn = CNNConfig(
            epochs=1 if args.quick else args.cnn_epochs,
            min_steps=2 if args.quick else CNNConfig.min_steps,
            width=args.cnn_width,
        )
        self.progress = not args.no_progress
        self.out = Path(args.out)
        self.cache = Path(args.cache_dir) if args.cache_dir else default_cache_root()
        self.rows: list[dict[str, Any]] = []
        self.timer = Timer(
            on_done=lambda n, s, c: self.log(f"[time] {n}: {s / 60:.1f} min ({c / 60:.1f} CPU-min)")
        )
        self.class_names: list[str] = []
        self.taps: list[str] = []
        self.sizes = ""
        self.data: Any = None
        self.included: list[dict[str, Any]] = []
        self.earlier: dict[str, Any] | None = None
        if args.include_runs:
            self.included, self.earlier = earlier_rows(args.include_runs, self.recipe(),
                                                       self.parts)  # fmt: skip

    # ----------------------------------------------------------------------------- helpers
    def recipe(self) -> dict[str, Any]:
        """Settings that every row depends on (checked by ``--include-runs``)."""
        a = self.args
        return {"budgets": self.budgets, "seeds": self.seeds, "quick": bool(a.quick),
                "probe_config": self.probe.to_dict(), "cnn_config": self.cnn.to_dict(),
                "pool": a.pool, "timesteps": self.timesteps, "random_seed": a.random_seed,
                "ensemble": a.ensemble,
                "effnet_size": a.effnet_size, "effnet_pool": a.effnet_pool,
                "trainer": "tasks.fit_and_test, validation every epoch"}  # fmt: skip

    def log(self, text: str) -> None:
        print(text, flush=True)

    def record(self, section: str, method: str, budget: int, seed: int, r: dict[str, Any],
               **info: Any) -> None:  # fmt: skip
        row = {"section": section, "method": method, "budget": budget, "seed": seed, **r, **info}
        self.rows.append(row)
        self.log(
            f"  {method:<34} {budget:>4}/class seed {seed}: OA {100 * r['overall_accuracy']:6.2f}"
            f"  F1 {100 * r['f1_macro']:6.2f}  ({r['seconds']:.0f} s)"
        )

    def datamodule(self) -> Any:
        """EuroSAT on the fixed split, train = the largest budget (smaller ones are views)."""
        from satdifuser.data import EuroSATDataModule

        cap = max(self.budgets + self.ablation_budgets)
        dm = EuroSATDataModule(root=self.args.data, budget=cap,
                               batch_size=self.probe.batch_size)  # fmt: skip
        for split in ("train", "val", "test"):  # find and check the data first
            dm.dataset(split)
        self.class_names = list(dm.dataset("train").classes)
        return dm

    def cached(self, extractor: nn.Module, part: str) -> Any:
        """The feature cache of every split under ``extractor`` (extracted once, then reused)."""
        from satdifuser.features.cache import CachedDataModule

        data = CachedDataModule(self.data, extractor, self.cache, in_memory=True,
                                extract_batch_size=self.args.batch_size,
                                progress=self.progress)  # fmt: skip
        with self.timer(f"extract {part}"):
            data.setup("fit")
            data.setup("test")
        return data

    def run_dir(self, section: str, method: str, budget: int, seed: int) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", method).strip("-").lower()
        return self.out / "runs" / section / f"{slug}-{budget}-seed{seed}"

    def fusion_runs(self, section: str, label: str, cached: Any, extractor: nn.Module,
                    fusions: Sequence[str], budgets: Sequence[int],
                    taps: Sequence[str] | None = None,
                    timesteps: Sequence[int] | None = None) -> None:  # fmt: skip
        """Train and test the task of every fusion x budget x seed on a view of ``cached``."""
        from satdifuser.features.cache_view import CachedView, SelectMaps

        selected = taps is not None or timesteps is not None
        model_extractor = SelectMaps(extractor, taps, timesteps) if selected else extractor
        for fusion in fusions:
            cfg = ProbeConfig(**{**self.probe.to_dict(), "fusion": fusion})
            for b in budgets:
                for s in self.seeds:
                    view = CachedView(cached, train_budget=b, taps=taps, timesteps=timesteps,
                                      batch_size=cfg.batch_size, seed=s)  # fmt: skip
                    n_train = len(view.split("train"))
                    seed_init(s)  # the seed decides the initialisation too
                    task, epochs = classification_task(model_extractor, cfg,
                                                       len(self.class_names), n_train)  # fmt: skip
                    method = f"{label} {SHORT[fusion]}"
                    r = fit_task(task, view, self.run_dir(section, method, b, s), epochs, s)
                    self.record(section, method, b, s, r, fusion=fusion)

    def probe_runs(self, section: str, label: str, cached: Any, budgets: Sequence[int],
                   taps: Sequence[str] | None = None) -> None:  # fmt: skip
        """The pooled logistic-regression baseline on the same cached splits."""
        from satdifuser.baselines import linear_probe, pooled_vectors
        from satdifuser.features.cache_view import CachedView

        for b in budgets:
            view = CachedView(cached, train_budget=b, taps=taps)
            tr, va, te = (pooled_vectors(view.split(k)) for k in ("train", "val", "test"))
            r = linear_probe(tr, va, te, self.class_names)
            row = {"overall_accuracy": r.overall_accuracy, "f1_macro": r.f1_macro,
                   "val_accuracy": r.val_accuracy, "best_epoch": r.best_epoch,
                   "seconds": r.seconds, **r.extra}  # fmt: skip
            for s in self.seeds:  # deterministic: one fit, recorded for every seed
                self.record(section, label, b, s, row, deterministic=True)

    # -------------------------------------------------------------------------------- parts
    def run(self) -> dict[str, Any]:
        from satdifuser.bench.features import (
            diffusion_extractor,
            load_backbone,
            random_like,
            tap_groups,
        )

        a = self.args
        t_start, c_start = time.perf_counter(), time.process_time()
        with self.timer("load data"):
            self.data = self.datamodule()
        sizes = {k: len(self.data.dataset(k)) for k in ("train", "val", "test")}
        self.sizes = ", ".join(f"{k} {v} images" for k, v in sizes.items())
        if self.earlier is not None and self.earlier.get("sizes", self.sizes) != self.sizes:
            raise ConfigError(
                f"--include-runs: the earlier run used {self.earlier['sizes']}, this one "
                f"{self.sizes}; use the same data and budgets"
            )
        self.log(
            f"EuroSAT: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} images "
            f"from {self.data.dataset('train').split_source}; feature cache {self.cache}"
        )
        info: dict[str, Any] = {}
        need_bb = {"satdifuser", "random", "ablations"} & set(self.parts)
        if need_bb:
            bb = load_backbone(a.backbone)
            groups = tap_groups(bb)
            taps = [t.strip() for t in a.taps.split(",")] if a.taps else (
                groups["resnet"] + groups["attention"])  # fmt: skip
            self.taps = taps
            info.update(backbone=a.backbone, backbone_weights=bb.weights_id(), taps=taps,
                        tap_groups=groups)  # fmt: skip
            self.log(f"backbone {bb.name} ({bb.weights_id()}), taps: {', '.join(taps)}")
            if {"satdifuser", "ablations"} & set(self.parts):
                main_ex = diffusion_extractor(bb, taps, self.timesteps, a.pool, a.ensemble)
                main = self.cached(main_ex, "satdifuser")
            if "satdifuser" in self.parts:
                self.log("(i) satdifuser, shipped backbone:")
                with self.timer("train satdifuser fusions"):
                    self.fusion_runs("satdifuser", "satdifuser", main, main_ex, self.fusions,
                                     self.budgets)  # fmt: skip
                with self.timer("satdifuser pooled probe"):
                    self.probe_runs("satdifuser", "satdifuser pooled probe", main, self.budgets)
            if "random" in self.parts:
                rnd_ex = diffusion_extractor(random_like(bb, seed=a.random_seed), taps,
                                             self.timesteps, a.pool, a.ensemble)  # fmt: skip
                rfeats = self.cached(rnd_ex, "random weights")
                self.log(f"(ii) same architecture, random weights (seed {a.random_seed}):")
                with self.timer("train random-weight fusions"):
                    self.fusion_runs("random", "random weights", rfeats, rnd_ex, self.fusions,
                                     self.budgets)  # fmt: skip
                with self.timer("random-weight pooled probe"):
                    self.probe_runs("random", "random weights pooled probe", rfeats, self.budgets)
            if "ablations" in self.parts:
                abl_ex = diffusion_extractor(bb, taps, self.ablation_timesteps, a.pool, a.ensemble)
                abl = main if abl_ex.identity() == main_ex.identity() else self.cached(
                    abl_ex, "ablation timesteps")  # fmt: skip
                self.log("ablations (GW, shipped backbone):")
                with self.timer("ablations"):
                    self.ablations((main, main_ex), (abl, abl_ex), groups)
        if "efficientnet" in self.parts:
            self.efficientnet()
        if "cnn" in self.parts:
            self.small_cnn()
        self.timer.seconds["total"] = time.perf_counter() - t_start
        self.timer.cpu_seconds["total"] = time.process_time() - c_start
        if self.earlier is not None:
            self.rows.extend(self.included)
            for key in ("seconds", "cpu_seconds"):
                for name, v in self.earlier.get(key, {}).items():
                    getattr(self.timer, key)[f"earlier run: {name}"] = v
        return self.finish(info)

    def reuse(self, method: str, label: str, budgets: Sequence[int]) -> bool:
        """Copy the runs of ``method`` into the ablation section as ``label`` when every
        (budget, seed) exists (the ablation equals a main configuration); else False."""
        found = {(r["budget"], r["seed"]): r for r in self.rows if r["method"] == method}
        if any((b, s) not in found for b in budgets for s in self.seeds):
            return False
        for b in budgets:
            for s in self.seeds:
                row = {**found[(b, s)], "section": "ablation", "method": label,
                       "reused_from": method}  # fmt: skip
                self.rows.append(row)
                self.log(f"  {label:<34} {b:>4}/class seed {s}: = {method} (same configuration)")
        return True

    def ablations(self, main: tuple[Any, nn.Module], abl: tuple[Any, nn.Module],
                  groups: dict[str, list[str]]) -> None:  # fmt: skip
        """Single timesteps and all of ``--ablation-timesteps`` (one extraction of them), and
        resnet-only / attention-only taps at the main timesteps (views of the main cache)."""
        gw = ["global_weighted"]
        all_t = list(self.ablation_timesteps)
        both = set(groups["resnet"] + groups["attention"]) == set(self.taps)
        for t in all_t:
            label = f"timestep t={t} only GW"
            if (
                both
                and [t] == self.timesteps
                and self.reuse("satdifuser GW", label, self.ablation_budgets)
            ):
                continue
            self.fusion_runs("ablation", f"timestep t={t} only", *abl, gw, self.ablation_budgets,
                             timesteps=[t])  # fmt: skip
        label = f"all timesteps {','.join(map(str, all_t))}"
        self.fusion_runs("ablation", label, *abl, gw, self.ablation_budgets)
        for name, taps in (("resnet", groups["resnet"]), ("attention", groups["attention"])):
            if not taps:
                self.log(f"  (no {name} taps in this UNet's decoder: ablation skipped)")
                continue
            self.fusion_runs("ablation", f"{name} taps only", *main, gw, self.ablation_budgets,
                             taps=taps)  # fmt: skip

    def efficientnet(self) -> None:
        from satdifuser.baselines import EfficientNetLiteExtractor
        from satdifuser.features.pooling import PooledExtractor

        a = self.args
        ext = PooledExtractor(EfficientNetLiteExtractor("imagenet", image_size=a.effnet_size),
                              a.effnet_pool)  # fmt: skip
        feats = self.cached(ext, "EfficientNet-Lite0")
        self.log("(iii) EfficientNet-Lite0 ImageNet:")
        with self.timer("EfficientNet-Lite0 probe"):
            self.probe_runs("efficientnet", "EfficientNet-Lite0 probe", feats, self.budgets,
                            taps=["head"])  # fmt: skip
        with self.timer("EfficientNet-Lite0 GW"):
            self.fusion_runs("efficientnet", "EfficientNet-Lite0 stages", feats, ext,
                             ["global_weighted"], self.budgets, taps=["blocks.*"])  # fmt: skip

    def small_cnn(self) -> None:
        from satdifuser.baselines import load_images, train_small_cnn
        from satdifuser.features.cache_view import first_per_class

        with self.timer("load images (CNN)"):
            images = {k: load_images(self.data.dataset(k)) for k in ("train", "val", "test")}
        self.log(f"(iv) small CNN from scratch (width {self.cnn.width}, flips):")
        with self.timer("small CNN"):
            for b in self.budgets:
                rows = first_per_class(images["train"][1], b)
                train = (images["train"][0][rows], images["train"][1][rows])
                for s in self.seeds:
                    r = train_small_cnn(train, images["val"], images["test"], self.cnn, s,
                                        self.class_names)  # fmt: skip
                    row = {"overall_accuracy": r.overall_accuracy, "f1_macro": r.f1_macro,
                           "val_accuracy": r.val_accuracy, "best_epoch": r.best_epoch,
                           "seconds": r.seconds, **r.extra}  # fmt: skip
                    self.record("cnn", "small CNN from scratch", b, s, row)

    # ------------------------------------------------------------------------------ output
    def finish(self, info: dict[str, Any]) -> dict[str, Any]:
        from satdifuser.viz import atomic_write_json, atomic_write_text

        agg = tables.aggregate(self.rows)
        command = "satdifuser bench eurosat" + "".join(f" {shlex.quote(x)}" for x in self.argv)
        result = {
            "command": command,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": cpu_description(),
            **self.recipe(),
            "sizes": self.sizes,
            "ablation_timesteps": self.ablation_timesteps,
            "included_from": self.earlier.get("command") if self.earlier else None,
            **info,
            "seconds": self.timer.seconds,
            "cpu_seconds": self.timer.cpu_seconds,
            "aggregated": agg,
            "runs": self.rows,
        }
        md = self.markdown(result, agg)
        atomic_write_json(self.out / "results.json", result)
        atomic_write_text(self.out / "results.md", md)
        self.log("\n" + md)
        target = self.args.append_md
        if target is None and not self.args.quick and Path("docs").is_dir():
            target = "docs/BENCHMARKS.md"
        if target and target.lower() != "none":
            path = Path(target)
            old = path.read_text() if path.is_file() else "# Benchmarks\n"
            atomic_write_text(path, old.rstrip("\n") + "\n\n" + md)
            self.log(f"appended the results section to {path}")
        self.log(f"results: {self.out / 'results.json'} and {self.out / 'results.md'}")
        return result

    def included_line(self) -> list[str]:
        if self.earlier is None:
            return []
        sections = sorted({r["section"] for r in self.included})
        return [f"Rows of {', '.join(sections)} are taken from an earlier run with the same "
                f"recipe (`--include-runs`): `{self.earlier.get('command', '?')}` "
                f"({self.earlier.get('date', '?')}).  "]  # fmt: skip

    def notes(self, result: dict[str, Any]) -> list[str]:
        """What the rows mean and where the recipe deviates from the paper."""
        a, p, c = self.args, self.probe, self.cnn
        groups = result.get("tap_groups", {})
        params = next((r["params"] for r in self.rows if "params" in r), None)
        return [
            f"- satdifuser models (every fusion row, the ablations, EfficientNet-Lite0 stages "
            f"GW): `tasks.ClassificationTask` (standardiser fitted on the labelled rows, "
            f"`satdifuser.fusion` fuser, `LinearHead`) trained by `tasks.fit_and_test` on the "
            f"cached features, Adam lr {p.lr}, warm-up + cosine, {p.epochs} epochs (at least "
            f"{p.min_steps} steps), batch {p.batch_size}, validated every epoch, the best val "
            f"epoch tested; each run's model is kept under `runs/`. CPU-sized on purpose "
            f"(paper: projection 384, bottleneck 96, 40 epochs, 8 MoE experts): projection "
            f"{p.projection_dim}, bottleneck {p.bottleneck_dim}, {p.num_experts} experts (top "
            f"{p.top_k}), and every feature map adaptive-average-pooled to at most "
            f"{a.pool}x{a.pool} before fusion (`FeatureExtractor(pool=...)`, part of the cache "
            "key).",
            "- Pooled probes: `baselines.linear_probe`, logistic regression (L-BFGS, L2 chosen "
            "on val) on globally average-pooled cached maps; deterministic, so every seed gives "
            "the same value (std 0).",
            f"- EfficientNet-Lite0: ImageNet weights, {a.effnet_size} px input; probe on the "
            f"pooled 1280-channel head; 'stages GW' is GW fusion over its stage outputs (pooled "
            f"to {a.effnet_pool}x{a.effnet_pool}) with the same recipe.",
            f"- Small CNN: `baselines.train_small_cnn`, `SmallCNN` width {c.width} "
            f"({params or '?'} parameters), "
            f"random h/v flips, Adam lr {c.lr}, cosine, {c.epochs} epochs (at least "
            f"{c.min_steps} steps), best val epoch.",
            f"- Taps: resnet = last resnet of each decoder block "
            f"({len(groups.get('resnet', []))}); attention = decoder attention modules "
            f"({len(groups.get('attention', []))}; the pixel UNet has them only in its "
            "lowest-resolution decoder block).",
            "- Wall-clock times are inflated when other jobs share the CPU; the CPU-time column "
            "(this process, all threads) is not.",
        ]

    def markdown(self, result: dict[str, Any], agg: list[dict[str, Any]]) -> str:
        m = result["machine"]
        lines = [
            f"## EuroSAT benchmark, {result['date']}",
            "",
            f"Command: `{result['command']}`  ",
            *self.included_line(),
            f"Machine: {m['cpu']}, {m['cores']} logical cores, torch {m['torch']} "
            f"({m['torch_threads']} threads)  ",
            f"Backbone: `{result.get('backbone', '-')}` "
            f"(weights {result.get('backbone_weights', '-')}), "
            f"taps {', '.join(result.get('taps', [])) or '-'}, timesteps {self.timesteps}, maps "
            f"pooled to at most {self.args.pool}x{self.args.pool}.  ",
            f"Fusion recipe (CPU-sized, not the paper's): {json.dumps(result['probe_config'])}.  ",
            f"Data: {result['sizes']}; budget k = first k train images per class of the fixed "
            "split; test on the whole test split; mean ± std over seeds (seeds change "
            "initialisation and batch order only, not the labelled images). Values in %.",
            "",
        ]
        sections = [
            ("satdifuser", "(i) satdifuser"),
            ("random", "(ii) same architecture, random weights"),
            ("efficientnet", "(iii) EfficientNet-Lite0, ImageNet weights"),
            ("cnn", "(iv) small CNN from scratch"),
        ]
        for key, title in sections:
            t = tables.results_table(agg, key, self.budgets)
            if t:
                lines += [f"### {title}", "", t]
        t = tables.results_table(agg, "ablation", self.ablation_budgets)
        if t:
            lines += ["### Ablations (GW, shipped backbone)", "", t]
        ours = [f"satdifuser {SHORT[f]}" for f in self.fusions] + ["satdifuser pooled probe"]
        rand = {f"satdifuser {SHORT[f]}": f"random weights {SHORT[f]}" for f in self.fusions}
        rand["satdifuser pooled probe"] = "random weights pooled probe"
        if any(r["section"] == "satdifuser" for r in self.rows):
            lines += ["### Goals", "", tables.goals_table(agg, self.budgets, ours,
                      "EfficientNet-Lite0 probe", rand)]  # fmt: skip
        lines += ["### Notes", "", *self.notes(result), ""]
        lines += [
            "### Wall clock per part",
            "",
            tables.timings_table(result["seconds"], result["cpu_seconds"]),
        ]
        return "\n".join(lines)


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser bench eurosat`` (see ``--help``)."""
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = Bench(args, argv)
    bench.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))
