"""Two extraction processes (torchrun, gloo on CPU) write the single-process cache, bytewise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ddp_launch import folder_bytes, free_port
from fixtures.eurosat import make as fx
from one_thread import _one_thread  # noqa: F401 (autouse fixture)
from satdifuser.cli.main import main

ARGS = ["--backbone", "tiny-pixel", "--timesteps", "21,61", "--no-progress", "--threads", "1",
        "--split", "all", "--batch-size", "2", "--shard-size", "4"]  # fmt: skip


def test_two_gloo_processes_write_the_single_process_cache(tmp_path: Path) -> None:
    root = fx.make(tmp_path / "data")
    common = [*ARGS, "--root", str(root)]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
              "--master_addr", "127.0.0.1", "--master_port", str(free_port())]  # fmt: skip
    cmd = [*launch, "-m", "satdifuser", "extract", *common, "--cache-dir", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0: wrote 7 shards" in proc.stdout and "rank 1: wrote 6 shards" in proc.stdout
    assert "2 rank(s)" in proc.stdout and "cache complete" in proc.stdout
    assert main(["extract", *common, "--cache-dir", str(tmp_path / "one")]) == 0
    (ddp,), (one,) = list((tmp_path / "ddp").glob("all-*")), list((tmp_path / "one").glob("all-*"))
    assert ddp.name == one.name and folder_bytes(ddp) == folder_bytes(one)


def test_job_array_ranks_without_a_process_group_finish_the_cache(tmp_path: Path) -> None:
    root = fx.make(tmp_path / "data")
    common = [*ARGS, "--root", str(root), "--limit", "10"]
    for rank in (1, 0):  # e.g. two tasks of a SLURM job array, no rendezvous
        argv = [
            *common,
            "--cache-dir",
            str(tmp_path / "arr"),
            "--rank",
            str(rank),
            "--world-size",
            "2",
        ]
        assert main(["extract", *argv]) == 0
        (arr,) = list((tmp_path / "arr").glob("all-*"))
        assert (arr / "index.json").exists() == (rank == 0)
    assert main(["extract", *common, "--cache-dir", str(tmp_path / "one")]) == 0
    (one,) = list((tmp_path / "one").glob("all-*"))
    assert arr.name == one.name and len(list(one.glob("shard-*"))) > 1
    assert folder_bytes(arr) == folder_bytes(one)
