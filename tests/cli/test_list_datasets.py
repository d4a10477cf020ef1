"""``satdifuser list datasets``: the dataset and data-module classes users can name, with docs."""

from __future__ import annotations

import pytest

from satdifuser.cli.listing import summary
from satdifuser.cli.main import main


def test_list_datasets_names_every_exported_dataset_and_data_module(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    assert "none in this version" not in out
    for name in (
        "GeoTiffFolder",
        "MaskFolder",
        "EuroSAT",
        "GeoTiffFolderDataModule",
        "MaskFolderDataModule",
        "DubaiAerialDataModule",
        "GeoBenchDataModule",
    ):
        assert f"\n  {name} " in out
    assert "data.class_path: satdifuser.data.<name>" in out
    assert "  m-eurosat " in out and "classification, 10 classes" in out
    # one-line docs: the whole first sentence, not a line cut mid-sentence
    assert "GeoTIFF rasters (any band count and dtype, e.g. EuroSAT-MS: 13 bands uint16)." in out


def test_summary_is_the_first_sentence_of_the_first_paragraph() -> None:
    class A:
        """Wrapped first sentence that goes on
        over two lines, e.g. like this. Second sentence.

        Details."""

    assert summary(A) == "Wrapped first sentence that goes on over two lines, e.g. like this."
    assert summary(lambda: None) == ""  # no docstring
    assert len(summary(A, limit=20)) == 20


def test_list_unknown_kind_is_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "dataset"]) == 2
    assert "UnknownNameError: cannot list 'dataset'; choose from" in capsys.readouterr().err
