"""DiffusionSat metadata normalisation."""

from __future__ import annotations

import math

import pytest
import torch

from satdifuser.backbones import create_backbone, normalize_metadata
from satdifuser.errors import InputError


def test_normalisation_matches_diffusionsat_example() -> None:
    # DiffusionSat notebook example 1: lon 153.3E, lat 27.9S, GSD 0.411 m, 2017-02-11
    raw = torch.tensor([[153.317, -27.862, 0.41145, 0.0, 2017, 2, 11]])
    expected = torch.tensor([[925.88, 345.21, 411.45, 0.0, 308.33, 166.67, 354.84]])
    assert torch.allclose(normalize_metadata(raw), expected, atol=0.05)


def test_nan_means_unknown_and_gsd_is_scaled() -> None:
    raw = torch.tensor([[math.nan, 0.0, 10.0, math.nan, math.nan, math.nan, math.nan]])
    out = normalize_metadata(raw, gsd_scale=0.25)  # 64 px resized to 256 px: 10 m -> 2.5 m
    assert out[0, 0] == 0 and out[0, 1] == pytest.approx(500.0)
    assert out[0, 2] == pytest.approx(2500.0)
    assert not out[0, 3:].any()


def test_bad_metadata_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"\(B, 7\)"):
        normalize_metadata(torch.zeros(2, 6))
    with pytest.raises(InputError, match="infinite"):
        normalize_metadata(torch.full((1, 7), math.inf))


def test_metadata_labels_zero_default_differs_from_dropped_term() -> None:
    bb = create_backbone("tiny-diffusionsat")
    zeros = bb.metadata_labels(None, 2)
    dropped = bb.metadata_labels(None, 2, use_metadata=False)
    assert zeros is not None and dropped is not None
    assert zeros.shape == dropped.shape == (2, 128)
    assert not dropped.any() and zeros.abs().sum() > 0
    with pytest.raises(InputError, match="3 rows but the batch has 2"):
        bb.metadata_labels(torch.zeros(3, 7), 2)
