"""``satdifuser bench eurosat``: fixed EuroSAT split, label budgets, seeds, baselines, ablations.

One command, one run. Features are extracted once per extractor and split (feature cache, reused
by later runs and by ``satdifuser demo``), then fusion + linear head are trained many times on
the in-memory features. Methods:

(i) satdifuser: the shipped (or ``--backbone``) diffusion model, fusions concat/GW/LW/MoE;
(ii) the same UNet with seeded random weights, same fusions;
(iii) EfficientNet-Lite0 ImageNet: logistic-regression probe on the pooled 1280-d head features
(L2 chosen on val), and GW fusion over its stages;
(iv) a small CNN trained from scratch on the same labels (random flips).
Ablations (GW, shipped backbone): single timesteps vs all, attention vs resnet vs both taps.

Seeds change the initialisation and batch order only: the label budget k always takes the first
k images of each class of the fixed split's ``train`` (the split file's rule), so the labelled
images are the same for every seed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from satdifuser.bench import tables
from satdifuser.bench.common import (
    FeatureSet,
    Timer,
    budget_rows,
    cpu_description,
    default_cache_root,
)
from satdifuser.bench.merge import earlier_rows
from satdifuser.bench.probe import (
    CNNConfig,
    ProbeConfig,
    ProbeResult,
    linear_probe,
    train_fusion_probe,
    train_small_cnn,
)
from satdifuser.errors import ConfigError

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
    p.add_argument("--quick", action="store_true", help="tiny subset and 2 epochs (tests)")
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
        for name, v in (("--pool", args.pool), ("--epochs", args.epochs)):
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
                "effnet_size": a.effnet_size, "effnet_pool": a.effnet_pool}  # fmt: skip

    def log(self, text: str) -> None:
        print(text, flush=True)

    def record(self, section: str, method: str, budget: int, seed: int, r: ProbeResult,
               **info: Any) -> None:  # fmt: skip
        row = {
            "section": section,
            "method": method,
            "budget": budget,
            "seed": seed,
            "overall_accuracy": r.overall_accuracy,
            "f1_macro": r.f1_macro,
            "val_accuracy": r.val_accuracy,
            "best_epoch": r.best_epoch,
            "seconds": r.seconds,
            **r.extra,
            **info,
        }
        self.rows.append(row)
        self.log(
            f"  {method:<34} {budget:>4}/class seed {seed}: OA {100 * r.overall_accuracy:6.2f}  "
            f"F1 {100 * r.f1_macro:6.2f}  ({r.seconds:.0f} s)"
        )

    def datasets(self) -> dict[str, Any]:
        from satdifuser.data.eurosat import EuroSAT

        q = self.args.quick
        caps = {"train": 2 if q else max(self.budgets + self.ablation_budgets), "val": 1 if q
                else None, "test": 1 if q else None}  # fmt: skip
        out = {}
        for split, cap in caps.items():
            out[split] = EuroSAT(self.args.data, split=split, budget=cap)
        self.class_names = list(out["train"].classes)
        return out

    def fusion_runs(self, section: str, label: str, feats: dict[str, FeatureSet],
                    fusions: Sequence[str], budgets: Sequence[int]) -> None:  # fmt: skip
        for fusion in fusions:
            cfg = ProbeConfig(**{**self.probe.to_dict(), "fusion": fusion})
            for b in budgets:
                train = feats["train"].rows(budget_rows(feats["train"].labels, b))
                for s in self.seeds:
                    r = train_fusion_probe(train, feats["val"], feats["test"], cfg, s,
                                           self.class_names)  # fmt: skip
                    self.record(section, f"{label} {SHORT[fusion]}", b, s, r, fusion=fusion)

    def probe_runs(self, section: str, label: str, feats: dict[str, FeatureSet],
                   budgets: Sequence[int], taps: Sequence[str] | None = None) -> None:  # fmt: skip
        val = feats["val"].select(taps) if taps else feats["val"]
        test = feats["test"].select(taps) if taps else feats["test"]
        for b in budgets:
            tr = feats["train"].rows(budget_rows(feats["train"].labels, b))
            tr = tr.select(taps) if taps else tr
            r = linear_probe((tr.pooled(), tr.labels), (val.pooled(), val.labels),
                             (test.pooled(), test.labels), self.class_names)  # fmt: skip
            for s in self.seeds:  # deterministic: one fit, recorded for every seed
                self.record(section, label, b, s, r, deterministic=True)

    # -------------------------------------------------------------------------------- parts
    def run(self) -> dict[str, Any]:
        from satdifuser.bench.features import (
            diffusion_extractors,
            extract_all,
            load_backbone,
            random_like,
            tap_groups,
        )

        a = self.args
        t_start, c_start = time.perf_counter(), time.process_time()
        with self.timer("load data"):
            data = self.datasets()
        self.sizes = ", ".join(f"{k} {len(v)} images" for k, v in data.items())
        if self.earlier is not None and self.earlier.get("sizes", self.sizes) != self.sizes:
            raise ConfigError(
                f"--include-runs: the earlier run used {self.earlier['sizes']}, this one "
                f"{self.sizes}; use the same data and budgets"
            )
        self.log(
            f"EuroSAT: train {len(data['train'])}, val {len(data['val'])}, test "
            f"{len(data['test'])} images from {data['train'].split_source}; feature cache "
            f"{self.cache}"
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
            ts = list(self.timesteps)
            if "ablations" in self.parts:
                ts += [t for t in self.ablation_timesteps if t not in ts]
            if {"satdifuser", "ablations"} & set(self.parts):
                with self.timer("extract satdifuser"):
                    ours = extract_all(diffusion_extractors(bb, taps, ts, a.pool), data,
                                       self.cache, batch_size=a.batch_size,
                                       progress=self.progress)  # fmt: skip
                main = {k: v.select(timesteps=self.timesteps) for k, v in ours.items()}
            if "satdifuser" in self.parts:
                self.log("(i) satdifuser, shipped backbone:")
                with self.timer("train satdifuser fusions"):
                    self.fusion_runs("satdifuser", "satdifuser", main, self.fusions, self.budgets)
                with self.timer("satdifuser pooled probe"):
                    self.probe_runs("satdifuser", "satdifuser pooled probe", main, self.budgets)
            if "random" in self.parts:
                rnd = random_like(bb, seed=a.random_seed)
                with self.timer("extract random weights"):
                    rfeats = extract_all(diffusion_extractors(rnd, taps, self.timesteps, a.pool),
                                         data, self.cache, batch_size=a.batch_size,
                                         progress=self.progress)  # fmt: skip
                self.log(f"(ii) same architecture, random weights (seed {a.random_seed}):")
                with self.timer("train random-weight fusions"):
                    self.fusion_runs("random", "random weights", rfeats, self.fusions, self.budgets)
                with self.timer("random-weight pooled probe"):
                    self.probe_runs("random", "random weights pooled probe", rfeats, self.budgets)
            if "ablations" in self.parts:
                self.log("ablations (GW, shipped backbone):")
                with self.timer("ablations"):
                    self.ablations(ours, groups)
        if "efficientnet" in self.parts:
            self.efficientnet(data)
        if "cnn" in self.parts:
            self.small_cnn(data)
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

    def ablations(self, ours: dict[str, FeatureSet], groups: dict[str, list[str]]) -> None:
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
            sel = {k: v.select(timesteps=[t]) for k, v in ours.items()}
            self.fusion_runs("ablation", f"timestep t={t} only", sel, gw, self.ablation_budgets)
        sel = {k: v.select(timesteps=all_t) for k, v in ours.items()}
        label = f"all timesteps {','.join(map(str, all_t))}"
        self.fusion_runs("ablation", label, sel, gw, self.ablation_budgets)
        main_t = list(self.timesteps)
        for name, taps in (("resnet", groups["resnet"]), ("attention", groups["attention"])):
            if not taps:
                self.log(f"  (no {name} taps in this UNet's decoder: ablation skipped)")
                continue
            sel = {k: v.select(taps=taps, timesteps=main_t) for k, v in ours.items()}
            self.fusion_runs("ablation", f"{name} taps only", sel, gw, self.ablation_budgets)

    def efficientnet(self, data: dict[str, Any]) -> None:
        from satdifuser.baselines import EfficientNetLiteExtractor
        from satdifuser.bench.features import extract_all
        from satdifuser.features.pooling import PooledExtractor

        a = self.args
        ext = PooledExtractor(EfficientNetLiteExtractor("imagenet", image_size=a.effnet_size),
                              a.effnet_pool)  # fmt: skip
        with self.timer("extract EfficientNet-Lite0"):
            feats = extract_all([ext], data, self.cache, batch_size=a.batch_size,
                                progress=self.progress)  # fmt: skip
        self.log("(iii) EfficientNet-Lite0 ImageNet:")
        with self.timer("EfficientNet-Lite0 probe"):
            self.probe_runs("efficientnet", "EfficientNet-Lite0 probe", feats, self.budgets,
                            taps=["head"])  # fmt: skip
        stages = {k: v.select(taps=["blocks.*"]) for k, v in feats.items()}
        with self.timer("EfficientNet-Lite0 GW"):
            self.fusion_runs("efficientnet", "EfficientNet-Lite0 stages", stages,
                             ["global_weighted"], self.budgets)  # fmt: skip

    def small_cnn(self, data: dict[str, Any]) -> None:
        from satdifuser.bench.features import load_images

        with self.timer("load images (CNN)"):
            images = {k: load_images(v) for k, v in data.items()}
        self.log(f"(iv) small CNN from scratch (width {self.cnn.width}, flips):")
        with self.timer("small CNN"):
            for b in self.budgets:
                rows = budget_rows(images["train"][1], b)
                train = (images["train"][0][rows], images["train"][1][rows])
                for s in self.seeds:
                    r = train_small_cnn(train, images["val"], images["test"], self.cnn, s,
                                        self.class_names)  # fmt: skip
                    self.record("cnn", "small CNN from scratch", b, s, r)

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
            f"- Fusion + linear head: `satdifuser.fusion` modules and `LinearHead`, Adam lr "
            f"{p.lr}, warm-up + cosine, {p.epochs} epochs (at least {p.min_steps} steps), "
            f"batch {p.batch_size}, epoch chosen on val accuracy (every {p.eval_every} epochs). "
            f"CPU-sized on purpose (paper: projection 384, bottleneck 96, 40 epochs, 8 MoE "
            f"experts): projection {p.projection_dim}, bottleneck {p.bottleneck_dim}, "
            f"{p.num_experts} experts (top {p.top_k}), and every feature map "
            f"adaptive-average-pooled to at most {a.pool}x{a.pool} before fusion "
            "(`features.pooling.PooledExtractor`).",
            "- Pooled probes: logistic regression (L-BFGS, L2 chosen on val) on globally "
            "average-pooled maps; deterministic, so every seed gives the same value (std 0).",
            f"- EfficientNet-Lite0: ImageNet weights, {a.effnet_size} px input; probe on the "
            f"pooled 1280-channel head; 'stages GW' is GW fusion over its stage outputs (pooled "
            f"to {a.effnet_pool}x{a.effnet_pool}) with the same recipe.",
            f"- Small CNN: `baselines.SmallCNN` width {c.width} ({params or '?'} parameters), "
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
