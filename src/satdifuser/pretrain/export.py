"""Export a pre-training run as a diffusers pipeline folder with a model card.

Layout: ``unet/config.json`` + ``unet/diffusion_pytorch_model.safetensors`` (the EMA weights, or
the raw ones with ``weights="raw"``; fp16),
``scheduler/scheduler_config.json`` (the training DDPM schedule), ``model_index.json``
(a ``DDPMPipeline``), ``samples.png``, ``training.json`` (totals) and ``README.md``.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from satdifuser.errors import CheckpointError, ConfigError
from satdifuser.pretrain.checkpoint import latest_checkpoint, load_checkpoint
from satdifuser.pretrain.config import PretrainConfig, build_scheduler, build_unet, check_model
from satdifuser.pretrain.ema import EMAWeights
from satdifuser.pretrain.sampling import generate, save_grid
from satdifuser.pretrain.sources import stored_sources
from satdifuser.pretrain.trainer import CONFIG_FILE, LOSS_FILE


def _loss_summary(run_dir: Path, step: int, window: int = 50) -> dict[str, float | None]:
    path = run_dir / LOSS_FILE
    if not path.is_file():
        return {"first_loss": None, "final_loss": None}
    with path.open(newline="") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh) if int(r["step"]) <= step]
    if not losses:
        return {"first_loss": None, "final_loss": None}
    tail = losses[-window:]
    return {
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "final_loss_window": len(tail),
    }


def _recipe(cfg: PretrainConfig) -> tuple[str, str]:
    """The card's words for the loss, and for timestep sampling and augmentation."""
    loss = "MSE loss"
    if cfg.loss_weighting == "min_snr":
        loss = (
            f"Min-SNR-gamma weighted MSE loss (gamma {cfg.min_snr_gamma:g}, Hang et al. 2023; "
            "the logged loss is the unweighted MSE)"
        )
    p = cfg.timestep_power
    steps = "uniform" if p == 1 else f"floor(T * u^{p:g}), u ~ U[0, 1) (mean t/T {1 / (p + 1):.2f})"
    augment = [
        *(["random horizontal/vertical flips"] if cfg.flips else []),
        *(["random 90-degree rotations"] if cfg.rot90 else []),
    ]
    return loss, f"timesteps {steps}; augmentation: {', '.join(augment) or 'none'}"


EUROSAT_DATA = (
    "EuroSAT RGB (Sentinel-2, 10 m, MIT licence; Helber et al., IEEE JSTARS 2019): only the\n"
    "`unlabeled` pool of the fixed split `eurosat_rgb_split.json`. The `val` and `test` images "
    "were never\nseen, nor the labelled `train` budgets."
)


_DEFAULT_SOURCES = [{"kind": "eurosat", "name": "data", "weight": 1.0}]  # runs before sources


def _lineage(runs: list[dict[str, Any]], sources: list[dict[str, Any]] | None) -> list[tuple]:
    """``(first step, last step, sources)`` per stretch of the history with the same sources."""
    def key(src: list[dict[str, Any]]) -> list[tuple]:
        return [(d.get("kind"), d.get("name"), float(d.get("weight", 1.0)),
                 float(d.get("scale", 1.0)), d.get("crops")) for d in src]  # fmt: skip

    out: list[tuple] = []
    for r in runs:
        src = r.get("sources") or _DEFAULT_SOURCES
        if out and key(out[-1][2]) == key(src) and out[-1][1] == r["start_step"]:
            out[-1] = (out[-1][0], r["end_step"], src)  # the later record names the counts
        else:
            out.append((r["start_step"], r["end_step"], src))
    return out if len(out) > 1 else [(None, None, sources)]


def _data_section(
    sources: list[dict[str, Any]] | None, size: int, runs: list[dict[str, Any]] | None = None
) -> str:
    """The card's data paragraph: one "Data" line per source, per stretch of the history when
    the sources changed (e.g. EuroSAT, then a warm start on aerial tiles)."""
    stretches = _lineage(runs or [], sources)
    if len(stretches) == 1:
        return _sources_lines(sources, size)
    parts = [
        f"Steps {a} -> {b}:\n\n" + _sources_lines(src, size, held=False) for a, b, src in stretches
    ]
    return "\n".join(parts) + "\n" + HELD_OUT + "\n"


HELD_OUT = (
    "Held-out images were never read: EuroSAT only `unlabeled`, GEO-Bench only `train`, "
    "folders only `train/`, Dubai never the validation tile of `satdifuser bench dubai`."
)


def _sources_lines(sources: list[dict[str, Any]] | None, size: int, held: bool = True) -> str:
    """One "Data" line per source (EuroSAT alone before sources.json)."""
    if not sources:
        return EUROSAT_DATA + ("" if held else "\n")
    total = sum(float(r.get("weight", 1.0)) for r in sources) or 1.0
    lines = []
    for r in sources:
        crops, weight = r.get("crops"), float(r.get("weight", 1.0))
        how = (
            f"random crops of {'/'.join(map(str, crops))} px resized to {size}"
            if crops
            else f"whole images resized to {size}"
        )
        lines.append(
            f"- Data: `{r.get('kind')}` `{r.get('name', '-')}`: {r.get('count', '?')} images, "
            f"weight {weight:g} ({100 * weight / total:.0f}% of samples), "
            f"scale {float(r.get('scale', 1.0)):g}, {how}"
        )
    eurosat = EUROSAT_DATA + "\n\n" if any(r.get("kind") == "eurosat" for r in sources) else ""
    return eurosat + "\n".join(lines) + "\n" + ("\n" + HELD_OUT + "\n" if held else "")


WEIGHTS = {"ema": "EMA", "raw": "raw (non-EMA)"}


def _compute(totals: dict[str, Any]) -> dict[str, Any]:
    """Wall and measured CPU seconds, per hardware and in total.

    CPU time is known only for the run entries that record it; the wall time of the others
    (trained before satdifuser measured CPU time) is reported as unrecorded, never as 0 CPU.
    """
    wall = {hw: float(s) for hw, s in totals.get("wall_seconds", {}).items()}
    measured_wall: dict[str, float] = {}
    for r in totals.get("runs", []):
        if r.get("cpu_seconds") is not None:
            hw = r["hardware"]
            measured_wall[hw] = measured_wall.get(hw, 0.0) + float(r.get("wall_seconds", 0.0))
    cpu = {
        hw: float(s) for hw, s in (totals.get("cpu_seconds") or {}).items() if hw in measured_wall
    }
    unrecorded = {hw: round(s - measured_wall.get(hw, 0.0), 3) for hw, s in wall.items()}
    unrecorded = {hw: s for hw, s in unrecorded.items() if s > 0}
    return {
        "cpu_seconds": cpu,
        "cpu_unrecorded_wall_seconds": unrecorded,
        "total_wall_seconds": round(sum(wall.values()), 3),
        "total_cpu_seconds": round(sum(cpu.values()), 3) if cpu else None,
        "total_cpu_unrecorded_wall_seconds": round(sum(unrecorded.values()), 3),
    }


def _compute_lines(summary: dict[str, Any]) -> str:
    """The card's hardware table (wall minutes, measured CPU-hours) and its total line."""
    cpu, missing = summary["cpu_seconds"], summary["cpu_unrecorded_wall_seconds"]
    rows = []
    for hw, s in summary["wall_seconds"].items():
        if hw not in cpu:
            measured = "not recorded"
        else:
            measured = f"{cpu[hw] / 3600:.2f}"
            if hw in missing:
                measured += f" ({missing[hw] / 60:.1f} wall min not recorded)"
        rows.append(f"| {hw} | {s / 60:.1f} | {measured} |")
    wall, total = summary["total_wall_seconds"] / 60, summary["total_cpu_seconds"]
    if total is None:
        line = f"Total: {wall:.1f} wall minutes; CPU time not recorded."
    else:
        line = f"Total: {wall:.1f} wall minutes; {total / 3600:.2f} CPU-hours measured"
        gap = summary["total_cpu_unrecorded_wall_seconds"] / 60
        line += f" ({gap:.1f} wall minutes not recorded)." if gap else "."
    return (
        "| hardware | wall minutes | CPU-hours (measured) |\n|---|---|---|\n"
        + ("\n".join(rows) or "| - | - | - |")
        + f"\n\n{line}\nMeasured: the training process's CPU time (all threads, user + "
        "system), below wall x threads when other work shares the CPU; not recorded: trained "
        "before satdifuser measured it.\n"
    )


def _model_card(name: str, cfg: PretrainConfig, summary: dict[str, Any]) -> str:
    weights = WEIGHTS[summary["weights"]]
    runs = "\n".join(
        f"- steps {r['start_step']} -> {r['end_step']} on {r['hardware']}, "
        f"{'bf16' if r.get('bf16') else 'fp32'} ({r['started']}): "
        f"`{r['command'] or '(python API)'}`"
        for r in summary["runs"]
    )
    warm = "".join(
        f"\n- warm start at step {w['step']} from `{w['from']}` ({w['at']}): {w['reset']}"
        + (f"; {w['data']}" if w.get("data") else "")
        for w in summary.get("warm_starts", [])
    )
    fl = summary["final_loss"]
    final = f"{fl:.4f} (mean of the last {summary['final_loss_window']} steps)" if fl else "n/a"
    first = f"{summary['first_loss']:.4f}" if summary["first_loss"] else "n/a"
    loss, recipe = _recipe(cfg)
    return f"""# {name}

A small pixel-space diffusion UNet (diffusers `UNet2DModel`, {summary["params"] / 1e6:.2f}M
parameters, {cfg.sample_size}x{cfg.sample_size} RGB) pre-trained by `satdifuser pretrain` as a
generative model, for use as a frozen feature extractor (`create_backbone("{name}")`).

## Data
{_data_section(summary.get("sources"), cfg.sample_size, summary.get("runs"))}
Images scaled to [-1, 1]; augmentation as the recipe below says.

## Training
- DDPM, {cfg.num_train_timesteps} steps, {cfg.beta_schedule} betas, `{cfg.prediction_type}`
  prediction, {loss}; AdamW lr {cfg.lr:g} ({cfg.warmup_steps}-step warm-up, then constant),
  weight decay {cfg.weight_decay:g}, grad clip {cfg.grad_clip:g}, batch {cfg.batch_size},
  bf16 autocast requested: {cfg.bf16}, used only on hardware with native bf16 (each run below
  says fp32 or bf16);
  EMA decay min({cfg.ema_max_decay}, (1+step)/(10+step)).
- Recipe: {recipe}.
- Total steps: **{summary["steps"]}**; images seen: **{summary["images_seen"]:,}**
  ({summary["images_seen"] / summary["pool_size"]:.2f} passes over {summary["pool_size"]:,} images).
- Loss: {first} at the first step, final {final}.
- Weights here: the {weights} weights, stored in fp16 safetensors ({summary["size_mb"]:.1f} MB).

{_compute_lines(summary)}
## Exact commands (cumulative: each run resumed or warm-started as noted)
{runs}{warm}

## Samples
`samples.png`: {summary["sample_images"]} images, DDIM {summary["sample_steps"]} steps,
{weights} weights.

![samples](samples.png)

## Config
```json
{json.dumps(cfg.to_dict(), indent=1)}
```
"""


def export_pipeline(
    run_dir: Path,
    out_dir: Path,
    *,
    name: str = "satdifuser-eurosat-tiny",
    overwrite: bool = False,
    sample_images: int = 16,
    sample_steps: int = 50,
    weights: str = "ema",
) -> dict[str, Any]:
    """Write the run's latest weights as a diffusers pipeline folder; returns a summary.

    ``weights``: ``"ema"`` (the EMA weights, default) or ``"raw"`` (the model being optimised,
    e.g. to compare EMA decays at equal compute); the card and ``training.json`` say which.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise CheckpointError(
            f"run folder {run_dir} does not exist; pass the --out folder of a "
            "`satdifuser pretrain` run"
        )
    folder = latest_checkpoint(run_dir)  # raises on an incomplete checkpoint
    if folder is None or not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(
            f"{run_dir} holds no complete pre-training checkpoint; pass the --out folder of a "
            "`satdifuser pretrain` run"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"export target {out_dir} is a file; pick a folder for --to")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(
            f"export target {out_dir} exists and is not empty; pass --overwrite to replace it"
        )
    if weights not in WEIGHTS:
        raise ConfigError(f"--weights={weights!r} is invalid: expected 'ema' or 'raw'")
    for flag, value in (("--sample-images", sample_images), ("--sample-steps", sample_steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{flag}={value!r} is invalid: expected an integer >= 1")
    cfg = PretrainConfig.load(run_dir / CONFIG_FILE)
    if sample_steps > cfg.num_train_timesteps:
        raise ConfigError(
            f"--sample-steps={sample_steps} exceeds the {cfg.num_train_timesteps} training "
            "timesteps; lower --sample-steps"
        )
    check_model(cfg)
    ck = load_checkpoint(folder)
    unet = build_unet(cfg)
    ema = EMAWeights(unet, cfg.ema_max_decay)
    try:
        if weights == "ema":
            ema.load_state_dict(ck["ema"])
            ema.copy_to(unet)
        else:
            unet.load_state_dict(ck["model"])
    except (KeyError, RuntimeError) as exc:
        file = "ema.safetensors" if weights == "ema" else "model.safetensors"
        why = str(exc.args[0] if exc.args else exc).splitlines()[0]
        raise CheckpointError(
            f"{folder / file} does not match the model of {run_dir / CONFIG_FILE} "
            f"({why}); restore the checkpoint"
        ) from None
    scheduler = build_scheduler(cfg)
    state = ck["state"]
    totals = state["totals"]
    images = generate(unet, dict(scheduler.config), sample_images, sample_steps, seed=0)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}-tmp-*"):  # left by a killed export
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-tmp-", dir=out_dir.parent))
    try:
        # torch's own cast: diffusers' ModelMixin.to warns about fp32-kept modules even when the
        # UNet has none, which every export printed as a spurious warning
        torch.nn.Module.to(unet, torch.float16)
        unet.save_pretrained(tmp / "unet", safe_serialization=True)
        scheduler.save_pretrained(tmp / "scheduler")
        import diffusers

        (tmp / "model_index.json").write_text(
            json.dumps(
                {
                    "_class_name": "DDPMPipeline",
                    "_diffusers_version": diffusers.__version__,
                    "scheduler": ["diffusers", "DDPMScheduler"],
                    "unet": ["diffusers", "UNet2DModel"],
                },
                indent=2,
            )
            + "\n"
        )
        save_grid(images, tmp / "samples.png")
        weights_file = tmp / "unet" / "diffusion_pytorch_model.safetensors"
        summary: dict[str, Any] = {
            "name": name,
            "steps": int(state["step"]),
            "images_seen": int(totals.get("images_seen", 0)),
            "pool_size": int(state["order"]["n"]),
            "weights": weights,
            "wall_seconds": totals.get("wall_seconds", {}),
            **_compute(totals),
            "runs": totals.get("runs", []),
            "warm_starts": totals.get("warm_starts", []),
            "params": sum(p.numel() for p in unet.parameters()),
            "size_mb": weights_file.stat().st_size / 2**20,
            "sample_images": sample_images,
            "sample_steps": sample_steps,
            "sources": stored_sources(run_dir),
            **_loss_summary(run_dir, int(state["step"])),
        }
        if totals.get("first_loss") is not None:  # a warm start keeps the very first loss
            summary["first_loss"] = totals["first_loss"]
        summary.setdefault("final_loss_window", 0)
        (tmp / "training.json").write_text(
            json.dumps({**summary, "config": cfg.to_dict()}, indent=1) + "\n"
        )
        (tmp / "README.md").write_text(_model_card(name, cfg, summary))
        old = out_dir.with_name(f".{out_dir.name}-old")
        if old.exists():
            shutil.rmtree(old)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**summary, "out_dir": str(out_dir)}
