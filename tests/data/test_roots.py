from __future__ import annotations

from pathlib import Path

import pytest

from satdifuser.data import roots
from satdifuser.data.roots import resolve_data_root
from satdifuser.errors import DatasetNotFoundError


def test_argument_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATDIFUSER_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg", "eurosat_rgb") == tmp_path / "arg"
    assert resolve_data_root(None, "eurosat_rgb") == tmp_path / "env"


def test_shared_data_beside_the_project_is_found_from_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shared" / "data" / "eurosat_rgb").mkdir(parents=True)
    (tmp_path / "project" / "sub").mkdir(parents=True)
    monkeypatch.delenv("SATDIFUSER_DATA", raising=False)
    monkeypatch.chdir(tmp_path / "project" / "sub")
    assert resolve_data_root(None, "eurosat_rgb") == (tmp_path / "shared" / "data").resolve()


def test_shared_data_without_the_dataset_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.delenv("SATDIFUSER_DATA", raising=False)
    monkeypatch.setattr(roots, "shared_data_candidates", lambda: [tmp_path / "shared" / "data"])
    with pytest.raises(DatasetNotFoundError) as err:
        resolve_data_root(None, "dubai_aerial")
    msg = str(err.value)
    assert "no data root for 'dubai_aerial'" in msg and str(tmp_path / "shared" / "data") in msg
    assert "--data DIR" in msg and "SATDIFUSER_DATA=DIR" in msg and "download=True" in msg
    assert "\n" not in msg
    assert resolve_data_root(None) == tmp_path / "shared" / "data"  # no name: any shared/data
