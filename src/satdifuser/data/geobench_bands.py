"""GEO-Bench band layout: canonical channel order, band selection by name, per-band metadata.

Order rule (geobench.md §8): ``bands_order`` of the sample, else ``task_specs.bands_info``, else
sorted dataset names (HDF5 iterates alphabetically, which is not the canonical order).
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from satdifuser.data.geobench_format import SampleRecord
from satdifuser.errors import ConfigError, DataFormatError

_DATE_SUFFIX = re.compile(r"_(\d{4}-\d{2}-\d{2})$")

#: m-eurosat: what each stored descriptor really holds (geobench.md §8, "band shift").
EUROSAT_SHIFT: dict[str, str] = {
    "08A - Vegetation Red Edge": "09 - Water vapour",
    "09 - Water vapour": "10 - SWIR - Cirrus",
    "10 - SWIR - Cirrus": "11 - SWIR",
    "11 - SWIR": "12 - SWIR",
    "12 - SWIR": "08A - Vegetation Red Edge",
}
_S2_ORDER = (
    "01 - Coastal aerosol", "02 - Blue", "03 - Green", "04 - Red", "05 - Vegetation Red Edge",
    "06 - Vegetation Red Edge", "07 - Vegetation Red Edge", "08 - NIR",
    "08A - Vegetation Red Edge", "09 - Water vapour", "10 - SWIR - Cirrus", "11 - SWIR",
    "12 - SWIR",
)  # fmt: skip


def eurosat_is_shifted(band_stats: dict[str, dict[str, float]]) -> bool:
    """Whether band stats show the m-eurosat shift (``09`` ≈ cirrus, ``10`` ≈ SWIR).

    True when the stats are absent (the released m-eurosat has the shift).
    """
    try:
        wv = float(band_stats["09 - Water vapour"]["mean"])
        ci = float(band_stats["10 - SWIR - Cirrus"]["mean"])
    except (KeyError, TypeError, ValueError):
        return True
    return wv * 10 < ci


@dataclass(frozen=True)
class BandEntry:
    """One output channel: its physical name, the dataset (and channel) holding it, metadata."""

    name: str
    dataset: str
    channel: int | None = None
    alt_names: tuple[str, ...] = ()
    resolution: float | None = None
    date: str | None = None

    @property
    def label(self) -> str:
        """Display name: ``name`` plus ``[channel]`` for a channel of a 3-D dataset."""
        return self.name if self.channel is None else f"{self.name}[{self.channel}]"


@dataclass
class BandLayout:
    """All channels of a task in canonical order, with the rule used to order them."""

    entries: list[BandEntry]
    order_source: str
    shifted: bool = False
    notes: list[str] = field(default_factory=list)


def _base_name(descriptor: str) -> tuple[str, str | None]:
    m = _DATE_SUFFIX.search(descriptor)
    return (descriptor[: m.start()], m.group(1)) if m else (descriptor, None)


def _band_meta(attrs: dict[str, Any], specs_bands: dict[str, dict[str, Any]], desc: str) -> dict:
    meta = attrs.get(desc)
    meta = meta if isinstance(meta, dict) else {}
    info = meta.get("band_info")
    if not isinstance(info, dict):
        info = specs_bands.get(_base_name(desc)[0], {})
    return {"meta": meta, "info": info}


def build_layout(
    record: SampleRecord, specs: dict[str, Any], fix_eurosat_shift: bool = False
) -> BandLayout:
    """Canonical channel list of a task from its first sample and its specs.

    Order: ``bands_order`` (minus ``label``), else ``task_specs.bands_info`` names matched to the
    datasets (date suffixes allowed), else sorted dataset names. 3-D datasets ``(H, W, n)``
    contribute ``n`` channels. With ``fix_eurosat_shift`` the m-eurosat descriptors are renamed to
    the bands they really hold and sorted into Sentinel-2 order.
    """
    datasets = [k for k in record.shapes if k != "label"]
    specs_bands = {
        str(b.get("name")): b for b in specs.get("bands_info") or [] if isinstance(b, dict)
    }
    order = record.attrs.get("bands_order")
    if isinstance(order, (list, tuple)) and order:
        descs, source = [str(d) for d in order if d != "label"], "bands_order"
    elif specs_bands:
        descs = []
        for name in specs_bands:
            descs += [d for d in datasets if d == name or _base_name(d)[0] == name]
        descs += [d for d in sorted(datasets) if d not in descs]
        source = "task_specs.bands_info"
    else:
        descs, source = sorted(datasets), "sorted dataset names"
    missing = [d for d in descs if d not in record.shapes]
    if missing:
        raise DataFormatError(
            f"{record.path}: bands {missing} are listed in {source} but have no dataset; the file "
            "is incomplete: re-extract it"
        )
    entries: list[BandEntry] = []
    for desc in descs:
        bm = _band_meta(record.attrs, specs_bands, desc)
        base, date = _base_name(desc)
        res = bm["meta"].get("spatial_resolution") or bm["info"].get("spatial_resolution")
        kw = {
            "alt_names": tuple(str(a) for a in bm["info"].get("alt_names") or ()),
            "resolution": float(res) if res else None,
            "date": date,
        }
        shape = record.shapes[desc]
        if len(shape) == 3:
            entries += [BandEntry(base, desc, c, **kw) for c in range(shape[2])]
        elif len(shape) == 2:
            entries.append(BandEntry(base, desc, None, **kw))
        else:
            raise DataFormatError(
                f"{record.path}: band {desc!r} has shape {shape}; expected (H, W) or (H, W, n)"
            )
    layout = BandLayout(entries, source)
    if fix_eurosat_shift:
        by_name = {e.name: e for e in entries}
        fixed = []
        for e in entries:
            true = EUROSAT_SHIFT.get(e.name, e.name)
            spec_alt = specs_bands.get(true, {}).get("alt_names")
            alt = tuple(spec_alt or by_name.get(true, e).alt_names)
            fixed.append(BandEntry(true, e.dataset, e.channel, alt, e.resolution, e.date))
        rank = {n: i for i, n in enumerate(_S2_ORDER)}
        fixed.sort(key=lambda e: rank.get(e.name, len(rank)))
        layout = BandLayout(fixed, source + " + m-eurosat shift fix", shifted=True)
    return layout


def select_bands(layout: BandLayout, queries: list[str], where: str) -> list[BandEntry]:
    """Channels matching each query: exact name, case-insensitive name or alt name, date prefix.

    A query naming a 3-D dataset selects all its channels; ``Name[i]`` selects one channel.

    Raises:
        ConfigError: a query matches nothing; the message lists the available bands.
    """
    out: list[BandEntry] = []
    for q in queries:
        ql = q.lower()
        tests = (
            lambda e, q=q: e.label == q,
            lambda e, ql=ql: e.label.lower() == ql or e.name.lower() == ql,
            lambda e, ql=ql: ql in (a.lower() for a in e.alt_names),
            lambda e, ql=ql: e.dataset.lower().startswith(ql),
        )
        hits: list[BandEntry] = []
        for test in tests:
            hits = [e for e in layout.entries if test(e)]
            if hits:
                break
        if not hits:
            names = list(dict.fromkeys(e.name for e in layout.entries))
            close = difflib.get_close_matches(q, names, n=2, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ConfigError(
                f"unknown band {q!r} in {where}; {hint}available: {', '.join(names)}"
            )
        out += hits
    return out


def as_date(value: Any) -> datetime.date | None:
    """A band's ``date`` field as a date (accepts date, datetime, ISO string), else None."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def lonlat_from_georef(meta: dict[str, Any], shape: tuple[int, int]) -> tuple[float, float]:
    """Centre (lon, lat) from a band's pickled ``transform``/``crs`` when the CRS is geographic.

    Only EPSG:4326 / WGS 84 geographic CRSs are understood (no pyproj); otherwise (nan, nan).
    """
    crs, tr = meta.get("crs"), meta.get("transform")
    crs_text = json.dumps(crs, default=str) if crs is not None else ""
    geographic = "4326" in crs_text or crs_text.lstrip('"{').upper().find("GEOGCS") >= 0
    coeffs = None
    if isinstance(tr, dict):
        coeffs = tr.get("_args") or tr.get("_state")
    elif isinstance(tr, (list, tuple)):
        coeffs = tr
    if not geographic or not isinstance(coeffs, (list, tuple)) or len(coeffs) < 6:
        return math.nan, math.nan
    a, b, c, d, e, f = (float(v) for v in coeffs[:6])
    h, w = shape
    return c + a * w / 2 + b * h / 2, f + d * w / 2 + e * h / 2


__all__ = [
    "EUROSAT_SHIFT",
    "BandEntry",
    "BandLayout",
    "as_date",
    "build_layout",
    "eurosat_is_shifted",
    "lonlat_from_georef",
    "select_bands",
]
