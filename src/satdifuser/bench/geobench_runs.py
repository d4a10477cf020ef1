"""The runs of ``satdifuser bench geobench``: model specs, partitions, recipe and results.

A run is one (task, partition, seed, model); its ``result.json`` (``RESULT``) is complete only when
its ``config_hash`` matches the run's configuration (``read_result``), which is how a killed sweep
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satdifuser.errors import ConfigError

FUSIONS = {"concat": "concat", "gw": "global_weighted", "global_weighted": "global_weighted",
           "lw": "local_weighted", "local_weighted": "local_weighted", "moe": "moe"}  # fmt: skip
SHORT = {"concat": "concat", "global_weighted": "gw", "local_weighted": "lw", "moe": "moe"}
PRIMARY = {"classification": "overall_accuracy", "multilabel": "f1_micro",
           "segmentation": "miou"}  # fmt: skip
DEFAULT_BACKBONE = "satdifuser-eurosat-tiny"
DEFAULT_MODELS = (f"satdifuser:{DEFAULT_BACKBONE}:gw,efficientnet_lite0,"
                  f"random:{DEFAULT_BACKBONE}:gw")  # fmt: skip
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


__all__ = ["DEFAULT_BACKBONE", "DEFAULT_MODELS", "FUSIONS", "PRIMARY", "RESULT", "SHORT",
           "ModelSpec", "Recipe", "Run", "parse_model", "parse_partition", "partition_order",
           "read_result"]  # fmt: skip
