"""Damaged weights in a pipeline folder are one error naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from satdifuser.backbones import create_backbone
from satdifuser.errors import CheckpointError


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"\x10\x00",
        b"\xff\xff\xff\xff\xff\xff\x00\x00{}",
        b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!",
    ],
    ids=["empty", "truncated", "huge-header", "garbage"],
)
def test_damaged_unet_weights_name_the_file(tmp_path: Path, damage: bytes) -> None:
    folder = create_backbone("tiny-pixel").save_pretrained(tmp_path / "pipe")
    weights = next((folder / "unet").glob("*.safetensors"))
    weights.write_bytes(damage)
    with pytest.raises(CheckpointError, match=f"{weights.name} is not a readable safetensors"):
        create_backbone(str(folder))
