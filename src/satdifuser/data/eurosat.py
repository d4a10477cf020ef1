"""EuroSAT RGB: Sentinel-2 land-cover classification, 64 x 64 JPEG, 10 classes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch.utils.data import Dataset

from satdifuser._typing import PathLike, Sample
from satdifuser.data.download import check_digest, download_url, extract_zip
from satdifuser.data.image_io import image_size, read_image
from satdifuser.data.meta import make_meta
from satdifuser.data.plotting import plot_sample
from satdifuser.data.roots import resolve_data_root
from satdifuser.data.splits import (
    apply_budget,
    class_of,
    has_class_images,
    resolve_class_split,
    select_split,
)
from satdifuser.data.transforms import UniformSizeCheck
from satdifuser.errors import DataFormatError, DatasetNotFoundError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EuroSATSplit = Literal["train", "val", "test", "unlabeled", "all"]


class EuroSAT(Dataset[Sample]):
    """EuroSAT RGB (Helber et al.), read from its folder of JPEGs.

    Data card:

    - Source: https://github.com/phelber/EuroSAT; Sentinel-2 L1C bands B4, B3, B2 at 10 m,
      27,000 images of 64 x 64 px, 2,000-3,000 per class. Licence MIT.
    - Format: ``<Class>/<Class>_<n>.jpg`` under the image folder, which is the data root
      itself, ``<root>/eurosat_rgb``, or the official zip's ``<root>/2750`` (or the Zenodo
      mirror's ``<root>/EuroSAT_RGB``).
    - Classes: AnnualCrop, Forest, HerbaceousVegetation, Highway, Industrial, Pasture,
      PermanentCrop, Residential, River, SeaLake (any ``<Class>/`` folders are read).
    - Splits: a JSON split file (keys ``classes``, ``train``, ``val``, ``test``, ``unlabeled``;
      paths relative to the image folder), by default ``eurosat_rgb_split.json`` beside or inside
      the image folder; else split folders (``train/<Class>/``, ``val/``, ``test/`` in the image
      folder: those folders are the splits); else
      :func:`satdifuser.data.splits.default_split`, announced by one warning line.
    - Download: ``download=True`` fetches :attr:`url` (the official ``EuroSAT.zip``, 90 MB)
      into the data root, checks :attr:`md5`, and unpacks ``2750/``.
    - Citation: P. Helber, B. Bischke, A. Dengel, D. Borth, "EuroSAT: A Novel Dataset and Deep
      Learning Benchmark for Land Use and Land Cover Classification", IEEE JSTARS 2019.

    Samples: ``image`` (3, H, W) float32 RGB in [0, 1] (8-bit files / 255, 16-bit PNGs / 65535
    or by their significant bits), ``label`` int64 scalar, ``meta`` (7,) with GSD 10 m and NaN
    elsewhere (the JPEGs carry no location or date), ``id`` (the path relative to the image
    folder). Every image must have the size of the first one (so they can be batched), unless
    ``transforms`` resize them (:class:`~satdifuser.data.transforms.Resize`, ``image_size`` of
    the data module); another size raises :class:`~satdifuser.errors.DataFormatError` naming
    the file.

    Args:
        root: Data root (see :func:`satdifuser.data.roots.resolve_data_root`).
        split: ``train``, ``val``, ``test``, ``unlabeled`` or ``all`` (every image found).
        budget: Label budget: keep the first ``budget`` images of each class's block of the
            split (None keeps all).
        split_file: JSON split file; None looks for :attr:`split_filename` next to and inside
            the image folder, then falls back to the default split.
        download: Download and unpack the official zip when the images are missing.
        transforms: Callable applied to each sample dict.
        check_sizes: Refuse an image whose size differs from the first image's (they could
            not be batched); False keeps every image's own size (batch size 1, inspection).

    Raises:
        DatasetNotFoundError: images or split file missing (and no download asked for).
        DataFormatError: split file malformed or empty for ``split``, or it names a class that
            is not in ``classes`` or a file that does not exist; when a sample is read: an
            image of another size than the first (without resizing ``transforms``).
        ConfigError: unknown split or invalid budget.

    .. versionadded:: 0.1
    """

    url: ClassVar[str] = "https://madm.dfki.de/files/sentinel/EuroSAT.zip"
    filename: ClassVar[str] = "EuroSAT.zip"
    md5: ClassVar[str] = "c8fa014336c82ac7804f0398fcb19387"
    sha256: ClassVar[str | None] = None
    folder_name: ClassVar[str] = "eurosat_rgb"
    image_dirs: ClassVar[tuple[str, ...]] = (
        "eurosat_rgb", "2750", "eurosat_rgb/2750", "EuroSAT_RGB", "eurosat_rgb/EuroSAT_RGB", "",
    )  # fmt: skip
    split_filename: ClassVar[str] = "eurosat_rgb_split.json"
    suffixes: ClassVar[tuple[str, ...]] = (".jpg", ".jpeg", ".png")
    gsd: ClassVar[float] = 10.0

    def __init__(
        self,
        root: PathLike | None = None,
        split: EuroSATSplit = "train",
        budget: int | None = None,
        split_file: PathLike | None = None,
        download: bool = False,
        transforms: Callable[[Sample], Sample] | None = None,
        check_sizes: bool = True,
    ) -> None:
        self.root = resolve_data_root(root, self.folder_name)
        self.split = split
        self.budget = budget
        self.download = download
        self.transforms, self.check_sizes = transforms, check_sizes
        self.image_dir = self._verify()
        self.split_file = self._find_split_file(split_file)
        found = resolve_class_split(
            self.image_dir, self.suffixes, self.split_file, split, type(self).__name__
        )
        all_files, data, source = found.all_files, found.data, found.source
        self.split_source, self.split_kind, self.split_counts = source, found.kind, found.counts()
        self.classes: list[str] = list(
            data.get("classes") or sorted({class_of(f) for f in all_files})
        )
        files = select_split(data, split, source, all_files if split == "all" else ())
        if budget is not None:
            files = apply_budget(files, budget, f"split {split!r} of {source}")
        self._check(files, set(all_files), source)
        index = {c: i for i, c in enumerate(self.classes)}
        self.files: list[str] = files
        self.targets: list[int] = [index[class_of(f)] for f in files]
        self._size_check = UniformSizeCheck(self.image_dir / files[0], image_size)

    @property
    def num_classes(self) -> int:
        """Number of classes (label ids are ``0 .. num_classes - 1``)."""
        return len(self.classes)

    def _find_image_dir(self) -> Path | None:
        for sub in self.image_dirs:
            d = self.root / sub if sub else self.root
            if has_class_images(d, self.suffixes):
                return d
        return None

    def _verify(self) -> Path:
        """Images present: done; archive present: extract; download allowed: fetch; else raise."""
        if (found := self._find_image_dir()) is not None:
            return found
        archive = self.root / self.filename
        if not archive.is_file() and self.download:
            download_url(self.url, archive, md5=self.md5, sha256=self.sha256)
        if archive.is_file():
            check_digest(archive, md5=self.md5, sha256=self.sha256)
            extract_zip(archive, self.root)
            if (found := self._find_image_dir()) is not None:
                return found
            raise DataFormatError(
                f"{archive} unpacked but holds no <Class>/*.jpg folders; delete it and retry"
            )
        looked = ", ".join(str(self.root / s) if s else str(self.root) for s in self.image_dirs)
        raise DatasetNotFoundError(
            f"no EuroSAT images under root={str(self.root)!r} (looked for <Class>/*.jpg and "
            f"train/<Class>/*.jpg in "
            f"{looked} and for the archive {archive}) and download=False; set root to the folder "
            "holding eurosat_rgb/ or 2750/, or pass download=True"
        )

    def _find_split_file(self, split_file: PathLike | None) -> Path | None:
        if split_file is not None:
            p = Path(split_file).expanduser()
            if not p.is_file():
                raise DatasetNotFoundError(
                    f"split file {p} does not exist; pass split_file= an existing JSON file "
                    "or split_file=None for the default split"
                )
            return p
        for cand in (self.image_dir.parent / self.split_filename,
                     self.image_dir / self.split_filename,
                     self.root / self.split_filename):  # fmt: skip
            if cand.is_file():
                return cand
        return None

    def _check(self, files: list[str], present: set[str], source: str) -> None:
        known = set(self.classes)
        bad = sorted({class_of(f) for f in files} - known)
        if bad:
            raise DataFormatError(
                f"{source} lists images of class {bad[0]!r}, which is not among the "
                f"{len(known)} classes {sorted(known)}; fix the split file's classes"
            )
        missing = [f for f in files if f not in present]
        if missing:
            raise DataFormatError(
                f"{source} lists {len(missing)} image(s) missing under {self.image_dir} "
                f"(first: {missing[0]}); pass the split file that matches this folder"
            )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        rel = self.files[index]
        image = read_image(self.image_dir / rel)
        if self.check_sizes:
            self._size_check(image.shape[-2:], self.image_dir / rel, self.transforms)
        sample: Sample = {
            "image": image,
            "label": torch.tensor(self.targets[index], dtype=torch.int64),
            "meta": make_meta(gsd=self.gsd),
            "id": rel,
        }
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def class_counts(self) -> dict[str, int]:
        """Images per class in this split (every class listed, zero included)."""
        counts = dict.fromkeys(self.classes, 0)
        for t in self.targets:
            counts[self.classes[t]] += 1
        return counts

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Figure of one sample (with ``prediction`` when the key is present)."""
        return plot_sample(sample, self.classes, show_titles=show_titles, suptitle=suptitle)


__all__ = ["EuroSAT", "EuroSATSplit"]
