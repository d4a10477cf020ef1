"""Sentinel-2 band tables per source: EuroSAT-MS stores B8A last."""

from __future__ import annotations

import pytest

from satdifuser.data.bands import (
    BAND_TABLES,
    EUROSAT_MS_BANDS,
    SENTINEL2_BANDS,
    band_indices,
    band_table,
    default_band_names,
)
from satdifuser.data.geobench_bands import EUROSAT_SHIFT
from satdifuser.errors import ConfigError

# TorchGeo's EuroSAT.all_band_names (the EuroSAT-MS GeoTIFF order), written out here on purpose
TORCHGEO_EUROSAT = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10",
                    "B11", "B12", "B8A")  # fmt: skip
GEOBENCH_S2_DESCRIPTORS = (
    "01 - Coastal aerosol", "02 - Blue", "03 - Green", "04 - Red", "05 - Vegetation Red Edge",
    "06 - Vegetation Red Edge", "07 - Vegetation Red Edge", "08 - NIR",
    "08A - Vegetation Red Edge", "09 - Water vapour", "10 - SWIR - Cirrus", "11 - SWIR",
    "12 - SWIR",
)  # fmt: skip


def _code(descriptor: str) -> str:
    return "B" + descriptor.split(" ")[0].zfill(2)


def test_eurosat_ms_table_has_b8a_last_like_torchgeo() -> None:
    idx = band_indices(list(TORCHGEO_EUROSAT), EUROSAT_MS_BANDS, "EuroSAT-MS")
    assert idx == list(range(13))  # B8A matches B08A, B9 matches B09 ...
    assert EUROSAT_MS_BANDS.index("B08A") == 12 and EUROSAT_MS_BANDS.index("B09") == 8
    assert SENTINEL2_BANDS.index("B08A") == 8 and set(SENTINEL2_BANDS) == set(EUROSAT_MS_BANDS)


def test_geobench_m_eurosat_shift_agrees_with_the_eurosat_ms_table() -> None:
    # m-eurosat stores the EuroSAT-MS bands under wavelength-order descriptors; the shift table
    # says what each descriptor really holds, which must be the EuroSAT-MS band at that position
    held = [_code(EUROSAT_SHIFT.get(d, d)) for d in GEOBENCH_S2_DESCRIPTORS]
    assert held == list(EUROSAT_MS_BANDS)


def test_default_names_for_13_bands_are_eurosat_ms() -> None:
    names, source = default_band_names(13)
    assert names[8] == "B09" and names[-1] == "B08A"
    assert "EuroSAT-MS" in source and "band_names='sentinel2_l1c'" in source
    # choosing bands by name now gives the band the file really holds there
    assert band_indices(["B8A", "B09", "B12"], names, "x") == [12, 8, 11]


def test_band_table_lookup_and_unknown_name() -> None:
    assert band_table("EuroSAT-MS") == EUROSAT_MS_BANDS
    assert band_table("sentinel2_l1c") == SENTINEL2_BANDS
    assert len(band_table("sentinel2_l2a")) == 12 and "B10" not in band_table("sentinel2_l2a")
    assert set(BAND_TABLES) >= {"eurosat_ms", "sentinel2_l1c", "sentinel2_l2a"}
    with pytest.raises(ConfigError, match=r"unknown band table 'eurosat'; did you mean "
                                          r"'eurosat_ms'\?"):  # fmt: skip
        band_table("eurosat")
