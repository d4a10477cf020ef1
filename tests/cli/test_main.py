from __future__ import annotations

import pytest

from satdifuser.cli.main import main


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ["extract", "fit", "validate", "test", "pretrain", "bench", "demo", "data"]:
        assert name in out


def test_unknown_subcommand_fails_with_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fitt"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'fitt'" in err and "did you mean 'fit'" in err


def test_version_prints_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "satdifuser" in capsys.readouterr().out
