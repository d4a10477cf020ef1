"""``satdifuser list backbones``."""

from __future__ import annotations

import pytest

from satdifuser.cli.main import main


def test_list_backbones_prints_names_and_summaries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    for name in ("tiny-sd", "tiny-pixel", "tiny-diffusionsat", "sd21", "diffusionsat-256"):
        assert f"  {name} " in out
    assert "random weights" in out


def test_list_unknown_kind_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "colours"]) == 2
    assert "cannot list 'colours'" in capsys.readouterr().err
