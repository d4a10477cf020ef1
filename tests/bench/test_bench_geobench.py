"""``satdifuser bench geobench`` on generated GEO-Bench trees: outputs, resume, crashes, NA rows.

Runs use the tiny pixel backbone, 1 epoch; ``train_run`` is wrapped to count (or crash) runs.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.geobench.make import make_task
from satdifuser.bench import geobench, geobench_sweep
from satdifuser.bench.geobench_runs import ModelSpec, Run, parse_model, parse_partition, read_result
from satdifuser.cli.bench import BENCHMARKS
from satdifuser.errors import ConfigError

MODELS = "satdifuser:tiny-pixel:gw,random:tiny-pixel"
TASKS = ("m-eurosat", "m-nz-cattle")


class Crash(Exception):
    """Stands in for a process dying in the middle of a run."""


def argv(root: Path, out: Path, cache: Path, **over: str) -> list[str]:
    opts = {"--root": str(root), "--out": str(out), "--cache-dir": str(cache),
            "--models": MODELS, "--seeds": "0,1", "--partitions": "default", "--epochs": "1",
            "--threads": "1", "--bootstrap": "50", "--batch-size": "4",
            "--projection-dim": "8", "--bottleneck-dim": "4", "--head-channels": "8",
            **over}  # fmt: skip
    return [x for kv in opts.items() for x in kv]


def counting(mp: pytest.MonkeyPatch, crash_after: int | None = None) -> list[str]:
    """Wrap ``train_run``: record each run's key; raise Crash once ``crash_after`` ran."""
    calls: list[str] = []
    real = geobench_sweep.train_run

    def wrapped(run: Run, *args: object, **kwargs: object) -> dict:
        if crash_after is not None and len(calls) >= crash_after:
            (run.folder / "best.json").write_text("{partial")  # debris of the killed run
            raise Crash(run.key)
        calls.append(run.key)
        return real(run, *args, **kwargs)  # type: ignore[arg-type]

    mp.setattr(geobench_sweep, "train_run", wrapped)
    return calls


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("geobench")
    for t in TASKS:
        make_task(r, t)
    return r


@pytest.fixture(scope="module")
def swept(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list]]:
    """One full sweep: 2 tasks x 1 partition x 2 seeds x 2 models = 8 runs."""
    base = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        calls = counting(mp)
        assert geobench.run(argv(root, base / "out", base / "cache")) == 0
    yield base, calls


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_geobench_is_a_registered_benchmark() -> None:
    assert "geobench" in BENCHMARKS


def test_sweep_writes_runs_csv_tables_aggregate_and_plot(swept: tuple[Path, list]) -> None:
    base, calls = swept
    out = base / "out"
    assert len(calls) == 8
    rows = read_csv(out / "runs.csv")
    assert list(rows[0]) == ["task", "partition", "seed", "model", "metric", "value", "status"]
    primary = {(r["task"], r["seed"], r["model"]) for r in rows
               if r["metric"] in ("overall_accuracy", "miou")}  # fmt: skip
    assert primary == {(t, s, m) for t in TASKS for s in ("0", "1")
                       for m in ("satdifuser:tiny-pixel:gw", "random:tiny-pixel:gw")}
    assert {r["status"] for r in rows} == {"ok"}
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows if r["metric"] == "miou")
    res = json.loads((out / "runs/m-nz-cattle/default/random__tiny-pixel__gw/seed1/result.json")
                     .read_text())  # fmt: skip
    assert res["status"] == "ok" and res["primary_metric"] == "miou"
    assert res["task_type"] == "segmentation" and res["metrics"]["miou"] >= 0
    for t in TASKS:
        md = (out / "tables" / f"{t}.md").read_text()
        assert "| satdifuser:tiny-pixel:gw |" in md and "(2)" in md
    agg = read_csv(out / "aggregate.csv")
    pooled = [r for r in agg if r["task"] == "aggregated"]
    assert {r["model"] for r in pooled} == {"satdifuser:tiny-pixel:gw", "random:tiny-pixel:gw"}
    assert all(r["n"] == "4" for r in pooled)  # 2 tasks x 2 seeds
    assert all(float(r["ci_low"]) <= float(r["iqm"]) <= float(r["ci_high"]) for r in agg)
    # the fixture tree ships GEO-Bench normalizer.json files ([0, 1] per task): used by auto
    assert {r["norm_source"] for r in agg if r["task"] != "aggregated"} == {"normalizer.json"}
    assert "IQM (all tasks)" in (out / "aggregate.md").read_text()
    assert (out / "iqm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_invocation_redoes_nothing(swept: tuple[Path, list], root: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    base, _ = swept
    before = (base / "out" / "runs.csv").read_text()
    calls = counting(monkeypatch)
    assert geobench.run(argv(root, base / "out", base / "cache")) == 0
    assert calls == []
    assert "8 already done, 0 to do" in capsys.readouterr().out
    assert (base / "out" / "runs.csv").read_text() == before


def test_deleting_one_result_redoes_exactly_that_run(
    swept: tuple[Path, list], root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = swept
    out = tmp_path / "out"
    shutil.copytree(base / "out", out)
    (out / "runs/m-eurosat/default/satdifuser__tiny-pixel__gw/seed1/result.json").unlink()
    calls = counting(monkeypatch)
    assert geobench.run(argv(root, out, base / "cache")) == 0
    assert calls == ["m-eurosat default satdifuser:tiny-pixel:gw seed1"]
    assert len(read_csv(out / "runs.csv")) == len(read_csv(base / "out" / "runs.csv"))


def test_crash_mid_sweep_then_resume_finishes_the_rest(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argv(root, tmp_path / "out", tmp_path / "cache", **{"--tasks": "m-eurosat"})
    first = counting(monkeypatch, crash_after=2)
    with pytest.raises(Crash):
        geobench.run(args)
    assert len(first) == 2
    done = sorted(p.parent.name + "/" + p.parent.parent.name
                  for p in (tmp_path / "out" / "runs").rglob("result.json"))  # fmt: skip
    assert len(done) == 2
    # runs.csv already holds the finished runs (rewritten after each one)
    assert len({(r["seed"], r["model"]) for r in read_csv(tmp_path / "out" / "runs.csv")}) == 2
    monkeypatch.undo()  # the process restarts: no crash this time
    second = counting(monkeypatch)
    assert geobench.run(args) == 0
    assert len(second) == 2 and not set(first) & set(second)
    rows = read_csv(tmp_path / "out" / "runs.csv")
    assert len({(r["seed"], r["model"]) for r in rows}) == 4


def test_missing_partition_and_empty_split_are_na_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx = make_task(tmp_path / "gb", "m-eurosat")
    part = json.loads((fx.task_dir / "0.01x_train_partition.json").read_text())
    # GEO-Bench's sweep draws int(n * 0.01) = 0 ids from a small train set
    (fx.task_dir / "0.01x_train_partition.json").write_text(json.dumps({**part, "train": []}))
    (fx.task_dir / "0.50x_train_partition.json").unlink()
    calls = counting(monkeypatch)
    args = argv(tmp_path / "gb", tmp_path / "out", tmp_path / "cache",
                **{"--partitions": "0.01x,0.5x", "--seeds": "0"})  # fmt: skip
    assert geobench.run(args) == 0
    assert calls == []
    rows = read_csv(tmp_path / "out" / "runs.csv")
    assert len(rows) == 4 and {r["value"] for r in rows} == {"NA"}
    reasons = {r["partition"]: r["status"] for r in rows}
    assert "too few samples: train has 0" in reasons["0.01x_train"]
    assert "partition '0.50x_train' not found" in reasons["0.50x_train"]
    assert all(r["metric"] == "overall_accuracy" for r in rows)
    md = (tmp_path / "out" / "tables" / "m-eurosat.md").read_text()
    assert "| NA | NA |" in md and "too few samples" in md
    assert (tmp_path / "out" / "aggregate.md").is_file()
    assert (tmp_path / "out" / "iqm.png").is_file()
    assert geobench.run(args) == 0 and calls == []  # skipped runs are finished runs


def test_a_changed_configuration_invalidates_the_result(tmp_path: Path) -> None:
    spec = ModelSpec("satdifuser", "tiny-pixel", "global_weighted")
    run = Run("m-eurosat", "default", 0, spec, tmp_path, {"recipe": {"epochs": 1}})
    res = {"status": "ok", "metrics": {"overall_accuracy": 0.5}, "config_hash": run.config_hash()}
    (tmp_path / "result.json").write_text(json.dumps(res))
    assert read_result(run) == res
    run.config = {"recipe": {"epochs": 2}}
    assert read_result(run) is None
    (tmp_path / "result.json").write_text('{"status": "ok", "metr')  # torn write
    assert read_result(Run("m-eurosat", "default", 0, spec, tmp_path, {})) is None


def test_model_specs_and_partition_names() -> None:
    assert parse_model("satdifuser:tiny-pixel:moe") == ModelSpec("satdifuser", "tiny-pixel", "moe")
    assert parse_model("random:tiny-pixel").fusion == "global_weighted"
    assert parse_model("efficientnet_lite0").name == "efficientnet_lite0:gw"
    assert parse_model("efficientnet:lw").fusion == "local_weighted"
    assert parse_model("satdifuser:tiny-pixel:gw").slug == "satdifuser__tiny-pixel__gw"
    assert parse_partition("0.1x") == "0.10x_train" == parse_partition("0.10x_train")
    assert parse_partition("default") == "default"
    with pytest.raises(ConfigError, match="unknown model kind 'resnet'"):
        parse_model("resnet:18")
    with pytest.raises(ConfigError, match="needs a backbone"):
        parse_model("satdifuser")
    with pytest.raises(ConfigError, match="unknown fusion 'xx'"):
        parse_model("satdifuser:tiny-pixel:xx")


def test_unknown_task_is_one_clear_error(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--tasks m-nope not found .* found: m-eurosat"):
        geobench.run(argv(root, tmp_path / "o", tmp_path / "c", **{"--tasks": "m-nope"}))


def test_efficientnet_baseline_on_classification_and_segmentation(
    root: Path, tmp_path: Path
) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    args = argv(root, tmp_path / "out", tmp_path / "cache",
                **{"--models": "efficientnet_lite0", "--seeds": "0", "--effnet-size": "32"})
    assert geobench.run(args) == 0
    rows = read_csv(tmp_path / "out" / "runs.csv")
    assert {(r["task"], r["metric"]) for r in rows if r["status"] == "ok"} >= {
        ("m-eurosat", "overall_accuracy"), ("m-nz-cattle", "miou")}
