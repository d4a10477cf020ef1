"""The pre-training loop: DDPM noise-prediction on an image pool, cumulative and exactly resumable.

Every source of randomness is either a pure function of ``(seed, epoch)`` (data order) or a
``torch.Generator`` whose state is checkpointed (flips, rotations, noise, timesteps), and the
learning rate is a pure function of the step, so N steps + resume + N steps equals 2N
uninterrupted steps.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from satdifuser._atomic_io import atomic_write_text, remove_tmp_files
from satdifuser.errors import CheckpointError, ConfigError
from satdifuser.pretrain.checkpoint import (
    CKPT,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_tmp,
    save_checkpoint,
)
from satdifuser.pretrain.config import (
    ARCHITECTURE_FIELDS,
    PretrainConfig,
    build_scheduler,
    build_unet,
    check_model,
)
from satdifuser.pretrain.ema import EMAWeights
from satdifuser.pretrain.hardware import bf16_native, check_device, hardware_name
from satdifuser.pretrain.image_pool import BatchOrder
from satdifuser.pretrain.options import RunOptions
from satdifuser.pretrain.sampling import generate, save_grid
from satdifuser.pretrain.sources import SOURCES_FILE, check_resume_sources, write_sources
from satdifuser.pretrain.sources_load import ImagePool
from satdifuser.pretrain.sources_sampling import MixedOrder
from satdifuser.pretrain.warm_start import ExportedRun, start_position, warm_totals

CONFIG_FILE = "config.json"
LOSS_FILE = "loss.csv"
LOSS_COLUMNS = ("step", "epoch", "loss", "lr", "ema_decay", "img_per_s", "run_seconds")


def resolve_config(
    run_dir: Path, overrides: dict[str, Any], base: PretrainConfig | None = None
) -> PretrainConfig:
    """The run's config: the stored one on resume (overrides must agree), else ``base`` (a
    warm start's export config) or the defaults, with the overrides applied.

    A warm start may change the recipe (lr, warm-up, EMA, loss weighting, timestep sampling,
    augmentation, ...) but not :data:`ARCHITECTURE_FIELDS`: the export's weights fix them.
    """
    path = run_dir / CONFIG_FILE
    if path.is_file():
        stored = PretrainConfig.load(path)
        given = PretrainConfig.from_dict({**stored.to_dict(), **overrides}, source="options")
        diff = [k for k, v in given.to_dict().items() if stored.to_dict()[k] != v]
        if diff:
            key = diff[0]
            raise ConfigError(
                f"{key}={given.to_dict()[key]!r} differs from {stored.to_dict()[key]!r} stored in "
                f"{path}; a run keeps its config on resume: drop the option or use a new --out"
            )
        check_model(stored)
        return stored
    start = (base or PretrainConfig()).to_dict()
    config = PretrainConfig.from_dict({**start, **overrides}, source="options")
    if base is not None:
        new = config.to_dict()
        for key in ARCHITECTURE_FIELDS:
            if new[key] != start[key]:
                raise ConfigError(
                    f"{key}={new[key]!r} differs from {start[key]!r} of the --init-from export; "
                    "a warm start keeps the export's architecture: drop the option, or train "
                    "from scratch without --init-from"
                )
    check_model(config)
    return config


def sample_timesteps(cfg: PretrainConfig, b: int, gen: torch.Generator) -> torch.Tensor:
    """``b`` training timesteps ``floor(T * u**p)``, ``u ~ U[0, 1)`` with ``p = timestep_power``.

    ``p == 1`` is exactly the uniform ``torch.randint`` draw of runs made before the option
    existed (same values, same generator consumption), so their resumes stay bit-exact.
    """
    n = cfg.num_train_timesteps
    if cfg.timestep_power == 1.0:
        return torch.randint(0, n, (b,), generator=gen)
    u = torch.rand(b, generator=gen, dtype=torch.float64)
    return (n * u.pow(cfg.timestep_power)).floor().long().clamp_(0, n - 1)


def min_snr_weights(
    alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float, prediction_type: str
) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al., ICCV 2023) of timesteps ``t`` (float32).

    ``SNR_t = a_t / (1 - a_t)`` with ``a_t = alphas_cumprod[t]``; the weight is
    ``min(SNR_t, gamma) / SNR_t`` for epsilon prediction and ``min(SNR_t, gamma) / (SNR_t + 1)``
    for v prediction (written so that ``SNR_t == 0`` gives 1 and 0, never NaN).
    """
    a = alphas_cumprod.to(t.device, torch.float64)[t]
    snr = a / (1.0 - a)
    if prediction_type == "epsilon":
        weight = (gamma / snr).clamp(max=1.0)
    else:
        weight = snr.clamp(max=gamma) / (snr + 1.0)
    return weight.float()


def _rotate90(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate each square image of ``(B, C, H, W)`` ``x`` by ``k[i]`` quarter turns."""
    out = x
    for quarter in (1, 2, 3):
        turned = (k == quarter)[:, None, None, None]
        out = torch.where(turned, x.rot90(quarter, dims=(-2, -1)), out)
    return out


def _lr_at(cfg: PretrainConfig, step: int, since: int = 0) -> float:
    """Linear warm-up over ``warmup_steps`` from step ``since`` (a warm start), then flat."""
    if cfg.warmup_steps <= 0:
        return cfg.lr
    return cfg.lr * min(1.0, (step - since + 1) / cfg.warmup_steps)


def _truncate_loss_log(path: Path, step: int) -> int:
    """Drop log rows newer than the checkpoint being resumed (written before a kill).

    Returns the number of rows dropped.
    """
    if not path.is_file():
        return 0
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (r.get("step") or "").isdigit()]
    keep = [r for r in rows if int(r["step"]) <= step]
    if len(keep) == len(rows):
        return 0
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=LOSS_COLUMNS)
    writer.writeheader()
    writer.writerows(keep)
    atomic_write_text(path, buf.getvalue())
    return len(rows) - len(keep)


class PretrainTrainer:
    """Trains ``config``'s UNet on a uint8 image pool ``(N, H, W, 3)``, writing into ``run_dir``.

    ``images`` is that array, or an :class:`~satdifuser.pretrain.sources_load.ImagePool` of
    loaded sources (recorded in ``sources.json``): a single source of whole images is walked in
    epochs like an array, several sources (or crops) are mixed by
    :class:`~satdifuser.pretrain.sources_sampling.MixedOrder`.

    A run resumes from its latest checkpoint; a run without one starts from ``init_from`` (an
    export read by :func:`~satdifuser.pretrain.warm_start.read_export`) when given, else from
    scratch. A damaged checkpoint stops the start with :class:`CheckpointError` (never a silent
    restart). Notes for the user (e.g. dropped log rows) are collected in :attr:`notes`.
    """

    def __init__(
        self,
        run_dir: Path,
        config: PretrainConfig,
        images: np.ndarray | ImagePool,
        options: RunOptions,
        init_from: ExportedRun | None = None,
    ):
        self.pool = images if isinstance(images, ImagePool) else None
        array = images if self.pool is None else self.pool.uniform
        size = (config.sample_size, config.sample_size, 3)
        if array is not None and (array.ndim != 4 or array.shape[1:] != size):
            raise ConfigError(
                f"image pool has shape {array.shape}; expected (N, {config.sample_size}, "
                f"{config.sample_size}, 3) uint8 for sample_size={config.sample_size}"
            )
        check_model(config)
        options.check_against(config)
        self.run_dir, self.cfg, self.opt = Path(run_dir), config, options
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ConfigError(f"--out {self.run_dir} is a file, not a folder; pick another --out")
        self.device = check_device(options.device)
        self.use_bf16 = config.bf16 and bf16_native(self.device)
        self.notes: list[str] = []

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        self.unet = build_unet(config).to(self.device).train()
        self.scheduler = build_scheduler(config)
        self.ema = EMAWeights(self.unet, config.ema_max_decay)
        self.optimizer = torch.optim.AdamW(
            self.unet.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.gen = torch.Generator().manual_seed(config.seed + 1)
        self.order: BatchOrder | MixedOrder
        if array is not None:
            self.images: torch.Tensor | None = torch.from_numpy(array).to(self.device)
            self.order = BatchOrder(len(array), config.batch_size, config.seed)
        else:
            assert self.pool is not None
            self.images = None
            self.order = MixedOrder(
                self.pool.sources, config.batch_size, config.seed, config.sample_size
            )
        if self.pool is not None:  # before any state is loaded: a changed source list stops here
            specs = [s.spec for s in self.pool.sources]
            check_resume_sources(self.run_dir, specs, latest_checkpoint(self.run_dir) is not None)
        self.step = 0
        self.totals: dict[str, Any] = {
            "images_seen": 0,
            "wall_seconds": {},
            "cpu_seconds": {},
            "runs": [],
        }
        self.last_loss: float | None = None
        self.warm_start_step = 0
        self.resumed = self._resume()
        if not self.resumed and init_from is not None:
            self._warm_start(init_from)
        # written only once the state is loaded, so a refused start leaves no run folder behind;
        # what this start creates is removed again if the run fails before its first checkpoint
        self._created = [
            p
            for p in (
                self.run_dir,
                self.run_dir / CONFIG_FILE,
                self.run_dir / LOSS_FILE,
                self.run_dir / SOURCES_FILE,
            )
            if not p.exists()
        ]
        if not self.resumed:
            dropped = _truncate_loss_log(self.run_dir / LOSS_FILE, self.step)
            if dropped:
                self.notes.append(
                    f"{self.run_dir} had no checkpoint: {dropped} logged step(s) of an earlier "
                    f"start dropped from {LOSS_FILE}; starting at step {self.step}"
                )
        stale = remove_stale_tmp(self.run_dir)
        if stale:
            self.notes.append(
                f"removed {len(stale)} unfinished checkpoint write(s) in {self.run_dir}"
            )
        # temporary files of killed atomic writes (config, sources, loss log, sample grids)
        leftovers = remove_tmp_files(self.run_dir) + remove_tmp_files(self.run_dir / "samples")
        if leftovers:
            self.notes.append(
                f"removed {len(leftovers)} unfinished file write(s) in {self.run_dir}"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config.save(self.run_dir / CONFIG_FILE)
        if self.pool is not None:
            write_sources(self.run_dir, self.pool.records())
        self._sample_unet = None
        self._sample_seconds: float | None = None

    # ----------------------------------------------------------------- state
    def _warm_start(self, run: ExportedRun) -> None:
        try:
            self.unet.load_state_dict(run.weights)
            self.ema.load_state_dict(run.weights)
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(
                f"{run.path} does not match this run's model ({str(exc).splitlines()[0]}); "
                "warm-start with the export's own config (drop the shape options)"
            ) from None
        n, batch = self.order.n, self.cfg.batch_size
        same_pool = run.pool_size == n
        if isinstance(self.order, MixedOrder):  # a pure function of (seed, step): any pool
            self.order.step = run.steps
        elif same_pool:  # the same data: its order continues from the export's step
            epoch, position = start_position(run.steps, run.pool_size, n, batch)
            self.order = BatchOrder(n, batch, self.cfg.seed, epoch, position)
        else:  # other data (fine-tuning on the user's imagery): a fresh order over it
            self.order = BatchOrder(n, batch, self.cfg.seed, 0, 0)
        if not same_pool:
            print(f"pretrain: warm start on other data ({n} images; the export's pool had "
                  f"{run.pool_size}): its weights and totals carry on, the data order starts "
                  "afresh", file=sys.stderr)  # fmt: skip
        self.step = self.warm_start_step = run.steps
        self.gen.manual_seed(self.cfg.seed + 1 + run.steps)
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.totals = warm_totals(run, at, None if same_pool else n)
        # the export keeps CPU time per run entry: the per-hardware sums continue from them
        cpu: dict[str, float] = {}
        for entry in self.totals["runs"]:
            if entry.get("cpu_seconds") is not None:
                hw = entry["hardware"]
                cpu[hw] = round(cpu.get(hw, 0.0) + float(entry["cpu_seconds"]), 3)
        self.totals["cpu_seconds"] = cpu

    def _resume(self) -> bool:
        folder = latest_checkpoint(self.run_dir)
        if folder is None:
            return False
        ck = load_checkpoint(folder)
        st = ck["state"]
        try:
            n = int(st["order"]["n"])
        except (KeyError, TypeError, ValueError):
            n = None
        if n is not None and n != self.order.n:
            raise CheckpointError(
                f"{folder} was trained on a pool of {n} images but "
                f"{self.order.n} were given; resume with the same data or use a new --out"
            )
        try:
            self.unet.load_state_dict(ck["model"])
            self.ema.load_state_dict(ck["ema"])
            self.optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{folder} does not match the model of {self.run_dir / CONFIG_FILE} "
                f"({str(exc).splitlines()[0]}); use a new --out"
            ) from None
        try:
            self.gen.set_state(ck["rng"]["generator"])
            torch.set_rng_state(ck["rng"]["torch"])
            np.random.set_state(tuple(st["rng"]["numpy"]))  # type: ignore[arg-type]
            py = st["rng"]["python"]
            random.setstate((py[0], tuple(py[1]), py[2]))
            o = st["order"]
            step, totals = int(st["step"]), dict(st["totals"])
            mixed = isinstance(self.order, MixedOrder)
            if (o.get("kind") == "mixed") != mixed:
                raise CheckpointError(
                    f"{folder} was trained with {'mixed' if not mixed else 'epoch'} batches but "
                    "this pool gives the other kind; resume with the same sources or a new --out"
                )
            if isinstance(self.order, MixedOrder):
                order: BatchOrder | MixedOrder = self.order
                order.step = step
            else:
                order = BatchOrder(n, self.cfg.batch_size, o["seed"], o["epoch"], o["position"])
            warm_start_step = int(st.get("warm_start_step", 0))
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"checkpoint {folder} has a damaged state.json or rng.safetensors "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "restore the checkpoint or use a new --out"
            ) from None
        self.order, self.step, self.totals = order, step, totals
        self.last_loss = st.get("last_loss")
        self.warm_start_step = warm_start_step
        _truncate_loss_log(self.run_dir / LOSS_FILE, self.step)
        return True

    def _state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_state = random.getstate()
        return {
            "step": self.step,
            "order": self.order.state(),
            "last_loss": self.last_loss,
            "warm_start_step": self.warm_start_step,
            "totals": self.totals,
            "rng": {
                "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
                "python": [py_state[0], list(py_state[1]), py_state[2]],
            },
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self) -> Path:
        """Write a checkpoint of the current state (atomically).

        The wall time and the process CPU time (``time.process_time``: all threads, user +
        system) since the previous save are added first, per hardware to the totals and to this
        run's entry. A run resumed from a checkpoint made before CPU time was recorded starts
        ``cpu_seconds`` here; its earlier entries have none (unknown, not 0).
        """
        now, cpu_now = time.monotonic(), time.process_time()
        hw = hardware_name(self.device)
        deltas = (
            ("wall_seconds", round(now - self._last_save, 3)),
            ("cpu_seconds", round(cpu_now - self._last_cpu, 3)),
        )
        for key, delta in deltas:
            per_hw = self.totals.setdefault(key, {})
            per_hw[hw] = round(per_hw.get(hw, 0.0) + delta, 3)
            self._run_entry[key] = round(self._run_entry.get(key, 0.0) + delta, 3)
        self._last_save, self._last_cpu = now, cpu_now
        self.totals["steps"] = self.step
        self._run_entry["end_step"] = self.step
        return save_checkpoint(
            self.run_dir,
            model=self.unet.state_dict(),
            ema=self.ema.state_dict(),
            optimizer=self.optimizer,
            rng={"generator": self.gen.get_state(), "torch": torch.get_rng_state()},
            state=self._state(),
        )

    def _sampling_estimate(self, step_seconds: float) -> float:
        """Seconds a final sample grid will take (measured, else ~1/3 of a step per forward)."""
        if not self.opt.sample_every:
            return 0.0
        if self._sample_seconds is not None:
            return self._sample_seconds
        share = self.opt.sample_images / self.cfg.batch_size
        return self.opt.sample_steps * share * step_seconds / 3

    def write_samples(self) -> Path:
        """Sample a grid with the EMA weights into ``samples/step_XXXXXXX.png`` and ``latest``."""
        if self._sample_unet is None:
            self._sample_unet = build_unet(self.cfg).to(self.device)
        self.ema.copy_to(self._sample_unet)
        t0 = time.monotonic()
        imgs = generate(
            self._sample_unet,
            dict(self.scheduler.config),
            self.opt.sample_images,
            self.opt.sample_steps,
            seed=0,
            bf16=self.use_bf16,
        )
        path = save_grid(imgs, self.run_dir / "samples" / f"step_{self.step:07d}.png")
        save_grid(imgs, self.run_dir / "samples" / "latest.png")
        self._sample_seconds = time.monotonic() - t0
        return path

    # ----------------------------------------------------------------- loop
    def _next_images(self) -> torch.Tensor:
        """The next batch as uint8 ``(B, S, S, 3)`` on the device (advances the order)."""
        if isinstance(self.order, MixedOrder):
            return torch.from_numpy(self.order.next_batch()).to(self.device)
        assert self.images is not None
        idx = torch.from_numpy(self.order.next_indices()).to(self.device)
        return self.images[idx]

    def train_step(self) -> float:
        """One optimiser step; returns the plain (unweighted) MSE, the logged loss.

        With ``loss_weighting="min_snr"`` the gradient comes from the weighted loss, but the
        logged value stays the plain MSE, comparable with ``mse`` runs.
        """
        cfg, gen = self.cfg, self.gen
        x = self._next_images().permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        b = x.shape[0]
        if cfg.flips:
            hflip = (torch.rand(b, generator=gen) < 0.5).to(self.device)[:, None, None, None]
            vflip = (torch.rand(b, generator=gen) < 0.5).to(self.device)[:, None, None, None]
            x = torch.where(hflip, x.flip(-1), x)
            x = torch.where(vflip, x.flip(-2), x)
        if cfg.rot90:  # after the flips, so the default draws keep their order
            x = _rotate90(x, torch.randint(0, 4, (b,), generator=gen).to(self.device))
        noise = torch.randn(x.shape, generator=gen).to(self.device)
        t = sample_timesteps(cfg, b, gen).to(self.device)
        noisy = self.scheduler.add_noise(x, noise, t)
        target = (
            noise if cfg.prediction_type == "epsilon" else self.scheduler.get_velocity(x, noise, t)
        )
        for group in self.optimizer.param_groups:
            group["lr"] = _lr_at(cfg, self.step, self.warm_start_step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            pred = self.unet(noisy, t).sample
        if cfg.loss_weighting == "mse":
            loss = mse = F.mse_loss(pred.float(), target)
        else:
            per_image = (pred.float() - target).pow(2).mean(dim=(1, 2, 3))
            weight = min_snr_weights(
                self.scheduler.alphas_cumprod, t, cfg.min_snr_gamma, cfg.prediction_type
            )
            loss, mse = (weight * per_image).mean(), per_image.detach().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self._last_decay = self.ema.update(self.unet, self.step)
        self.step += 1
        self.totals["images_seen"] = self.totals.get("images_seen", 0) + b
        return float(mse.detach())

    def run(self, stop_requested: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Train until a stop condition; checkpoint and sample at the end. Returns a summary.

        A run that fails (an exception, a second Ctrl-C) before the run folder holds any
        checkpoint removes what this start created (config.json, loss.csv, samples, the folder),
        so a rerun starts clean instead of meeting a half-made run.
        """
        samples = self.run_dir / "samples"
        created = [*self._created, *([] if samples.exists() else [samples])]
        try:
            return self._train(stop_requested)
        except BaseException:
            self._discard_unsaved(created)
            raise

    def _discard_unsaved(self, created: list[Path]) -> None:
        if any((self.run_dir / name).exists() for name in (CKPT, CKPT + ".old")):
            return  # the run has a checkpoint: keep everything, a rerun resumes it
        for path in reversed(created):
            if path == self.run_dir:
                try:
                    path.rmdir()  # only when empty: never delete what others put there
                except OSError:
                    pass
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _train(self, stop_requested: Callable[[], bool] | None) -> dict[str, Any]:
        from tqdm.auto import tqdm

        opt = self.opt
        start = self._last_save = time.monotonic()
        self._last_cpu = time.process_time()
        self._run_entry = {
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hardware": hardware_name(self.device),
            "command": opt.command,
            "bf16": self.use_bf16,
            "start_step": self.step,
            "end_step": self.step,
            "wall_seconds": 0.0,
            "cpu_seconds": 0.0,
        }
        if self.pool is not None:  # the run's history names its data
            keys = ("kind", "name", "count", "weight", "scale", "crops")
            self._run_entry["sources"] = [{k: r.get(k) for k in keys} for r in self.pool.records()]
        self.totals.setdefault("runs", []).append(self._run_entry)
        first_step, saved_step, reason = self.step, self.step, "max_steps"
        target = opt.max_steps
        if opt.steps is not None:
            target = min(target or 10**12, self.step + opt.steps)
        log_path = self.run_dir / LOSS_FILE
        new_log = not log_path.is_file()
        log = log_path.open("a", newline="")
        writer = csv.writer(log)
        if new_log:
            writer.writerow(LOSS_COLUMNS)
        bar = tqdm(
            total=target,
            initial=self.step,
            disable=not opt.progress,
            unit="step",
            dynamic_ncols=True,
            mininterval=2.0,
        )
        step_times: list[float] = []
        smooth = self.last_loss
        try:
            while True:
                if target is not None and self.step >= target:
                    break
                if stop_requested is not None and stop_requested():
                    reason = "interrupted"
                    break
                if opt.max_minutes is not None and step_times:
                    mean = sum(step_times[-20:]) / len(step_times[-20:])
                    reserve = 2 * mean + self._sampling_estimate(mean)
                    if time.monotonic() - start + reserve > opt.max_minutes * 60:
                        reason = "max_minutes"
                        break
                t0 = time.monotonic()
                loss = self.train_step()
                step_times.append(time.monotonic() - t0)
                self.last_loss = loss
                smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
                recent = step_times[-20:]
                ips = self.cfg.batch_size * len(recent) / sum(recent)
                writer.writerow(
                    [
                        self.step,
                        self.order.epoch,
                        f"{loss:.6f}",
                        f"{_lr_at(self.cfg, self.step - 1, self.warm_start_step):.3e}",
                        f"{self._last_decay:.6f}",
                        f"{ips:.2f}",
                        f"{time.monotonic() - start:.1f}",
                    ]
                )
                log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{smooth:.4f}", img_s=f"{ips:.1f}", epoch=self.order.epoch)
                due = opt.ckpt_minutes is not None and (
                    time.monotonic() - self._last_save >= 60 * opt.ckpt_minutes
                )
                if due or (opt.ckpt_every and self.step % opt.ckpt_every == 0):
                    self.save()
                    saved_step = self.step
                if opt.sample_every and self.step % opt.sample_every == 0:
                    self.write_samples()
        finally:
            bar.close()
            log.close()
        if self.step != saved_step or self.step == first_step:
            self.save()
        final_grid = reason != "interrupted" and self.step > first_step
        if opt.sample_every and self.step % opt.sample_every != 0 and final_grid:
            self.write_samples()
        trained = step_times
        return {
            "step": self.step,
            "steps_this_run": self.step - first_step,
            "images_seen": self.totals["images_seen"],
            "last_loss": self.last_loss,
            "img_per_s": (self.cfg.batch_size * len(trained) / sum(trained)) if trained else 0.0,
            "seconds": time.monotonic() - start,
            "stopped_by": reason,
        }
