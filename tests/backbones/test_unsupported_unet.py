"""A UNet config that needs inputs satdifuser does not pass fails when built, naming them.

Before, an SDXL-style config was built and then failed in the first forward pass with diffusers'
``TypeError: argument of type 'NoneType' is not iterable``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satdifuser.backbones import DiffusionBackbone
from satdifuser.backbones.loading import build_unet, unsupported_parts
from satdifuser.backbones.presets import TINY_UNET, TINY_VAE, build_random
from satdifuser.errors import UnsupportedArchitectureError

SDXL_LIKE = {
    **TINY_UNET,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 8 * 6 + 32,
    "transformer_layers_per_block": [1, 2, 2],
}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({}, "addition_embed_type='text_time' (SDXL-style"),
        ({"addition_embed_type": None, "encoder_hid_dim": 16}, "encoder_hid_dim_type=None, "
         "encoder_hid_dim=16"),
        ({"addition_embed_type": None, "num_class_embeds": 1000}, "num_class_embeds=1000"),
        ({"addition_embed_type": None, "in_channels": 9}, "in_channels=9 > out_channels=4"),
    ],
)  # fmt: skip
def test_unsupported_unet_config_names_what_is_unsupported(
    overrides: dict[str, object], named: str
) -> None:
    config = {**SDXL_LIKE, **overrides}
    with pytest.raises(UnsupportedArchitectureError, match="unsupported UNet architecture") as info:
        build_unet(config, None, "sdxl/unet")
    message = str(info.value)
    assert message.startswith("sdxl/unet: ") and named in message
    assert "\n" not in message and "UNet2DModel" in message  # says what is supported


def test_sdxl_like_pipeline_folder_fails_on_load_not_in_forward(tmp_path: Path) -> None:
    bb = build_random("plain", TINY_UNET, TINY_VAE, "epsilon", 0, 32)
    folder = bb.save_pretrained(tmp_path / "sdxl")
    cfg_path = Path(folder) / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["addition_embed_type"] = "text_time"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitectureError, match="addition_embed_type='text_time'"):
        DiffusionBackbone.from_pretrained(folder)


def test_supported_configs_report_nothing() -> None:
    assert unsupported_parts(TINY_UNET, metadata=False) == []
    # DiffusionSat: metadata class labels are passed, so a class embedding is fine there
    assert unsupported_parts({**TINY_UNET, "class_embed_type": "identity"}, metadata=True) == []
    # learned-variance pixel UNets predict more channels than they take
    assert unsupported_parts({"in_channels": 3, "out_channels": 6}, metadata=False) == []
