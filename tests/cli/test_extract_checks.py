"""``satdifuser extract`` refuses bad input in one line, before it creates or calls anything."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.eurosat import make as fx
from one_thread import _one_thread  # noqa: F401 (autouse fixture)
from satdifuser.cli.main import main
from satdifuser.errors import ConfigError
from satdifuser.features.extractor import FeatureExtractor

ARGS = ["--backbone", "tiny-pixel", "--timesteps", "21", "--no-progress", "--threads", "1"]
EXTRACTOR = (
    "      class_path: satdifuser.features.FeatureExtractor\n"
    "      init_args: {backbone: tiny-pixel, timesteps: [21], image_size: 16}\n"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make(tmp_path_factory.mktemp("eurosat"))


def _extract(root: Path, cache: Path, *extra: str) -> int:
    return main(["extract", *ARGS, "--root", str(root), "--cache-dir", str(cache), *extra])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("satdifuser extract: error: "), err
    return lines[0]


# -- item 1: only Dataset / LightningDataModule / FeatureExtractor classes are called ---------

CALLABLES = {
    "os.system": "{{command: 'touch {marker}'}}",
    "subprocess.run": "{{args: [touch, '{marker}']}}",
    "builtins.print": "{{sep: 'PRINTED'}}",
    "builtins.open": "{{file: '{marker}', mode: w}}",
}


def _config(tmp_path: Path, data: str, extractor: str = EXTRACTOR) -> Path:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "model:\n  class_path: satdifuser.tasks.ClassificationTask\n  init_args:\n"
        f"    num_classes: 10\n    extractor:\n{extractor}data:\n{data}"
    )
    return cfg


@pytest.mark.parametrize("target", sorted(CALLABLES))
@pytest.mark.parametrize("where", ["data", "extractor", "nested"])
def test_config_naming_a_callable_that_is_no_datamodule_is_refused_uncalled(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str], target: str, where: str
) -> None:
    marker = tmp_path / "pwned"
    node = f"class_path: {target}, init_args: {CALLABLES[target].format(marker=marker)}"
    good_data = f"  class_path: satdifuser.data.EuroSATDataModule\n  init_args: {{root: {root}}}\n"
    if where == "data":
        cfg = _config(tmp_path, f"  {{{node}}}\n")
    elif where == "extractor":
        cfg = _config(tmp_path, good_data, extractor=f"      {{{node}}}\n")
    else:  # a class_path where the data module expects a plain path: kept as data, never called
        cfg = _config(tmp_path, "  class_path: satdifuser.data.EuroSATDataModule\n"
                      f"  init_args: {{root: {{{node}}}}}\n")  # fmt: skip
    cache = tmp_path / "cache"
    argv = ["extract", "--config", str(cfg), "--cache-dir", str(cache), "--no-progress"]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    if where != "nested":
        assert "ConfigError" in line and str(cfg) in line
        assert f"{target} does not correspond to a subclass" in line
    assert not marker.exists() and not cache.exists()
    assert "PRINTED" not in capsys.readouterr().out


@pytest.mark.parametrize("target", sorted(CALLABLES))
def test_dataset_option_naming_a_callable_that_is_no_dataset_is_refused_uncalled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    marker = tmp_path / "pwned"
    values = {"os.system": f"command=touch {marker}", "subprocess.run": f"args=[touch, {marker}]",
              "builtins.print": "sep=PRINTED", "builtins.open": f"file={marker}"}  # fmt: skip
    cache = tmp_path / "cache"
    argv = ["extract", "--dataset", target, "--data-arg", values[target], "--cache-dir", str(cache)]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert f"{target} is not a torch.utils.data.Dataset subclass" in line
    assert not marker.exists() and not cache.exists()


# -- one-line errors for bad values, nothing created --------------------------------------------

BAD_VALUES = [
    (["--max-gb", "nan"], "--max-gb"),
    (["--max-gb", "inf"], "--max-gb"),
    (["--max-gb", "0"], "--max-gb"),
    (["--max-gb", "-2"], "--max-gb"),
    (["--timesteps", "abc"], "--timesteps"),
    (["--timesteps", "21,x"], "--timesteps"),
    (["--threads", "-1"], "--threads"),
    (["--num-workers", "-3"], "--num-workers"),
    (["--batch-size", "0"], "--batch-size"),
    (["--limit", "0"], "--limit"),
    (["--device", "banana"], "--device"),
    (["--device", "cuda:7"], "--device"),  # no machine of ours has 8 GPUs
    (["--device", "cpu:0"], "--device"),
    (["--bogus-option"], "--bogus-option"),
]


@pytest.mark.parametrize(("extra", "option"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_option_value_is_a_one_line_error_and_creates_nothing(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str], extra: list[str], option: str
) -> None:
    cache = tmp_path / "cache"
    assert _extract(root, cache, *extra) == 2
    line = _one_line_error(capsys)
    assert "ConfigError" in line and option in line and "--help" in line
    assert not cache.exists()


def test_device_cuda_without_a_gpu_names_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert main(["extract", "--device", "cuda:0", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "torch sees none on this machine" in _one_line_error(capsys)


@pytest.mark.parametrize("text", ["42\n", "- a\n- b\n", "just text\n", ""])
def test_config_that_is_not_a_mapping_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    assert main(["extract", "--config", str(cfg), "--cache-dir", str(tmp_path / "c")]) == 2
    line = _one_line_error(capsys)
    assert "needs model.init_args.extractor and data" in line


def test_max_gb_nan_is_refused_by_the_builder_too(tmp_path: Path, root: Path) -> None:
    from satdifuser.data.eurosat import EuroSAT
    from satdifuser.features.cache import FeatureCacheBuilder

    ex = FeatureExtractor("tiny-pixel", timesteps=[21])
    builder = FeatureCacheBuilder(EuroSAT(root, split="val"), ex, tmp_path / "c")
    with pytest.raises(ConfigError, match="--max-gb nan must be a finite number > 0"):
        builder.prepare(max_gb=math.nan)
    assert not (tmp_path / "c").exists()


# -- a failed run's plan.json protects nothing unless a shard was written -----------------------


def _fails(capsys: pytest.CaptureFixture[str], root: Path, cache: Path, *extra: str) -> None:
    try:  # main may print the unexpected error as one line or let it propagate
        code = _extract(root, cache, *extra)
    except RuntimeError as exc:
        assert "simulated failure" in str(exc)
        return
    assert code != 0
    assert "simulated failure" in capsys.readouterr().err


def _failing_forward(monkeypatch: pytest.MonkeyPatch, after_calls: int) -> None:
    real = FeatureExtractor.forward
    calls = {"n": 0}

    def forward(self: FeatureExtractor, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise RuntimeError("simulated failure")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FeatureExtractor, "forward", forward)


def test_plan_left_by_a_run_without_shards_does_not_block_another_config(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--split", "val", "--batch-size", "2", "--shard-size", "2"]
    with monkeypatch.context() as m:
        _failing_forward(m, after_calls=0)
        _fails(capsys, root, tmp_path, *common)
    (folder,) = (p for p in tmp_path.glob("val-*") if p.is_dir())
    assert (folder / "plan.json").is_file() and not list(folder.glob("shard-*"))
    assert _extract(root, tmp_path, *common, "--seed", "1") == 0
    assert "cache complete" in capsys.readouterr().out
    assert _extract(root, tmp_path, *common) == 0  # the failed config itself completes
    assert (folder / "index.json").is_file()


def test_plan_with_a_shard_written_still_protects_it(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--split", "val", "--batch-size", "2", "--shard-size", "2"]
    with monkeypatch.context() as m:
        _failing_forward(m, after_calls=1)
        _fails(capsys, root, tmp_path, *common)
    (folder,) = (p for p in tmp_path.glob("val-*") if p.is_dir())
    shards = sorted(folder.glob("shard-*.safetensors"))
    data = [p.read_bytes() for p in shards]
    assert len(shards) == 1
    capsys.readouterr()
    # another config goes to its own folder; the written shard is kept and reused on rerun
    assert _extract(root, tmp_path, *common, "--seed", "1") == 0
    assert [p.read_bytes() for p in shards] == data
    assert _extract(root, tmp_path, *common) == 0
    assert "resuming: 1 of" in capsys.readouterr().out
    assert [p.read_bytes() for p in shards] == data


# -- SIGINT ------------------------------------------------------------------------------------


def test_sigint_says_the_cache_resumes_on_rerun(root: Path, tmp_path: Path) -> None:
    # many small shards and more work per image (8 timesteps, 64 px), so that the run is still
    # going when the signal arrives, also on a fast or an idle machine
    cmd = [sys.executable, "-m", "satdifuser", "extract", *ARGS, "--root", str(root),
           "--cache-dir", str(tmp_path), "--split", "all", "--batch-size", "1",
           "--shard-size", "1", "--timesteps", "21,61,161,261,361,461,561,661",
           "--image-size", "64"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # a shell that started this test run in the background (`... &`) hands SIGINT down as
    # ignored; the child must get the default disposition, as in a terminal
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while (
        not list(tmp_path.glob("all-*/shard-00000.safetensors"))
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "interrupted" in err.decode() and "resumes" in err.decode()
    assert err.decode().strip().count("\n") == 0
