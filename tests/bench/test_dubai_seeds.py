"""`satdifuser bench dubai --seeds`: one extraction per arm, one full run per seed, mean ± sample
std over seeds in results.json / results.md; `--seeds S` is `--seed S`; bad lists refused."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import cli_error
from fixtures.mask_folder.make import make_dubai
from satdifuser.bench import dubai
from satdifuser.bench.dubai_report import markdown_section, seed_stats
from satdifuser.data.dubai_aerial import DUBAI_CLASSES
from satdifuser.errors import ConfigError


@pytest.fixture(scope="module")
def dubai_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dubai")
    make_dubai(root)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # content-addressed: shared by every run here


def _argv(root: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--data", str(root), "--out", str(out), "--backbone", "tiny-pixel", "--train-tiles",
            "1", "--val-tiles", "8", "--quick", "--threads", "1", "--models", "satdifuser",
            "--cache-dir", str(cache), "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def runs(dubai_root: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Path]:  # fmt: skip
    """Output folders of `--seed 1`, `--seeds 1` and `--seeds 0,1` (seed 1 last: no leak from
    the earlier seed's run into the later one)."""
    outs = {}
    for key, extra in (("seed1", ["--seed", "1"]), ("seeds1", ["--seeds", "1"]),
                       ("seeds01", ["--seeds", "0,1"])):  # fmt: skip
        out = tmp_path_factory.mktemp(key) / "out"
        assert dubai.run(_argv(dubai_root, out, cache_dir, *extra)) == 0
        outs[key] = out
    return outs


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["confusion"] == b["confusion"]
    assert a["miou"] == b["miou"] and a["overall_accuracy"] == b["overall_accuracy"]
    assert a["iou"] == b["iou"]


def test_seeds_with_one_seed_is_the_seed_option(runs: dict[str, Path]) -> None:
    one, listed = _results(runs["seed1"]), _results(runs["seeds1"])
    _same_run(one["models"]["satdifuser"]["metrics"], listed["models"]["satdifuser"]["metrics"])
    for res in (one, listed):  # the single-seed layout and report of today
        assert res["options"]["seed"] == 1 and res["options"]["seeds"] == [1]
        arm = res["models"]["satdifuser"]
        assert "runs" not in arm and "summary" not in arm
        assert list(arm["seconds"]) == ["build", "extract_train", "train", "eval"]
        assert arm["train"]["epochs"] >= 1 and "final_loss" in arm["train"]
    assert (runs["seeds1"] / "runs" / "satdifuser" / "model" / "config.json").is_file()
    assert (runs["seeds1"] / "overlay_satdifuser.png").is_file()
    md = (runs["seeds1"] / "results.md").read_text()
    assert ", seed 1, the last epoch tested" in md and "±" not in md and "Per seed" not in md
    # the data order follows the seed: another seed is another run
    other = _results(runs["seeds01"])["models"]["satdifuser"]["runs"][0]
    assert other["seed"] == 0 and other["metrics"]["confusion"] != one["models"]["satdifuser"][
        "metrics"]["confusion"]  # fmt: skip


def test_each_seed_of_a_list_is_the_full_run_of_that_seed(runs: dict[str, Path]) -> None:
    alone = _results(runs["seed1"])["models"]["satdifuser"]["metrics"]
    arm = _results(runs["seeds01"])["models"]["satdifuser"]
    assert arm["seeds"] == [0, 1] and [r["seed"] for r in arm["runs"]] == [0, 1]
    _same_run(arm["runs"][1]["metrics"], alone)  # seed 1 after seed 0 == seed 1 on its own
    out = runs["seeds01"]
    for seed in (0, 1):
        run = arm["runs"][seed]
        assert Path(run["model_dir"]) == out / "runs" / "satdifuser" / f"seed{seed}" / "model"
        assert (Path(run["model_dir"]) / "config.json").is_file()
        assert run["files"] == [f"overlay_satdifuser_seed{seed}.png",
                                f"fusion_weights_satdifuser_seed{seed}.png"]  # fmt: skip
        assert all((out / f).stat().st_size > 0 for f in run["files"])
    assert not (out / "overlay_satdifuser.png").exists()
    assert not (out / "results.partial.json").exists()


def test_report_gives_mean_and_sample_std_of_the_seed_values(runs: dict[str, Path]) -> None:
    res = _results(runs["seeds01"])
    arm = res["models"]["satdifuser"]
    sm, per = arm["summary"], [r["metrics"] for r in arm["runs"]]
    assert sm["seeds"] == [0, 1] and "sample" in sm["std"]
    for key in ("miou", "overall_accuracy"):
        values = [m[key] for m in per]
        assert sm[key]["values"] == values
        assert sm[key]["mean"] == pytest.approx(statistics.fmean(values))
        assert sm[key]["std"] == pytest.approx(statistics.stdev(values))  # n - 1
        assert sm[key]["std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    for c in DUBAI_CLASSES:
        known = [m["iou"][c] for m in per if m["iou"][c] is not None]
        assert sm["iou"][c]["n"] == len(known)
        if known:
            assert sm["iou"][c]["mean"] == pytest.approx(statistics.fmean(known))
    # shared phases once, training and scoring summed over the seeds
    s = arm["seconds"]
    assert list(s) == ["build", "extract_train", "train", "eval"]
    assert s["train"]["wall_s"] == pytest.approx(sum(r["seconds"]["train"]["wall_s"]
                                                     for r in arm["runs"]))  # fmt: skip
    md = (runs["seeds01"] / "results.md").read_text()
    assert md == markdown_section(res)
    row = next(line for line in md.splitlines() if line.startswith("| satdifuser | "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{100 * sm['miou']['mean']:.1f} ± {100 * sm['miou']['std']:.1f}"
    assert cells[2] == (f"{100 * sm['overall_accuracy']['mean']:.1f} ± "
                        f"{100 * sm['overall_accuracy']['std']:.1f}")  # fmt: skip
    assert f"Headline, mean mIoU: satdifuser {cells[1]}." in md
    assert "seeds 0, 1 (one full run each" in md
    assert "over the 2 seeds 0, 1 (sample standard deviation, n - 1)" in md
    for run in arm["runs"]:
        m = run["metrics"]
        assert (f"| satdifuser | {run['seed']} | {100 * m['miou']:.1f} | "
                f"{100 * m['overall_accuracy']:.1f} |") in md  # fmt: skip
    assert "| model | build | extract train | train (2 seeds) | eval (2 seeds) |" in md


def test_headline_compares_the_means_of_two_arms() -> None:
    def arm(values: list[float]) -> dict[str, Any]:
        iou = {c: seed_stats(values) for c in DUBAI_CLASSES}
        runs = [{"seed": s, "metrics": {"miou": v, "overall_accuracy": v,
                                        "iou": dict.fromkeys(DUBAI_CLASSES, v)},
                 "train": {"final_loss": 1.0}} for s, v in enumerate(values)]  # fmt: skip
        return {"summary": {"miou": seed_stats(values), "overall_accuracy": seed_stats(values),
                            "iou": iou, "final_loss": seed_stats([1.0] * len(values))},
                "trainable_params": 1000, "runs": runs,
                "train": {"crop": 128, "flips": True},
                "seconds": {k: {"wall_s": 1.0, "cpu_s": 1.0}
                            for k in ("build", "extract_train", "train", "eval")},
                "extractor": {"backbone": "x", "stages": ["a"]}}  # fmt: skip

    results = {
        "date": "2026-12-04T00:00:00", "command": "satdifuser bench dubai --seeds 0,1,2",
        "machine": {"cpu": "c", "cores": 2, "torch": "2", "threads": 1},
        "data": {"train_tiles": [1], "val_tiles": [8], "train_images": ["a"],
                 "val_images": ["b"], "val_native_pixels": 10},
        "options": {**vars(dubai.resolve_options(dubai.build_parser().parse_args(
            ["--seeds", "0,1,2"])))},
        "classes": list(DUBAI_CLASSES),
        "models": {"first": arm([0.40, 0.44, 0.46]), "second": arm([0.50, 0.40, 0.42])},
        "seconds": {"load_data": {"wall_s": 1.0, "cpu_s": 1.0},
                    "total": {"wall_s": 2.0, "cpu_s": 2.0}},
    }  # fmt: skip
    md = markdown_section(results)
    # means 43.3 and 44.0; sample std 3.1 and 5.3
    assert ("Headline, mean mIoU: first 43.3 ± 3.1, second 44.0 ± 5.3; first - second: -0.7 "
            "points.") in md  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--seeds", ""], "--seeds '': no seed given; give distinct integers in"),
        (["--seeds", ","], "--seeds ',': no seed given"),
        (["--seeds", "0,,2"], "--seeds '0,,2': an empty item"),
        (["--seeds", "0,1,0"], "--seeds '0,1,0': 0 is given twice"),
        (["--seeds=-1,2"], "--seeds '-1,2': -1 is out of range"),
        (["--seeds", "0,x"], "--seeds '0,x': 'x' is not an integer"),
        (["--seeds", "0,1", "--seed", "3"], "--seed 3 and --seeds '0,1' exclude each other"),
        (["--seed=-1"], r"--seed=-1 must be in \[0, 4294967295\]"),
    ],
)
def test_bad_seed_lists_are_refused_before_any_work(
    dubai_root: Path, tmp_path: Path, extra: list[str], match: str
) -> None:
    argv = _argv(dubai_root, tmp_path / "o", tmp_path / "cache", *extra)
    with pytest.raises(ConfigError, match=match):
        dubai.run(argv)
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists()


def test_cli_reports_a_bad_seed_list_as_one_line(
    dubai_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(dubai_root, tmp_path / "o", tmp_path / "cache", "--seeds", "1,1")
    msg = cli_error(["bench", "dubai", *argv], capsys)
    assert msg.endswith("--seeds '1,1': 1 is given twice; give distinct integers in "
                        "[0, 4294967295] separated by commas, e.g. 0,1,2")


def test_partial_results_keep_finished_seeds_and_arms(
    dubai_root: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from satdifuser import tasks
    from satdifuser.baselines import efficientnet_lite

    real_fit, calls = tasks.fit_and_test, []

    def dies_on_the_second_efficientnet_seed(task: Any, data: Any, run_dir: Path,
                                             **kw: Any) -> Any:  # fmt: skip
        calls.append(run_dir)
        if "efficientnet" in str(run_dir) and run_dir.name == "seed1":
            raise RuntimeError("killed")
        return real_fit(task, data, run_dir, **kw)

    real_build = dubai.build_extractor

    def build(name: str, args: Any) -> Any:  # efficientnet's arm on the tiny backbone
        return real_build("satdifuser", args)

    monkeypatch.setattr(efficientnet_lite, "_import_efficientnet", lambda: None)
    monkeypatch.setattr(dubai, "build_extractor", build)
    monkeypatch.setattr(tasks, "fit_and_test", dies_on_the_second_efficientnet_seed)
    out = tmp_path / "out"
    argv = _argv(dubai_root, out, cache_dir, "--seeds", "0,1", "--models",
                 "satdifuser,efficientnet", "--overlays", "0")  # fmt: skip
    with pytest.raises(RuntimeError, match="killed"):
        dubai.run(argv)
    assert not (out / "results.json").exists()
    part = json.loads((out / "results.partial.json").read_text())
    assert part["models"]["satdifuser"]["seeds"] == [0, 1]  # the finished arm
    assert part["models"]["satdifuser"]["summary"]["miou"]["std"] is not None
    eff = part["models"]["efficientnet"]  # the arm that died: its finished seed
    assert eff["seeds"] == [0] and eff["summary"]["miou"]["n"] == 1
    assert eff["summary"]["miou"]["std"] is None
    assert [p.name for p in calls] == ["seed0", "seed1", "seed0", "seed1"]
