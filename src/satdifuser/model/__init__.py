"""The trained product: one model object from ``fit`` to ``predict``.

    model = SatDiFuserModel.from_pretrained("runs/eurosat/model")
    labels = model.predict(images)            # (B,) class ids for (B, 3, H, W) in [0, 1]
"""

from __future__ import annotations

from satdifuser.model.core import DEFAULT_INPUT, TASK_TYPES, SatDiFuserModel
from satdifuser.model.pretrained import load_model, read_config, save_model
from satdifuser.model.standardize import ChannelStandardizer

__all__ = [
    "DEFAULT_INPUT",
    "TASK_TYPES",
    "ChannelStandardizer",
    "SatDiFuserModel",
    "load_model",
    "read_config",
    "save_model",
]
