"""Two extraction processes (torchrun, gloo on CPU) write the single-process cache, bytewise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fixtures.eurosat import make as fx
from satdifuser.cli.main import main

ARGS = ["--backbone", "tiny-pixel", "--timesteps", "21,61", "--no-progress", "--threads", "1",
        "--split", "all", "--batch-size", "2", "--shard-size", "4"]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_two_gloo_processes_write_the_single_process_cache(tmp_path: Path) -> None:
    root = fx.make(tmp_path / "data")
    common = [*ARGS, "--root", str(root)]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
              "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]  # fmt: skip
    cmd = [*launch, "-m", "satdifuser", "extract", *common, "--cache-dir", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0: wrote 7 shards" in proc.stdout and "rank 1: wrote 6 shards" in proc.stdout
    assert "2 rank(s)" in proc.stdout and "cache complete" in proc.stdout
    assert main(["extract", *common, "--cache-dir", str(tmp_path / "one")]) == 0
    assert _files(tmp_path / "ddp" / "all") == _files(tmp_path / "one" / "all")


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
        assert (tmp_path / "arr" / "all" / "index.json").exists() == (rank == 0)
    assert main(["extract", *common, "--cache-dir", str(tmp_path / "one")]) == 0
    assert _files(tmp_path / "arr" / "all") == _files(tmp_path / "one" / "all")
