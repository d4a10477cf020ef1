from __future__ import annotations

import sys

import pytest

from satdifuser.cli.main import main
from satdifuser.errors import ConfigError, RunInterruptedError

cli_main = sys.modules["satdifuser.cli.main"]  # the package re-exports main(), hiding the module


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


class _Raises:
    """A stand-in subcommand module whose ``run`` raises ``exc``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def run(self, argv: list[str]) -> int:
        raise self.exc


def _with_cause(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as caught:
        return caught


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (RuntimeError("CUDA error:\n  device-side assert"),
         "satdifuser data: error: RuntimeError: CUDA error: device-side assert; "
         "rerun with --debug for the traceback"),
        (FileExistsError(17, "File exists", "/runs/x"),
         "satdifuser data: error: FileExistsError: [Errno 17] File exists: '/runs/x'; "
         "rerun with --debug for the traceback"),
        (PermissionError(13, "Permission denied", "/ro/out"),
         "satdifuser data: error: PermissionError: [Errno 13] Permission denied: '/ro/out'; "
         "rerun with --debug for the traceback"),
    ],
)  # fmt: skip
def test_foreign_exception_is_one_line_with_the_debug_hint(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: Exception,
    line: str,
) -> None:
    monkeypatch.setattr(cli_main, "_load", lambda name: _Raises(exc))
    assert main(["data", "inspect", "x"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [line]


def test_own_error_inside_a_library_error_is_printed_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrapped = _with_cause(ValueError("Does not validate\n  Subtypes: ..."), ConfigError("k=1 bad"))
    monkeypatch.setattr(cli_main, "_load", lambda name: _Raises(wrapped))
    assert main(["data"]) == 2
    assert capsys.readouterr().err.splitlines() == ["satdifuser data: error: ConfigError: k=1 bad"]


def test_interrupted_run_uses_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "_load", lambda name: _Raises(RunInterruptedError("stopped")))
    assert main(["data"]) == 143
    assert "RunInterruptedError: stopped" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_subcommand_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    seen: list[list[str]] = []

    class Module:
        def run(self, argv: list[str]) -> int:
            seen.append(argv)
            raise KeyError("missing")

    monkeypatch.setattr(cli_main, "_load", lambda name: Module())
    args = ["--debug", "data", "x"] if where == "before" else ["data", "x", "--debug"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.splitlines()[-1].startswith("satdifuser data: error: KeyError")
    assert seen == [["x"]]  # --debug is not passed on to the subcommand


def test_a_closed_pipe_is_not_an_error() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        f"{sys.executable} -m satdifuser list | head -c 10", shell=True, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "" and len(proc.stdout) == 10
