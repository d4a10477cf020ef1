"""Every shipped example config parses (class paths import, types validate)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from satdifuser.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
TEST_CONFIGS = sorted((ROOT / "tests" / "conf").glob("*.yaml"))


def test_every_geobench_task_has_a_config() -> None:
    from satdifuser.data.geobench_tasks import GEOBENCH_TASKS

    names = {p.stem for p in (ROOT / "configs" / "geobench").glob("m-*.yaml")}
    assert names == set(GEOBENCH_TASKS) and len(names) == 12


@pytest.mark.parametrize("path", CONFIGS + TEST_CONFIGS, ids=lambda p: p.name)
def test_config_parses_with_print_config(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(path), "--print_config"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    model = out["model"]
    assert model["class_path"].startswith("satdifuser.tasks.")
    assert model["init_args"]["extractor"]["class_path"] == "satdifuser.features.FeatureExtractor"
    assert out["seed_everything"] == 0


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "geobench").glob("m-*.yaml")),
                         ids=lambda p: p.stem)  # fmt: skip
def test_geobench_config_matches_the_task_table(path: Path) -> None:
    from satdifuser.data.geobench_tasks import GEOBENCH_TASKS

    spec = GEOBENCH_TASKS[path.stem]
    cfg = yaml.safe_load(path.read_text())
    init = cfg["model"]["init_args"]
    assert cfg["data"]["init_args"]["task"] == path.stem
    assert init["num_classes"] == spec.num_classes
    expected = {"classification": "ClassificationTask", "multilabel":
                "MultiLabelClassificationTask", "segmentation": "SegmentationTask"}  # fmt: skip
    assert cfg["model"]["class_path"].endswith(expected[spec.task_type])
