"""Download with checksum and safe zip extraction; both write to a temporary name and rename.

Only :mod:`urllib` is used (``https://``, ``http://`` and ``file://`` URLs), so tests point the
URL at a local file and run the same code path offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from satdifuser._atomic_io import atomic_path
from satdifuser._typing import PathLike
from satdifuser.errors import DataFormatError, DatasetNotFoundError

_CHUNK = 1 << 20


def file_digest(path: PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_digest(path: PathLike, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise :class:`DataFormatError` when ``path`` does not match the given checksum(s)."""
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = file_digest(path, algo)
            if got.lower() != want.lower():
                raise DataFormatError(
                    f"{path} has {algo} {got}, expected {want}; the file is incomplete or "
                    "altered, delete it and download again"
                )


def download_url(
    url: str, dest: PathLike, md5: str | None = None, sha256: str | None = None
) -> Path:
    """Download ``url`` to ``dest`` and verify its checksum; nothing is left behind on failure.

    Raises:
        DatasetNotFoundError: the URL cannot be fetched.
        DataFormatError: the checksum does not match.
    """
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    shutil.copyfileobj(resp, out, _CHUNK)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise DatasetNotFoundError(
                    f"cannot download {url}: {exc}; check the network, or download the file "
                    f"by hand to {dest}"
                ) from None
        check_digest(tmp, md5=md5, sha256=sha256)
    return dest


def extract_zip(archive: PathLike, dest_dir: PathLike) -> list[Path]:
    """Extract ``archive`` into ``dest_dir``; returns the top-level entries created.

    Members with absolute paths or ``..`` are refused. The archive is unpacked into a temporary
    folder inside ``dest_dir`` and its top-level entries are renamed into place, so an
    interrupted extraction never leaves a half-filled dataset folder.

    Raises:
        DataFormatError: the archive is corrupt or has unsafe member names.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract.", dir=dest_dir))
    created: list[Path] = []
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    parts = Path(name).parts
                    if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
                        raise DataFormatError(
                            f"{archive} holds an unsafe member name {name!r}; refusing to extract"
                        )
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataFormatError(
                f"cannot extract {archive}: {exc}; delete it and download again"
            ) from None
        for entry in sorted(tmp.iterdir()):
            target = dest_dir / entry.name
            if target.exists():
                continue  # keep what is already there (e.g. a finished earlier extraction)
            os.replace(entry, target)
            created.append(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return created


__all__ = ["check_digest", "download_url", "extract_zip", "file_digest"]
