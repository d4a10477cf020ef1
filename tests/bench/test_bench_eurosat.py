"""``satdifuser bench eurosat``: tables, extractor configurations, and quick runs end to end
(every diffusion-feature row is a task trained by ``tasks.fit_and_test`` on the cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.eurosat.make import make
from satdifuser.backbones.random_weights import random_like
from satdifuser.bench import tables
from satdifuser.bench.eurosat import run
from satdifuser.bench.features import tap_groups
from satdifuser.errors import ConfigError


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make(tmp_path_factory.mktemp("eurosat"))


def test_aggregate_gives_mean_and_sample_std_per_method_and_budget() -> None:
    rows = [
        {"section": "s", "method": "m", "budget": 10, "seed": s, "overall_accuracy": v,
         "f1_macro": v / 2}
        for s, v in enumerate([0.5, 0.7, 0.6])
    ]  # fmt: skip
    (agg,) = tables.aggregate(rows)
    assert agg["overall_accuracy_mean"] == pytest.approx(0.6)
    assert agg["overall_accuracy_std"] == pytest.approx(0.1)
    assert "60.00 ± 10.00" in tables.results_table([agg], "s", [10])


def test_tap_groups_and_random_weights_of_the_same_architecture() -> None:
    from satdifuser.backbones import create_backbone

    bb = create_backbone("tiny-pixel")
    groups = tap_groups(bb)
    assert groups["resnet"] == ["up_blocks.0.resnets.1", "up_blocks.1.resnets.1"]
    assert groups["attention"] == ["up_blocks.0.attentions.0", "up_blocks.0.attentions.1"]
    rnd = random_like(bb, seed=3)

    def public(cfg: object) -> dict:
        return {k: v for k, v in dict(cfg).items() if not k.startswith("_")}

    assert public(rnd.unet.config) == public(bb.unet.config) and not rnd.pretrained
    assert rnd.weights_id() != bb.weights_id()
    assert random_like(bb, seed=3).weights_id() == rnd.weights_id()


def test_bad_budgets_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--budgets='ten' must be comma-separated integers"):
        run(["--budgets", "ten", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="--fusions 'xx' is unknown"):
        run(["--fusions", "gw,xx", "--out", str(tmp_path)])


def test_quick_bench_writes_results_and_appends_markdown(
    eurosat_root: Path, tmp_path: Path
) -> None:
    parts = "satdifuser,random,cnn,ablations"
    try:
        import efficientnet_lite_pytorch  # noqa: F401

        parts += ",efficientnet"
    except ImportError:
        pass
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nearlier text\n")
    argv = [
        "--backbone", "tiny-pixel", "--data", str(eurosat_root), "--quick", "--seeds", "0",
        "--fusions", "concat,gw", "--parts", parts, "--ablation-timesteps", "10,50",
        "--effnet-size", "64", "--random-seed", "1", "--out", str(tmp_path / "out"),
        "--cache-dir", str(tmp_path / "cache"), "--append-md", str(md), "--no-progress",
        "--threads", "1",
    ]  # fmt: skip
    assert run(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    methods = {r["method"] for r in result["runs"]}
    assert {"satdifuser GW", "satdifuser concat", "random weights GW",
            "small CNN from scratch", "timestep t=10 only GW", "timestep t=50 only GW",
            "resnet taps only GW", "attention taps only GW", "satdifuser pooled probe",
            "all timesteps 10,50 GW"} <= methods  # fmt: skip
    if "efficientnet" in parts:
        assert {"EfficientNet-Lite0 probe", "EfficientNet-Lite0 stages GW"} <= methods
    reused = [r for r in result["runs"] if r["method"] == "timestep t=10 only GW"]
    assert reused and reused[0]["reused_from"] == "satdifuser GW"
    assert result["budgets"] == [2] and result["seconds"]["total"] > 0
    assert all(0.0 <= r["overall_accuracy"] <= 1.0 for r in result["runs"])
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nearlier text\n")
    assert "Command: `satdifuser bench eurosat --backbone tiny-pixel" in text
    assert "### Goals" in text and "### Wall clock per part" in text
    # features were cached once per extractor and split (content-addressed folders): the
    # budgets, seeds and map subsets are views, so 3 extractors x 3 splits (+ effnet)
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert len(folders) == 3 * (4 if "efficientnet" in parts else 3), folders
    # every satdifuser row is a saved SatDiFuserModel; the main GW one loads and predicts
    fused = [r for r in result["runs"] if r.get("fusion")]
    assert fused and all(r["model_dir"] and Path(r["model_dir"]).is_dir() for r in fused)
    gw = next(r for r in fused if r["method"] == "satdifuser GW")
    from satdifuser.model import SatDiFuserModel

    model = SatDiFuserModel.from_pretrained(gw["model_dir"])
    assert model.config()["fusion"]["name"] == "global_weighted"
    assert model.config()["standardize"] is True


def test_include_runs_merges_an_earlier_run_of_the_other_parts(
    eurosat_root: Path, tmp_path: Path
) -> None:
    base = [
        "--backbone", "tiny-pixel", "--data", str(eurosat_root), "--quick", "--seeds", "0",
        "--fusions", "gw", "--cache-dir", str(tmp_path / "cache"), "--append-md", "none",
        "--no-progress", "--threads", "1",
    ]  # fmt: skip
    assert run([*base, "--parts", "cnn", "--out", str(tmp_path / "a")]) == 0
    earlier = tmp_path / "a" / "results.json"
    argv = [*base, "--parts", "satdifuser", "--out", str(tmp_path / "b"), "--include-runs",
            str(earlier)]  # fmt: skip
    assert run(argv) == 0
    result = json.loads((tmp_path / "b" / "results.json").read_text())
    cnn = [r for r in result["runs"] if r["section"] == "cnn"]
    assert cnn and all(r["included_from"].endswith("--parts cnn --out " + str(tmp_path / "a"))
                       for r in cnn)  # fmt: skip
    assert {r["section"] for r in result["runs"]} == {"satdifuser", "cnn"}
    assert "earlier run: small CNN" in result["seconds"]
    md = (tmp_path / "b" / "results.md").read_text()
    assert "taken from an earlier run" in md and "(iv) small CNN" in md
    with pytest.raises(ConfigError, match="its pool 4 differs from this run's 2"):
        run([*base, "--parts", "satdifuser", "--pool", "2", "--out", str(tmp_path / "c"),
             "--include-runs", str(earlier)])  # fmt: skip
    with pytest.raises(ConfigError, match="holds no rows outside this run's parts"):
        run([*base, "--parts", "cnn", "--out", str(tmp_path / "d"), "--include-runs",
             str(earlier)])  # fmt: skip


def test_ensemble_averages_noise_draws_and_is_recorded(eurosat_root: Path, tmp_path: Path) -> None:
    from satdifuser.model import SatDiFuserModel

    argv = [
        "--backbone", "tiny-pixel", "--data", str(eurosat_root), "--quick", "--seeds", "0",
        "--fusions", "gw", "--parts", "satdifuser", "--out", str(tmp_path / "out"),
        "--cache-dir", str(tmp_path / "cache"), "--append-md", "none", "--no-progress",
        "--threads", "1", "--ensemble", "2",
    ]  # fmt: skip
    assert run(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["ensemble"] == 2
    gw = next(r for r in result["runs"] if r["method"] == "satdifuser GW")
    model = SatDiFuserModel.from_pretrained(gw["model_dir"])
    assert model.config()["features"]["args"]["ensemble"] == 2
    with pytest.raises(ConfigError, match="--ensemble=0 must be >= 1"):
        run([*argv[:-2], "--ensemble", "0"])
