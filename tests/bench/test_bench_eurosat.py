"""``satdifuser bench eurosat``: budgets, feature sets, probes, tables, and a quick run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fixtures.eurosat.make import make
from satdifuser.bench import tables
from satdifuser.bench.common import FeatureSet, budget_rows, load_cache
from satdifuser.bench.eurosat import run
from satdifuser.bench.features import random_like, tap_groups
from satdifuser.bench.probe import ProbeConfig, linear_probe, train_fusion_probe
from satdifuser.errors import ConfigError
from satdifuser.features.spec import FeatureInfo

CLASSES = [str(i) for i in range(3)]


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make(tmp_path_factory.mktemp("eurosat"))


def _separable(n: int, seed: int) -> FeatureSet:
    """Two taps at two timesteps; class c shows as a raised channel c."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    info = [FeatureInfo(tap, t, c, 8) for t in (10, 50) for tap, c in (("a", 4), ("b", 6))]
    maps = []
    for f in info:
        m = torch.randn(n, f.channels, 2, 2, generator=g)
        m[torch.arange(n), y] += 4.0  # class c lifts channel c
        maps.append(m.half())
    return FeatureSet(info, maps, y, [f"s{seed}-{i}" for i in range(n)])


def test_budget_rows_take_the_first_k_of_each_class_in_order() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert budget_rows(labels, 2).tolist() == [0, 1, 3, 4, 6, 7]
    assert budget_rows(labels, None).tolist() == list(range(9))
    with pytest.raises(ConfigError, match="label budget 4 per class"):
        budget_rows(labels, 4)


def test_feature_set_select_rows_and_combine() -> None:
    fs = _separable(6, 0)
    t10 = fs.select(timesteps=[10])
    assert [f.timestep for f in t10.feature_info] == [10, 10]
    assert [f.tap for f in fs.select(taps=["b"]).feature_info] == ["b", "b"]
    both = FeatureSet.combine([t10, fs.select(timesteps=[50])])
    assert both.feature_info == fs.feature_info
    sub = fs.rows([5, 0])
    assert sub.ids == ["s0-5", "s0-0"] and torch.equal(sub.maps[1][0], fs.maps[1][5])
    assert fs.pooled().shape == (6, 20)
    with pytest.raises(ConfigError, match="no feature map matches"):
        fs.select(taps=["zzz"])


def test_fusion_probe_learns_and_is_reproducible() -> None:
    train, val, test = _separable(60, 1), _separable(30, 2), _separable(30, 3)
    cfg = ProbeConfig(
        fusion="global_weighted", projection_dim=8, bottleneck_dim=4, num_groups=4,
        epochs=15, min_steps=0, batch_size=16, eval_every=5,
    )  # fmt: skip
    a = train_fusion_probe(train, val, test, cfg, seed=0, class_names=CLASSES)
    b = train_fusion_probe(train, val, test, cfg, seed=0, class_names=CLASSES)
    assert a.overall_accuracy > 0.9
    assert a.metrics == b.metrics
    assert a.confusion.sum() == 30 and 1 <= a.best_epoch <= 15
    assert set(a.metrics) >= {"overall_accuracy", "f1_macro", "f1/0", "accuracy/2"}


@pytest.mark.parametrize("fusion", ["concat", "local_weighted", "moe"])
def test_every_fusion_trains_on_cached_features(fusion: str) -> None:
    train, test = _separable(30, 1), _separable(15, 3)
    cfg = ProbeConfig(
        fusion=fusion, projection_dim=8, bottleneck_dim=4, num_groups=4, epochs=2,
        min_steps=0, batch_size=16, num_experts=2, top_k=1,
    )  # fmt: skip
    r = train_fusion_probe(train, None, test, cfg, seed=0, class_names=CLASSES)
    assert 0.0 <= r.overall_accuracy <= 1.0 and r.val_accuracy is None


def test_linear_probe_picks_l2_on_val_and_separates_classes() -> None:
    tr, va, te = _separable(60, 1), _separable(30, 2), _separable(30, 3)
    r = linear_probe(
        (tr.pooled(), tr.labels), (va.pooled(), va.labels), (te.pooled(), te.labels), CLASSES,
        l2_grid=(1e-3, 10.0),
    )  # fmt: skip
    assert r.overall_accuracy > 0.9 and r.extra["l2"] in (1e-3, 10.0)


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
    # features were cached once per extractor and split, and load back
    folders = sorted(p for p in (tmp_path / "cache").glob("*/*") if p.is_dir())
    assert folders and len(load_cache(folders[0]))


def test_standardisation_uses_training_statistics_per_channel() -> None:
    from satdifuser.bench.probe import FusionClassifier, channel_stats
    from satdifuser.fusion import create_fusion

    train = _separable(12, 0)
    stats = channel_stats(train)
    assert [tuple(m.shape) for m, _ in stats] == [(4,), (6,), (4,), (6,)]
    fusion = create_fusion("concat", train.feature_info, projection_dim=4, num_groups=2)
    model = FusionClassifier(fusion, 3, stats)
    seen = []
    fusion.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    model(train.batch(torch.arange(12)))
    x = seen[0][1]
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(6), atol=1e-3, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2, 3)), torch.ones(6), atol=1e-3, rtol=0)


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
