"""``satdifuser bench speed --quick``: runs end to end, writes consistent JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from satdifuser.bench import speed
from satdifuser.cli.main import main
from satdifuser.errors import ConfigError


def test_quick_speed_benchmark_writes_consistent_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "speed.json"
    argv = ["--quick", "--images", "1", "--repeats", "1", "--warmup", "0"]
    argv += ["--dtypes", "float32", "--gemm-size", "64", "--threads", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    try:  # one thread: tiny ops on a shared 2-core machine are much faster without OpenMP waits
        assert speed.run(argv) == 0
    finally:
        torch.set_num_threads(threads)
    report = json.loads(out.read_text())
    ref, ours = report["results"]
    assert (ref["pipeline"], ours["pipeline"], ours["dtype"]) == ("reference", "ours", "float32")
    flops = report["flops"]
    assert ref["flops_per_image"] == flops["vae_encoder"] + 10 * flops["unet_full_pass"]
    # ours: one VAE pass + 3 (truncated) UNet passes < reference: 10 full passes
    assert flops["vae_encoder"] < ours["flops_per_image"] < ref["flops_per_image"]
    assert ours["flops_per_image"] <= flops["vae_encoder"] + 3 * flops["unet_full_pass"]
    assert ours["speedup_vs_reference"] == pytest.approx(ref["s_per_image"] / ours["s_per_image"])
    assert ours["speedup_vs_reference"] > 1
    assert report["gemm_flops_per_s"]["float32"] > 0 and ours["peak_rss_gb"] > 0
    assert report["config"]["backbone"] == "tiny-sd" and report["command"].endswith(str(out))
    table = capsys.readouterr().out
    assert "reference" in table and "ours" in table and "goals:" in table


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--images 0"):
        speed.run(["--quick", "--images", "0", "--out", str(tmp_path / "x.json")])
    with pytest.raises(ConfigError, match="float64"):
        speed.run(["--quick", "--dtypes", "float64", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_bench_dispatcher_rejects_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["bench", "--help"]) == 0
    assert "speed" in capsys.readouterr().out
