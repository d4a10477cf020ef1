"""``check_writable_folder``: one check of output folders for the cli, ``bench`` and benchmarks."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from satdifuser.errors import ConfigError
from satdifuser.features import atomic_io
from satdifuser.features.atomic_io import check_writable_folder

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_cli_keeps_the_name_importable() -> None:
    from satdifuser.cli.run_folder import check_writable_folder as from_cli

    assert from_cli is check_writable_folder


def test_a_missing_folder_passes_and_is_created_only_on_request(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    check_writable_folder(out, "--out")
    assert not (tmp_path / "a").exists()
    check_writable_folder(out, "--out", create=True)
    assert out.is_dir()


def test_a_file_on_the_path_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as err:
        check_writable_folder(tmp_path / "file" / "cache", "--cache-dir", create=True)
    assert str(err.value) == (
        f"--cache-dir={str(tmp_path / 'file' / 'cache')!r}: {tmp_path / 'file'} is a file, "
        "not a folder; choose a folder path for --cache-dir"
    )
    assert (tmp_path / "file").read_text() == "x"


def test_a_broken_symbolic_link_is_named(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match=r"link is a broken symbolic link; remove it or choose"):
        check_writable_folder(tmp_path / "link" / "run", "--run-dir", create=True)


def test_a_read_only_folder_is_refused_before_anything_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.access
    monkeypatch.setattr(
        atomic_io.os, "access", lambda p, m: False if Path(p) == tmp_path else real(p, m)
    )
    with pytest.raises(ConfigError, match=r"folder .* is not writable .*; choose a writable --run"):
        check_writable_folder(tmp_path / "run", "--run", create=True)
    assert not (tmp_path / "run").exists()


def test_a_failed_mkdir_is_one_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    with pytest.raises(ConfigError, match=r"--out=.*: cannot create the folder \(No space left"):
        check_writable_folder(tmp_path / "new", "--out", create=True)


def test_predict_large_refuses_an_unusable_workdir_before_loading_anything(
    tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("predict_large", BENCHMARKS / "predict_large.py")
    assert spec is not None and spec.loader is not None
    predict_large = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict_large)
    (tmp_path / "file").write_text("x")
    argv = ["--model", str(tmp_path / "absent-model"), "--workdir", str(tmp_path / "file" / "w")]
    with pytest.raises(ConfigError, match=r"--workdir=.* is a file, not a folder"):
        predict_large.main(argv)
