"""``satdifuser pretrain``: train (or resume) a small diffusion UNet, or export a run.

Examples:
    satdifuser pretrain --out runs/tiny --max-minutes 110 --threads 2
    satdifuser pretrain --out runs/tiny --steps 500          # continues from the last checkpoint
    satdifuser pretrain --export runs/tiny --to weights/satdifuser-eurosat-tiny --overwrite
    satdifuser pretrain --export runs/tiny --to exports/tiny-raw --weights raw
    satdifuser pretrain --out runs/mix --steps 500 --source eurosat \
        --source mask_folder:shared/data/dubai_aerial,weight=0.5,scale=0.25,crops=64+128
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from satdifuser.errors import ConfigError

# CLI flag -> PretrainConfig field (None default = "stored value when resuming, else default")
_CONFIG_FLAGS: dict[str, tuple[str, type]] = {
    "--sample-size": ("sample_size", int),
    "--layers-per-block": ("layers_per_block", int),
    "--attention-head-dim": ("attention_head_dim", int),
    "--norm-groups": ("norm_num_groups", int),
    "--timesteps": ("num_train_timesteps", int),
    "--lr": ("lr", float),
    "--warmup-steps": ("warmup_steps", int),
    "--weight-decay": ("weight_decay", float),
    "--grad-clip": ("grad_clip", float),
    "--batch-size": ("batch_size", int),
    "--ema-max-decay": ("ema_max_decay", float),
    "--min-snr-gamma": ("min_snr_gamma", float),
    "--timestep-power": ("timestep_power", float),
    "--seed": ("seed", int),
}


def _csv(kind: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x) for x in text.split(",") if x)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma list, got {text!r}") from None

    return parse


class _Parser(argparse.ArgumentParser):
    """Reports a bad argument as a one-line :class:`ConfigError` instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; run `satdifuser pretrain --help` for the options")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``satdifuser pretrain``."""
    p = _Parser(
        prog="satdifuser pretrain",
        description="Pre-train a pixel-space diffusion UNet on the unlabeled EuroSAT pool "
        "(default) or on a mix of image sources (--source, --sources). "
        "Re-running with the same --out resumes exactly from the latest checkpoint.",
    )
    p.add_argument("--out", type=Path, help="run folder (created, or resumed when it exists)")
    p.add_argument(
        "--data",
        help="data root with eurosat_rgb_split.json (else $SATDIFUSER_DATA, "
        "else shared/data found upward from the current folder)",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="EXPORT_DIR",
        help="start a new run from an exported model (its weights, config, step, data order and "
        "cumulative totals; the optimizer restarts with a fresh warm-up); ignored on resume",
    )
    p.add_argument("--split", default="unlabeled", help="pool to train on: only 'unlabeled'")
    p.add_argument(
        "--source",
        action="append",
        metavar="KIND:ROOT[,key=value...]",
        help="an image source (repeatable): eurosat, image_folder, geotiff_folder, mask_folder "
        "or geobench, with weight=, scale=, crops=64+128 (and bands=, tiles=, task=); "
        "default: eurosat alone. Stored in the run; fixed on resume",
    )
    p.add_argument(
        "--sources", type=Path, metavar="FILE.yaml", help="a YAML list of sources (dicts)"
    )
    run = p.add_argument_group("run (per invocation)")
    run.add_argument("--max-steps", type=int, help="stop at this total step count")
    run.add_argument("--steps", type=int, help="stop after this many steps in this invocation")
    run.add_argument("--max-minutes", type=float, help="wall-clock budget of this invocation")
    run.add_argument("--ckpt-every", type=int, default=100, help="checkpoint every N steps")
    run.add_argument(
        "--ckpt-minutes", type=float, default=10.0, help="and after N minutes without one"
    )
    run.add_argument("--sample-every", type=int, default=500, help="0 disables")
    run.add_argument("--sample-images", type=int, default=16)
    run.add_argument("--sample-steps", type=int, default=50, help="DDIM steps of sample grids")
    run.add_argument("--device", default="cpu")
    run.add_argument("--threads", type=int, help="torch CPU threads")
    run.add_argument("--no-progress", action="store_true")
    cfg = p.add_argument_group("model and optimisation (stored in the run; fixed on resume)")
    for flag, (_, kind) in _CONFIG_FLAGS.items():
        cfg.add_argument(flag, type=kind, default=None)
    cfg.add_argument(
        "--channels", type=_csv(int), default=None, help="block_out_channels, e.g. 32,64,128,192"
    )
    cfg.add_argument("--down-blocks", type=_csv(str), default=None)
    cfg.add_argument("--up-blocks", type=_csv(str), default=None)
    cfg.add_argument("--beta-schedule", choices=["linear", "cosine"], default=None)
    cfg.add_argument("--prediction-type", choices=["epsilon", "v_prediction"], default=None)
    cfg.add_argument(
        "--loss-weighting",
        choices=["mse", "min_snr"],
        default=None,
        help="mse (default) or min_snr (Min-SNR-gamma weights, gamma = --min-snr-gamma)",
    )
    cfg.add_argument("--flips", action=argparse.BooleanOptionalAction, default=None)
    cfg.add_argument(
        "--rot90",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random 90-degree rotations (with --flips: all 8 dihedral transforms)",
    )
    cfg.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    exp = p.add_argument_group("export")
    exp.add_argument("--export", type=Path, metavar="RUN_DIR", help="export this run and exit")
    exp.add_argument("--to", type=Path, metavar="DIR", help="export target folder")
    exp.add_argument("--name", default="satdifuser-eurosat-tiny", help="model name in the card")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing export")
    exp.add_argument(
        "--weights",
        choices=["ema", "raw"],
        default=None,
        help="weights to export: ema (default) or raw (the non-EMA model of the checkpoint)",
    )
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, (field, _) in _CONFIG_FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            out[field] = value
    for attr, field in (
        ("channels", "block_out_channels"),
        ("down_blocks", "down_block_types"),
        ("up_blocks", "up_block_types"),
        ("beta_schedule", "beta_schedule"),
        ("prediction_type", "prediction_type"),
        ("loss_weighting", "loss_weighting"),
        ("flips", "flips"),
        ("rot90", "rot90"),
        ("bf16", "bf16"),
    ):
        value = getattr(args, attr)
        if value is not None:
            out[field] = list(value) if isinstance(value, tuple) else value
    return out


def _check_args(args: argparse.Namespace) -> None:
    """Refuse contradictory or out-of-range options before anything is loaded or created."""
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads={args.threads} is invalid: expected an integer >= 1")
    if args.export is not None:
        if args.to is None:
            raise ConfigError("--export needs --to DIR (the export folder); add --to DIR")
        if args.out is not None or args.init_from is not None:
            raise ConfigError(
                "--export RUN_DIR --to DIR writes an export and trains nothing; "
                "drop --out/--init-from (or drop --export to train)"
            )
        if args.source or args.sources:
            raise ConfigError("--source/--sources are for training; drop them with --export")
        for flag in ("sample_images", "sample_steps"):
            if getattr(args, flag) < 1:
                name = "--" + flag.replace("_", "-")
                raise ConfigError(f"{name}={getattr(args, flag)} is invalid: expected >= 1")
        return
    for flag, value in (("--to", args.to), ("--weights", args.weights)):
        if value is not None:
            raise ConfigError(
                f"{flag} is only used with --export RUN_DIR; add --export or drop {flag}"
            )
    if args.out is None:
        raise ConfigError("--out RUN_DIR is required (or --export RUN_DIR --to DIR); add --out")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file, not a folder; pick another --out")
    if args.max_steps is None and args.steps is None and args.max_minutes is None:
        raise ConfigError("no stop condition: pass --max-steps, --steps or --max-minutes")


def _export(args: argparse.Namespace) -> int:
    from satdifuser.pretrain import export_pipeline

    summary = export_pipeline(
        args.export,
        args.to,
        name=args.name,
        overwrite=args.overwrite,
        sample_images=args.sample_images,
        sample_steps=args.sample_steps,
        weights=args.weights or "ema",
    )
    print(
        f"exported {args.export} ({summary['weights']} weights, step {summary['steps']}, "
        f"{summary['params'] / 1e6:.2f}M params, {summary['size_mb']:.1f} MB) "
        f"to {summary['out_dir']}"
    )
    return 0


def _load_sources(args: argparse.Namespace, specs: list, sample_size: int, resuming: bool) -> Any:
    """Resolve, check (against a resumed run's ``sources.json`` too) and load the sources."""
    from satdifuser.pretrain import find_data_root
    from satdifuser.pretrain.sources import check_resume_sources, resolve_root
    from satdifuser.pretrain.sources_load import load_pool

    def note(message: str) -> None:
        print(f"pretrain: {message}", file=sys.stderr)

    data = None
    if any(s.kind == "eurosat" and s.root is None for s in specs):
        data = find_data_root(args.data, os.environ.get("SATDIFUSER_DATA"), Path.cwd())
    specs = [resolve_root(s, data) for s in specs]
    check_resume_sources(args.out, specs, resuming)
    return load_pool(specs, sample_size, note)


def run(argv: list[str]) -> int:
    """Entry point of ``satdifuser pretrain``.

    Returns 0 when the run reached its stop condition (--steps, --max-steps, --max-minutes), and
    128 + the signal number when SIGINT/SIGTERM stopped it (after its checkpoint was written).
    """
    args = build_parser().parse_args(argv)
    _check_args(args)
    from satdifuser.pretrain.sources import gather_sources

    specs = gather_sources(args.source, args.sources, args.split)  # syntax and values first
    import torch

    from satdifuser.pretrain import PretrainTrainer, RunOptions, resolve_config
    from satdifuser.pretrain.checkpoint import latest_checkpoint
    from satdifuser.pretrain.warm_start import read_export

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export is not None:
        return _export(args)
    command = shlex.join(["satdifuser", "pretrain", *argv])
    options = RunOptions(  # validates the per-invocation options (steps, device, ...)
        max_steps=args.max_steps,
        steps=args.steps,
        max_minutes=args.max_minutes,
        ckpt_every=args.ckpt_every,
        ckpt_minutes=args.ckpt_minutes,
        sample_every=args.sample_every,
        sample_images=args.sample_images,
        sample_steps=args.sample_steps,
        device=args.device,
        progress=not args.no_progress,
        command=command,
    )
    exported = None
    resuming = latest_checkpoint(args.out) is not None  # an incomplete checkpoint stops here
    if args.init_from is not None and not resuming:
        exported = read_export(args.init_from)
    elif args.init_from is not None:
        note = f"pretrain: {args.out} has a checkpoint: resuming it, --init-from ignored"
        print(note, file=sys.stderr)
    config = resolve_config(args.out, _overrides(args), exported.config if exported else None)
    options.check_against(config)
    images = _load_sources(args, specs, config.sample_size, resuming)
    trainer = PretrainTrainer(args.out, config, images, options, init_from=exported)
    for note in trainer.notes:
        print(f"pretrain: {note}", file=sys.stderr)
    print(
        f"pretrain: run {args.out} at step {trainer.step}, "
        f"{sum(p.numel() for p in trainer.unet.parameters()) / 1e6:.2f}M params, "
        f"{torch.get_num_threads()} threads",
        file=sys.stderr,
    )
    if config.bf16 and not trainer.use_bf16:
        print(
            f"pretrain: {args.device} has no native bf16: training in fp32 (emulated bf16 is slow)",
            file=sys.stderr,
        )
    stop: dict[str, int | None] = {"signal": None}

    def _handler(signum: int, _frame: object) -> None:
        if stop["signal"] is not None:
            raise KeyboardInterrupt
        stop["signal"] = signum
        print(
            f"\npretrain: signal {signum}: stopping after this step (checkpointing)",
            file=sys.stderr,
        )

    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = trainer.run(stop_requested=lambda: stop["signal"] is not None)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    loss = summary["last_loss"]
    print(
        f"pretrain: stopped by {summary['stopped_by']} at step {summary['step']} "
        f"(+{summary['steps_this_run']}), images seen {summary['images_seen']}, "
        f"last loss {loss if loss is None else round(loss, 5)}, "
        f"{summary['img_per_s']:.1f} img/s; checkpoint in {args.out / 'checkpoint'}"
    )
    signum = stop["signal"]
    if summary["stopped_by"] == "interrupted" and signum is not None:
        name = signal.Signals(signum).name
        print(
            f"pretrain: stopped by {name} at step {summary['step']}; the checkpoint is saved: "
            "rerun the same command to resume exactly from it",
            file=sys.stderr,
        )
        return 128 + signum
    return 0
