"""Image sources of ``satdifuser pretrain``: a typed spec, its parsing, and its record in a run.

A source is one dataset read for pre-training, with its share of the batches:

- ``eurosat``: the ``unlabeled`` pool of ``eurosat_rgb_split.json`` (the default);
- ``image_folder``: JPEG/PNG/... files under ROOT (any depth);
- ``geotiff_folder``: GeoTIFFs under ROOT (three bands, scaled like
  :class:`~satdifuser.data.geotiff_folder.GeoTiffFolder`);
- ``mask_folder``: the images of a :class:`~satdifuser.data.mask_folder.MaskFolder` (labels
  ignored); a ``dubai_aerial`` root is read as :class:`~satdifuser.data.dubai_aerial.DubaiAerial`;
- ``geobench``: the ``train`` split of one GEO-Bench task (RGB bands).

Options (all kinds): ``weight`` (mix share, > 0), ``scale`` (resize factor at load) and ``crops``
(crop sides in loaded pixels; each crop is resized to ``sample_size``; without ``crops`` every
image is resized whole to ``sample_size`` at load). Validation and test images of a benchmark are
never read: see :mod:`satdifuser.pretrain.sources_load`.

On the command line a source is ``KIND[:ROOT][,key=value...]`` with list values joined by ``+``
(``crops=64+128``, ``bands=B04+B03+B02``, ``tiles=1+2+3``); in a YAML file it is a dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from satdifuser._atomic_io import atomic_write_text
from satdifuser.errors import ConfigError, DataFormatError

SOURCES_FILE = "sources.json"
KINDS = ("eurosat", "image_folder", "geotiff_folder", "mask_folder", "geobench")
_COMMON = ("weight", "scale", "crops", "split")
KEYS: dict[str, tuple[str, ...]] = {
    "eurosat": _COMMON,
    "image_folder": _COMMON,
    "geotiff_folder": (*_COMMON, "bands", "range"),
    "mask_folder": (*_COMMON, "tiles"),
    "geobench": (*_COMMON, "bands", "task", "partition"),
}
ALLOWED_SPLIT = {"eurosat": "unlabeled", "geobench": "train"}  # folders: "train"
MIN_CROP = 8
_NOT_COMPARED = ("root", "count")  # data may move between machines; counts are checked by size


@dataclass(frozen=True)
class SourceSpec:
    """One pre-training source (see the module docstring for the kinds and keys)."""

    kind: str
    root: str | None = None
    weight: float = 1.0
    scale: float = 1.0
    crops: tuple[int, ...] | None = None
    split: str | None = None
    bands: tuple[str, ...] | None = None
    range: tuple[float, float] | None = None
    tiles: tuple[int, ...] | None = None
    task: str | None = None
    partition: str | None = None
    origin: str = field(default="--source", compare=False)

    @property
    def label(self) -> str:
        """``kind:root`` as the user wrote it (for messages)."""
        return f"{self.kind}:{self.root}" if self.root else self.kind

    @property
    def is_default(self) -> bool:
        """The EuroSAT unlabeled pool, whole images, as ``satdifuser pretrain`` always read."""
        return (
            self.kind == "eurosat"
            and self.scale == 1.0
            and self.crops is None
            and self.split in (None, "unlabeled")
        )

    def record(self) -> dict[str, Any]:
        """JSON-ready record (``sources.json``): the keys that are set, and the root's name."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.root is not None:
            out["root"] = self.root
            out["name"] = Path(self.root).name
        out["weight"], out["scale"] = self.weight, self.scale
        out["crops"] = list(self.crops) if self.crops else None
        for f in ("bands", "range", "tiles", "task", "partition"):
            value = getattr(self, f)
            if value is not None:
                out[f] = list(value) if isinstance(value, tuple) else value
        return out


def _fail(spec: str, message: str) -> ConfigError:
    return ConfigError(f"source {spec}: {message}")


def _number(spec: str, key: str, text: Any, kind: type) -> Any:
    try:
        if isinstance(text, bool):
            raise ValueError
        return kind(text)
    except (TypeError, ValueError):
        name = "an integer" if kind is int else "a number"
        raise _fail(spec, f"{key}={text!r} is not {name}; fix the value") from None


def _listed(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v for v in value.replace(",", "+").split("+") if v]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def spec_from_dict(data: dict[str, Any], origin: str = "--source") -> SourceSpec:
    """Build and check a :class:`SourceSpec` from a dict (``kind``, ``root`` and option keys).

    Raises:
        ConfigError: unknown kind or key, or a value out of range (one line naming the source).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a source must be a mapping with kind/root, got {data!r}")
    kind = str(data.get("kind", ""))
    root = data.get("root")
    name = f"{kind}:{root}" if root else kind or "(no kind)"
    where = f"{name} ({origin})" if origin != "--source" else name
    if kind not in KINDS:
        raise _fail(where, f"kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    unknown = sorted(set(data) - {"kind", "root", *KEYS[kind]})
    if unknown:
        raise _fail(
            where, f"key {unknown[0]!r} does not apply to {kind}; keys: {', '.join(KEYS[kind])}"
        )
    if root is None and kind != "eurosat":
        raise _fail(where, f"{kind} needs a root folder: write {kind}:ROOT")
    weight = _number(where, "weight", data.get("weight", 1.0), float)
    scale = _number(where, "scale", data.get("scale", 1.0), float)
    if not weight > 0 or weight != weight or weight == float("inf"):
        raise _fail(where, f"weight={weight!r} must be a finite number > 0")
    if not 0 < scale <= 4:
        raise _fail(where, f"scale={scale!r} must be in (0, 4]; e.g. 0.25 for 0.3 m aerial tiles")
    crops = None
    if data.get("crops") is not None:
        crops = tuple(_number(where, "crops", c, int) for c in _listed(data["crops"]))
        if not crops or min(crops) < MIN_CROP:
            raise _fail(where, f"crops={list(crops)} must be sides >= {MIN_CROP} px, e.g. 64+128")
    split = data.get("split")
    allowed = ALLOWED_SPLIT.get(kind, "train")
    if split is not None and str(split) != allowed:
        what = (
            "val/test are never seen, train holds the label budgets"
            if kind == "eurosat"
            else ("validation and test images of a benchmark are never used for pre-training")
        )
        raise _fail(
            where,
            f"split={split!r} cannot be used for pre-training ({what}); "
            f"only split={allowed!r}: drop split= or set it to {allowed}",
        )
    bands = tuple(str(b) for b in _listed(data["bands"])) if data.get("bands") else None
    if bands is not None and len(bands) != 3:
        raise _fail(where, f"bands={list(bands)} must name 3 bands (red, green, blue)")
    rng = None
    if data.get("range") is not None:
        lo_hi = [_number(where, "range", v, float) for v in _listed(data["range"])]
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise _fail(where, f"range={lo_hi} must be LOW+HIGH with LOW < HIGH, e.g. 0+3000")
        rng = (lo_hi[0], lo_hi[1])
    tiles = None
    if data.get("tiles") is not None:
        tiles = tuple(_number(where, "tiles", t, int) for t in _listed(data["tiles"]))
        if not tiles:
            raise _fail(where, "tiles= lists no tile; e.g. tiles=1+2+3+4+7")
    return SourceSpec(
        kind=kind,
        root=None if root is None else str(root),
        weight=weight,
        scale=scale,
        crops=crops,
        split=None if split is None else str(split),
        bands=bands,
        range=rng,
        tiles=tiles,
        task=None if data.get("task") is None else str(data["task"]),
        partition=None if data.get("partition") is None else str(data["partition"]),
        origin=origin,
    )


def parse_source(text: str) -> SourceSpec:
    """Parse ``KIND[:ROOT][,key=value...]`` (list values joined by ``+``)."""
    head, *opts = text.split(",")
    kind, _, root = head.partition(":")
    data: dict[str, Any] = {"kind": kind.strip()}
    if root.strip():
        data["root"] = root.strip()
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq or not key.strip():
            raise ConfigError(
                f"--source {text!r}: {opt!r} is not key=value; write e.g. "
                "mask_folder:DIR,weight=0.5,scale=0.25,crops=64+128"
            )
        data[key.strip()] = value.strip()
    return spec_from_dict(data, "--source")


def read_sources_file(path: Path) -> list[SourceSpec]:
    """Read ``--sources FILE.yaml``: a list of source dicts (or ``{sources: [...]}``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--sources {path} does not exist; pass a YAML list of sources")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFormatError(
            f"--sources {path} is not valid YAML ({first}); fix the file"
        ) from None
    if isinstance(data, dict) and set(data) == {"sources"}:
        data = data["sources"]
    if not isinstance(data, list) or not data:
        raise ConfigError(
            f"--sources {path} must hold a non-empty list of sources (dicts with kind, root, "
            "weight, ...)"
        )
    return [spec_from_dict(d, f"{path.name} item {i + 1}") for i, d in enumerate(data)]


def gather_sources(
    source_args: list[str] | None, sources_file: Path | None, split: str | None = None
) -> list[SourceSpec]:
    """The run's sources: ``--sources`` then ``--source`` items; EuroSAT alone by default.

    ``split`` (``--split``) is the EuroSAT split when a eurosat source sets none.
    """
    specs = [*(read_sources_file(sources_file) if sources_file else [])]
    specs += [parse_source(s) for s in source_args or []]
    if not specs:
        specs = [SourceSpec(kind="eurosat", origin="default")]
    if split not in (None, "unlabeled"):
        specs = [
            replace(s, split=split) if s.kind == "eurosat" and s.split is None else s for s in specs
        ]
    return specs


def resolve_root(spec: SourceSpec, eurosat_root: Path | None) -> SourceSpec:
    """The spec with its root as an absolute path (eurosat without one: ``eurosat_root``)."""
    root = spec.root if spec.root is not None else eurosat_root
    if root is None:
        return spec
    return replace(spec, root=str(Path(root).expanduser().resolve()))


def stored_sources(run_dir: Path) -> list[dict[str, Any]] | None:
    """The records in ``run_dir/sources.json`` (None when the run has none)."""
    path = Path(run_dir) / SOURCES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"{path} is not valid JSON ({exc}); restore it or use a new --out"
        ) from None
    items = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DataFormatError(f"{path} has no list 'sources'; restore it or use a new --out")
    return items


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _NOT_COMPARED}


def check_resume_sources(run_dir: Path, specs: list[SourceSpec], resuming: bool) -> None:
    """Refuse a resume whose sources differ from ``sources.json`` (one line naming the field).

    A run made before sources were recorded (no ``sources.json``) was trained on the EuroSAT
    unlabeled pool alone: it resumes only with that default.
    """
    path = Path(run_dir) / SOURCES_FILE
    stored = stored_sources(run_dir)
    if stored is None:
        if resuming and not (len(specs) == 1 and specs[0].is_default):
            raise ConfigError(
                f"{run_dir} was trained on the EuroSAT unlabeled pool only (it has no "
                f"{SOURCES_FILE}); a run keeps its sources on resume: drop --source/--sources "
                "or use a new --out"
            )
        return
    given = [_comparable(s.record()) for s in specs]
    kept = [_comparable(r) if isinstance(r, dict) else {} for r in stored]
    if len(given) != len(kept):
        raise ConfigError(
            f"{len(given)} source(s) given but {len(kept)} stored in {path} "
            f"({', '.join(str(r.get('kind')) + ':' + str(r.get('name')) for r in kept)}); "
            "a run keeps its sources on resume: give the same sources or use a new --out"
        )
    for i, (g, k) in enumerate(zip(given, kept, strict=True)):
        for key in [*g, *(x for x in k if x not in g)]:
            if g.get(key) != k.get(key):
                raise ConfigError(
                    f"source {i + 1} ({specs[i].label}): {key}={g.get(key)!r} differs from "
                    f"{k.get(key)!r} stored in {path}; a run keeps its sources on resume: "
                    "drop the change or use a new --out"
                )


def write_sources(run_dir: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``run_dir/sources.json`` (atomically)."""
    path = Path(run_dir) / SOURCES_FILE
    atomic_write_text(path, json.dumps({"sources": records}, indent=1) + "\n")
    return path


__all__ = [
    "KINDS",
    "SOURCES_FILE",
    "SourceSpec",
    "check_resume_sources",
    "gather_sources",
    "parse_source",
    "read_sources_file",
    "resolve_root",
    "spec_from_dict",
    "stored_sources",
    "write_sources",
]
