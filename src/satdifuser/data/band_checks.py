"""Plausibility of Sentinel-2 band names against per-band statistics (``data inspect``).

A file's band names can disagree with what the bands hold: EuroSAT-MS stores B8A last
(B01..B08, B09, B10, B11, B12, B8A), GEO-Bench's m-eurosat names those bands positionally
(``08A``..``12`` hold B09, B10, B11, B12, B8A), and the legacy brick-kiln files hold scaled copies
of red, green and blue under ``10``/``11``/``12`` (``docs/geobench_classes.md``). The rules below
test physical facts that hold over nearly every scene, on the band means and, where pixels are
given, on the pixels:

- B10 (cirrus, 1375 nm) is near zero: water vapour absorbs almost all light at the surface.
- B09 (water vapour, 945 nm) is far brighter than B10 and never near zero.
- B8A (narrow NIR, 865 nm) and B08 (NIR, 842 nm) are nearly equal.
- B12 (SWIR 2) is not much brighter than B11 (SWIR 1).
- B11 (SWIR 1) is not far darker than NIR unless the scene is snow (bright in blue) or water.
- No band is an exact scaled copy of a band from another part of the spectrum.

Only bands recognised as Sentinel-2 (``B8A``, ``B08A``, ``b10``, GEO-Bench descriptors such as
``10 - SWIR - Cirrus``) are tested; other sensors give no findings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: GEO-Bench descriptor -> Sentinel-2 band code.
_DESCRIPTORS = {
    "01 - Coastal aerosol": "B01", "02 - Blue": "B02", "03 - Green": "B03", "04 - Red": "B04",
    "05 - Vegetation Red Edge": "B05", "06 - Vegetation Red Edge": "B06",
    "07 - Vegetation Red Edge": "B07", "08 - NIR": "B08", "08A - Vegetation Red Edge": "B8A",
    "09 - Water vapour": "B09", "10 - SWIR - Cirrus": "B10", "11 - SWIR": "B11",
    "12 - SWIR": "B12",
}  # fmt: skip
_SURFACE = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
#: Pairs allowed to look like scaled copies (neighbouring NIR / red-edge bands).
_NEIGHBOURS = {frozenset(p) for p in (("B08", "B8A"), ("B07", "B08"), ("B07", "B8A"),
                                      ("B06", "B07"))}  # fmt: skip
#: Band orders a 13-band Sentinel-2 file is known to use.
S2_ORDERS: dict[str, tuple[str, ...]] = {
    "B8A after B08 (ESA band order)": (
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
    ),
    "B8A last (EuroSAT-MS GeoTIFFs)": (
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
    ),
}  # fmt: skip


def s2_code(name: str) -> str | None:
    """Sentinel-2 band code (``B01``..``B12``, ``B8A``) of a band name, or None.

    Accepts ``B8A``/``B08A``/``b8a``, ``B4``/``B04`` and GEO-Bench descriptors (a date suffix
    ``_YYYY-MM-DD`` is ignored). Bare numbers and other sensors' names give None.
    """
    base = re.sub(r"_\d{4}-\d{2}-\d{2}$", "", name.strip())
    if base in _DESCRIPTORS:
        return _DESCRIPTORS[base]
    m = re.fullmatch(r"[Bb]0*(\d{1,2})([Aa]?)", base)
    if not m:
        return None
    num, a = int(m.group(1)), m.group(2).upper()
    if a:
        return "B8A" if num == 8 else None
    return f"B{num:02d}" if 1 <= num <= 12 else None


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def check_band_means(names: Sequence[str], means: Sequence[float]) -> list[str]:
    """Findings (one sentence each) where the band means contradict the Sentinel-2 names.

    Args:
        names: Band names as declared (file descriptors or assumed names).
        means: Mean raw value of each band, same order.
    """
    m: dict[str, float] = {}
    label: dict[str, str] = {}
    for n, v in zip(names, means, strict=True):
        code = s2_code(n)
        if code is not None and code not in m and np.isfinite(v):
            m[code], label[code] = float(v), n
    surface = [m[c] for c in _SURFACE if c in m]
    if len(surface) < 3:
        return []
    ref = float(np.median(surface))
    if ref <= 0:
        return []
    out: list[str] = []

    def q(c: str) -> str:
        return f"{label[c]!r}" if label[c] == c else f"{label[c]!r} ({c})"

    if "B10" in m and m["B10"] > 0.2 * ref:
        out.append(
            f"{q('B10')} averages {_fmt(m['B10'])}, {m['B10'] / ref:.0%} of the typical band "
            f"level {_fmt(ref)}; cirrus (1375 nm) is near zero except under high cloud"
        )
    if "B09" in m:
        dark_vs_b10 = "B10" in m and m["B09"] <= 2 * m["B10"]
        if dark_vs_b10 or m["B09"] < 0.02 * ref:
            other = f" and {q('B10')} averages {_fmt(m['B10'])}" if "B10" in m else ""
            out.append(
                f"{q('B09')} averages {_fmt(m['B09'])}{other}; water vapour (945 nm) is far "
                "brighter than cirrus and never near zero: this looks like the cirrus band"
            )
    if "B08" in m and "B8A" in m and m["B08"] > 0.05 * ref:
        r = m["B8A"] / m["B08"]
        if not 0.75 <= r <= 1.35:
            out.append(
                f"{q('B8A')} averages {_fmt(m['B8A'])} = {r:.2f} x {q('B08')} "
                f"({_fmt(m['B08'])}); the two NIR bands (865 / 842 nm) are nearly equal"
            )
    if "B11" in m and "B12" in m and m["B11"] > 0.05 * ref and m["B12"] > 1.6 * m["B11"]:
        out.append(
            f"{q('B12')} averages {_fmt(m['B12'])} = {m['B12'] / m['B11']:.1f} x {q('B11')} "
            f"({_fmt(m['B11'])}); SWIR 2 is rarely brighter than SWIR 1"
        )
    nir = max((m[c] for c in ("B08", "B8A") if c in m), default=None)
    if "B11" in m and nir is not None and nir > 0.5 * ref and m["B11"] < 0.15 * nir:
        snowy = "B02" in m and m["B02"] >= 0.6 * nir
        if not snowy:
            out.append(
                f"{q('B11')} averages {_fmt(m['B11'])}, {m['B11'] / nir:.0%} of NIR "
                f"({_fmt(nir)}); SWIR 1 is that dark only over snow (bright in blue) or water "
                "(dark in NIR too)"
            )
    return out


def find_copies(
    names: Sequence[str], arrays: Sequence[np.ndarray], max_spread: float = 0.012
) -> list[str]:
    """Findings for Sentinel-2 bands that are scaled copies of a band elsewhere in the spectrum.

    A copy has a per-pixel ratio to the other band that hardly varies (median absolute deviation
    below ``max_spread`` of the median ratio) over the pixels of ``arrays``, each (C, H, W).
    """
    codes = [s2_code(n) for n in names]
    idx = [i for i, c in enumerate(codes) if c is not None]
    if len(idx) < 2 or not arrays:
        return []
    pix = np.concatenate([a.reshape(a.shape[0], -1)[idx].astype(np.float64) for a in arrays], 1)
    out: list[str] = []
    seen: set[int] = set()
    for a in range(len(idx)):
        for b in range(len(idx)):
            ca, cb = codes[idx[a]], codes[idx[b]]
            if a == b or a in seen or frozenset((ca, cb)) in _NEIGHBOURS:
                continue
            x, y = pix[a], pix[b]
            ok = (y > 0) & np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 50 or np.ptp(y[ok]) <= 0:
                continue
            ratio = x[ok] / y[ok]
            med = float(np.median(ratio))
            if med <= 0 or med >= 1.0:  # report the smaller band as the copy of the larger
                continue
            spread = float(np.median(np.abs(ratio - med))) / med
            if spread < max_spread:
                seen.add(a)
                out.append(
                    f"{names[idx[a]]!r} is a scaled copy of {names[idx[b]]!r} "
                    f"(per-pixel ratio {med:.3f}, spread {spread:.1%}); it does not hold {ca}"
                )
    return out


def suggest_order(names: Sequence[str], means: Sequence[float]) -> str | None:
    """For 13 Sentinel-2 bands whose names fail :func:`check_band_means`: a known band order
    under which the same means pass, as a sentence, else None."""
    codes = [s2_code(n) for n in names]
    if len(codes) != 13 or set(codes) != set(S2_ORDERS["B8A after B08 (ESA band order)"]):
        return None
    for title, order in S2_ORDERS.items():
        if tuple(codes) != order and not check_band_means(order, means):
            return f"the statistics fit the order {title}: {', '.join(order)}"
    return None


def check_bands(
    names: Sequence[str], arrays: Sequence[np.ndarray], source: str = "band names"
) -> list[str]:
    """Warnings for ``data inspect``: findings of the mean and copy rules over raw (C, H, W)
    arrays, with a known band order that fits when there is one. Empty when plausible."""
    if not arrays:
        return []
    means = np.mean([a.reshape(a.shape[0], -1).astype(np.float64).mean(1) for a in arrays], 0)
    findings = check_band_means(names, means.tolist()) + find_copies(names, arrays)
    if not findings:
        return []
    hint = suggest_order(names, means.tolist())
    tail = f"; {hint}" if hint else ""
    return [
        f"band statistics contradict the {source} ({len(arrays)} samples): "
        + "; ".join(findings)
        + tail
    ]


__all__ = ["S2_ORDERS", "check_band_means", "check_bands", "find_copies", "s2_code",
           "suggest_order"]  # fmt: skip
