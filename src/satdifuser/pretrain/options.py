"""Per-invocation options of a pre-training run (not part of the training trajectory)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from satdifuser.errors import ConfigError
from satdifuser.pretrain.config import PretrainConfig
from satdifuser.pretrain.hardware import check_device


@dataclass
class RunOptions:
    """Per-invocation settings (not part of the training trajectory).

    Args:
        max_steps: Stop when the run's total step count reaches this.
        steps: Stop after this many steps in this invocation.
        max_minutes: Stop cleanly (with a checkpoint) before this wall-clock budget is spent.
        ckpt_every: Checkpoint every N steps (and always at the end).
        ckpt_minutes: Also checkpoint when this many minutes passed since the last one.
        sample_every: Write a sample grid every N steps (0 disables; one is written at the end).
        sample_images: Images per grid.
        sample_steps: DDIM steps per grid.
        device: Torch device.
        progress: Show a tqdm bar.
        command: The command line, recorded in the run's history.

    Raises:
        ConfigError: A count or duration is out of range, or ``device`` is unknown or absent
            here (checked on construction, before any run folder is touched).
    """

    max_steps: int | None = None
    steps: int | None = None
    max_minutes: float | None = None
    ckpt_every: int = 100
    ckpt_minutes: float | None = 10.0
    sample_every: int = 500
    sample_images: int = 16
    sample_steps: int = 50
    device: str = "cpu"
    progress: bool = True
    command: str = ""

    def __post_init__(self) -> None:
        def bad(name: str, value: object, expected: str) -> ConfigError:
            flag = "--" + name.replace("_", "-")
            return ConfigError(f"{flag}={value!r} is invalid: expected {expected}")

        def count(name: str, low: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise bad(name, value, f"an integer >= {low}")

        def minutes(name: str, positive: bool) -> None:
            value = getattr(self, name)
            if value is None:
                return
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise bad(name, value, "a number of minutes " + ("> 0" if positive else ">= 0"))

        count("max_steps", 1, optional=True)
        count("steps", 1, optional=True)
        minutes("max_minutes", positive=True)
        minutes("ckpt_minutes", positive=False)
        for name in ("ckpt_every", "sample_every"):
            count(name, 0)
        for name in ("sample_images", "sample_steps"):
            count(name, 1)
        check_device(self.device)

    def check_against(self, config: PretrainConfig) -> None:
        """Refuse options that contradict the run's config (DDIM steps beyond the schedule)."""
        if self.sample_every and self.sample_steps > config.num_train_timesteps:
            raise ConfigError(
                f"--sample-steps={self.sample_steps} exceeds the {config.num_train_timesteps} "
                "training timesteps; lower --sample-steps"
            )
