"""Sentinel-2 band-name plausibility (satdifuser.data.band_checks), on band means and pixels."""

from __future__ import annotations

import numpy as np
import pytest

from satdifuser.data.band_checks import (
    S2_ORDERS,
    check_band_means,
    check_bands,
    find_copies,
    s2_code,
)

ESA = list(S2_ORDERS["B8A after B08 (ESA band order)"])
B8A_LAST = list(S2_ORDERS["B8A last (EuroSAT-MS GeoTIFFs)"])
#: EuroSAT-MS band means (TorchGeo's EuroSAT MEAN, physical bands).
EUROSAT = {"B01": 1354, "B02": 1118, "B03": 1042, "B04": 947, "B05": 1199, "B06": 1999,
           "B07": 2369, "B08": 2296, "B8A": 2594, "B09": 732, "B10": 12, "B11": 1819,
           "B12": 1118}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "code"),
    [("B8A", "B8A"), ("B08A", "B8A"), ("b8a", "B8A"), ("B4", "B04"), ("B10", "B10"),
     ("10 - SWIR - Cirrus", "B10"), ("08A - Vegetation Red Edge", "B8A"),
     ("02 - Blue_2019-05-17", "B02"), ("01 - VH.Real", None), ("red", None), ("B13", None),
     ("NearInfrared", None), ("B9A", None)],
)  # fmt: skip
def test_s2_code(name: str, code: str | None) -> None:
    assert s2_code(name) == code


def test_correct_names_pass() -> None:
    assert check_band_means(ESA, [EUROSAT[c] for c in ESA]) == []
    assert check_band_means(B8A_LAST, [EUROSAT[c] for c in B8A_LAST]) == []


def test_b8a_last_data_under_esa_names_is_caught_with_the_order_that_fits() -> None:
    means = [EUROSAT[c] for c in B8A_LAST]  # the file's real content
    found = " | ".join(check_band_means(ESA, means))  # names claim B8A after B08
    assert "'B10' averages 1819" in found and "cirrus (1375 nm) is near zero" in found
    assert "'B09' averages 12" in found and "looks like the cirrus band" in found
    assert "'B8A' averages 732 = 0.32 x 'B08'" in found
    assert "'B12' averages 2594 = 2.3 x 'B11'" in found
    warn = check_bands(ESA, [np.asarray(means, np.float64)[:, None, None] * np.ones((13, 8, 8))])
    assert len(warn) == 1 and warn[0].endswith(
        "the statistics fit the order B8A last (EuroSAT-MS GeoTIFFs): " + ", ".join(B8A_LAST)
    )


@pytest.mark.parametrize(
    "scene",
    [
        # open water: NIR and SWIR both dark (EuroSAT SeaLake-like)
        {"B01": 1300, "B02": 1100, "B03": 900, "B04": 600, "B05": 500, "B06": 400, "B07": 380,
         "B08": 330, "B8A": 290, "B09": 120, "B10": 8, "B11": 60, "B12": 40},
        # snow: bright in blue and NIR, dark in SWIR
        {"B01": 7000, "B02": 7200, "B03": 7100, "B04": 7000, "B05": 6900, "B06": 6800,
         "B07": 6700, "B08": 6600, "B8A": 6400, "B09": 2500, "B10": 40, "B11": 500, "B12": 400},
        # the 8-bit m-SA-crop-type sample files (band_stats.json means, no cirrus band)
        {"B01": 7.4, "B02": 11.2, "B03": 20.9, "B04": 36.9, "B05": 46.3, "B06": 53.6,
         "B07": 57.1, "B08": 61.0, "B8A": 60.6, "B09": 61.5, "B11": 86.7, "B12": 74.4},
    ],
)  # fmt: skip
def test_no_false_alarm_on_water_snow_and_8bit_data(scene: dict[str, float]) -> None:
    assert check_band_means(list(scene), list(scene.values())) == []


def test_other_sensors_are_not_checked() -> None:
    assert check_band_means(["Red", "Green", "Blue", "NearInfrared"], [0.5, 0.5, 0.5, 0.0]) == []
    s1 = ["01 - VH.Real", "02 - VH.Imaginary", "03 - VV.Real"]
    assert check_band_means(s1, [0.0, 5.0, 0.0]) == []


def test_scaled_copy_of_a_visible_band_is_caught() -> None:
    """Legacy brick-kiln files: '10'/'11'/'12' hold red/green/blue x 0.102 (8-bit rounded)."""
    rng = np.random.default_rng(0)
    vis = rng.uniform(400, 2500, size=(3, 32, 32))
    nir = vis[0] * rng.uniform(1.5, 3.0, size=(32, 32))
    b8a = nir * rng.uniform(0.97, 1.03, size=(32, 32))  # a natural neighbour: not a copy
    names = ["04 - Red", "08 - NIR", "08A - Vegetation Red Edge", "10 - SWIR - Cirrus"]
    arr = np.stack([vis[0], nir, b8a, np.round(vis[0] * 0.102)])
    found = find_copies(names, [arr])
    assert len(found) == 1 and found[0].startswith(
        "'10 - SWIR - Cirrus' is a scaled copy of '04 - Red' (per-pixel ratio 0.102"
    )
    assert found[0].endswith("it does not hold B10")
    assert find_copies(names[:3], [arr[:3]]) == []
