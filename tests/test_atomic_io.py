"""One atomic-write implementation (``satdifuser._atomic_io``), whatever module a caller imports it
from: temporary sibling, fsync, rename; the temporary file removed on error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from satdifuser import _atomic_io
from satdifuser.features import atomic_io as features_atomic
from satdifuser.viz import atomic as viz_atomic

WRITERS = {
    "viz.bytes": lambda p: viz_atomic.atomic_write_bytes(p, b"new"),
    "viz.json": lambda p: viz_atomic.atomic_write_json(p, {"a": 1}),
    "features.bytes": lambda p: features_atomic.atomic_write_bytes(p, b"new"),
    "features.json": lambda p: features_atomic.atomic_write_json(p, {"a": 1}),
}


@pytest.mark.parametrize("name", ["atomic_write_bytes", "atomic_write_json", "atomic_write_text"])
def test_viz_and_features_reexport_the_one_implementation(name: str) -> None:
    one = getattr(_atomic_io, name)
    assert getattr(viz_atomic, name) is one
    assert getattr(features_atomic, name) is one
    assert features_atomic.TMP_MARK == _atomic_io.TMP_MARK


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_write_goes_through_an_fsynced_marked_sibling(
    writer: str, tmp_path: Path, fs_events: list[tuple[str, object]]
) -> None:
    events = fs_events
    target = tmp_path / "out.json"
    WRITERS[writer](target)
    kinds = [k for k, _ in events]
    assert "replace" in kinds and "fsync" in kinds[: kinds.index("replace")]
    src, dst = next(v for k, v in events if k == "replace")  # type: ignore[misc]
    assert dst == target and src.parent == target.parent
    # a killed writer's leftover is recognised by the cache's cleanup (same name scheme)
    assert src.name.startswith(target.name + _atomic_io.TMP_MARK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_failed_write_keeps_the_old_file_and_removes_the_temporary(
    writer: str, tmp_path: Path, disk_full_on_rename: None
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="No space"):
        WRITERS[writer](target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize(
    "write", [viz_atomic.atomic_write_bytes, features_atomic.atomic_write_bytes]
)
def test_written_files_get_the_usual_permissions(
    write: Callable[[Path, bytes], object], tmp_path: Path
) -> None:
    umask = os.umask(0o022)
    try:
        write(tmp_path / "sub" / "f.bin", b"x")  # parent folders are created
    finally:
        os.umask(umask)
    assert (tmp_path / "sub" / "f.bin").stat().st_mode & 0o777 == 0o644


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    left = _atomic_io.tmp_name(tmp_path / "index.json")
    left.write_bytes(b"partial")
    (tmp_path / "keep.json").write_bytes(b"{}")
    assert _atomic_io.remove_tmp_files(tmp_path, "index.json") == [left]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_atomic_path_hands_out_a_marked_sibling_and_renames_it_on_success(
    tmp_path: Path, fs_events: list[tuple[str, object]]
) -> None:
    events = fs_events
    target = tmp_path / "sub" / "grid.png"  # parent folders are created
    with _atomic_io.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith("grid.png" + _atomic_io.TMP_MARK)
        assert tmp.is_file() and not target.exists()  # the name is reserved, nothing published yet
        tmp.write_bytes(b"png")  # a library writing to the path it was given
    assert target.read_bytes() == b"png"
    assert [p.name for p in target.parent.iterdir()] == ["grid.png"]
    kinds = [k for k, _ in events]
    assert kinds.index("fsync") < kinds.index("replace")
    assert ("replace", (tmp, target)) in events


def test_atomic_path_error_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer died"), _atomic_io.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_atomic_path_failed_rename_removes_the_temporary(
    tmp_path: Path, disk_full_on_rename: None
) -> None:
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="No space"), _atomic_io.atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_two_pending_writes_get_distinct_names_and_leave_a_fixed_tmp_name_alone(
    tmp_path: Path,
) -> None:
    target = tmp_path / "x.json"
    (tmp_path / "x.json.tmp").write_bytes(b"someone else's")
    a, b = _atomic_io.PendingFile(target), _atomic_io.PendingFile(target)
    assert a.tmp != b.tmp  # two writers of one file do not collide
    a.tmp.write_bytes(b"a")
    b.tmp.write_bytes(b"b")
    a.commit()
    assert target.read_bytes() == b"a"
    b.abort()
    assert target.read_bytes() == b"a" and not b.tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.json.tmp"]
    assert (tmp_path / "x.json.tmp").read_bytes() == b"someone else's"
