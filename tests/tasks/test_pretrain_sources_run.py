"""`satdifuser pretrain` with sources: the EuroSAT-only default trains exactly as before, mixed runs
resume exactly, sources are fixed on resume, checked before a run folder exists, and recorded in
the run's history and the model card."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tests.tasks.test_pretrain import TINY, _assert_equal, _fake_root, _weights
from tests.tasks.test_pretrain_errors import FLAGS
from tests.tasks.test_pretrain_sources import _folder

from fixtures.mask_folder import make as maskfx
from satdifuser.cli.main import main
from satdifuser.pretrain import PretrainConfig, PretrainTrainer, RunOptions
from satdifuser.pretrain.checkpoint import latest_checkpoint, load_checkpoint
from satdifuser.pretrain.image_pool import BatchOrder, load_images, pretrain_paths
from satdifuser.pretrain.sources import gather_sources, parse_source, resolve_root
from satdifuser.pretrain.sources_load import load_pool
from satdifuser.pretrain.trainer import _lr_at


def _old_train_step(tr: PretrainTrainer, images: torch.Tensor, order: BatchOrder) -> float:
    """``train_step`` as it was before sources existed (commit 4f5c448), verbatim but for
    ``images``/``order`` being passed in: the trajectory the live EuroSAT run must keep."""
    cfg, gen = tr.cfg, tr.gen
    idx = torch.from_numpy(order.next_indices()).to(tr.device)
    x = images[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    b = x.shape[0]
    if cfg.flips:
        hflip = (torch.rand(b, generator=gen) < 0.5).to(tr.device)[:, None, None, None]
        vflip = (torch.rand(b, generator=gen) < 0.5).to(tr.device)[:, None, None, None]
        x = torch.where(hflip, x.flip(-1), x)
        x = torch.where(vflip, x.flip(-2), x)
    noise = torch.randn(x.shape, generator=gen).to(tr.device)
    t = torch.randint(0, cfg.num_train_timesteps, (b,), generator=gen).to(tr.device)
    noisy = tr.scheduler.add_noise(x, noise, t)
    target = noise if cfg.prediction_type == "epsilon" else tr.scheduler.get_velocity(x, noise, t)
    for group in tr.optimizer.param_groups:
        group["lr"] = _lr_at(cfg, tr.step, tr.warm_start_step)
    with torch.autocast(tr.device.type, dtype=torch.bfloat16, enabled=tr.use_bf16):
        pred = tr.unet(noisy, t).sample
    loss = F.mse_loss(pred.float(), target)
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(tr.unet.parameters(), cfg.grad_clip)
    tr.optimizer.step()
    tr.ema.update(tr.unet, tr.step)
    tr.step += 1
    return float(loss.detach())


def _distinct_root(root: Path, n: int) -> Path:
    """``_fake_root`` with a different image in every file (its images are all alike)."""
    _fake_root(root, n=n, size=20)
    rng = np.random.default_rng(1)
    for path in sorted((root / "eurosat_rgb").rglob("*.jpg")):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
    return root


def test_default_eurosat_path_keeps_batches_and_draws(tmp_path: Path) -> None:
    root = _distinct_root(tmp_path / "data", n=10)
    config = PretrainConfig.from_dict(TINY)  # batch 4 over 10 images: crosses an epoch in 3 steps
    spec = resolve_root(gather_sources(None, None)[0], root)  # what the CLI builds by default
    pool = load_pool([spec], config.sample_size, lambda _m: None)
    options = RunOptions(progress=False, sample_every=0)
    new = PretrainTrainer(tmp_path / "new", config, pool, options)
    seen: list[torch.Tensor] = []
    real = new._next_images
    new._next_images = lambda: seen.append(real()) or seen[-1]  # type: ignore[method-assign]
    losses = [new.train_step() for _ in range(3)]

    array = load_images(pretrain_paths(root), config.sample_size)
    assert len({a.tobytes() for a in array}) == 10  # the order matters: every image differs
    old = PretrainTrainer(tmp_path / "old", config, array, options)
    order = BatchOrder(len(array), config.batch_size, config.seed)
    ref = BatchOrder(len(array), config.batch_size, config.seed)
    for k in range(3):
        assert torch.equal(seen[k], torch.from_numpy(array[ref.next_indices()]))
    images = torch.from_numpy(array)
    assert losses == [_old_train_step(old, images, order) for _ in range(3)]
    assert torch.equal(new.gen.get_state(), old.gen.get_state())  # same draws, same order
    for (k, a), b in zip(
        new.unet.state_dict().items(), old.unet.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


def _mixed_pool(tmp_path: Path, size: int = 16):
    specs = [
        parse_source(f"image_folder:{_folder(tmp_path / 'small', 5, (16, 16))},weight=2"),
        parse_source(f"image_folder:{_folder(tmp_path / 'big', 2, (60, 50))},crops=16+32"),
    ]
    return load_pool(specs, size, lambda _m: None)


def test_mixed_resume_equals_uninterrupted(tmp_path: Path) -> None:
    config = PretrainConfig.from_dict(TINY)
    pool = _mixed_pool(tmp_path / "data")

    def run(run_dir: Path, **opts) -> PretrainTrainer:
        tr = PretrainTrainer(
            run_dir, config, pool, RunOptions(progress=False, sample_every=0, **opts)
        )
        tr.run()
        return tr

    run(tmp_path / "split", steps=2)
    assert run(tmp_path / "split", steps=2).step == 4
    run(tmp_path / "whole", max_steps=4)
    _assert_equal(_weights(tmp_path / "split"), _weights(tmp_path / "whole"))
    state = load_checkpoint(latest_checkpoint(tmp_path / "split"))["state"]
    assert state["order"]["kind"] == "mixed" and state["order"]["n"] == 7
    records = json.loads((tmp_path / "split" / "sources.json").read_text())["sources"]
    assert [(r["count"], r["weight"], r["crops"]) for r in records] == [
        (5, 2.0, None),
        (2, 1.0, [16, 32]),
    ]


def _cli(tmp_path: Path, *extra: str, out: str = "run") -> int:
    root = _fake_root(tmp_path / "data")
    argv = ["pretrain", "--out", str(tmp_path / out), "--data", str(root), *FLAGS, *extra]
    return main(argv)


def test_cli_mix_records_sources_in_history_and_card(tmp_path: Path, capsys) -> None:
    big = _folder(tmp_path / "big", 2, (60, 50))
    yaml_file = tmp_path / "sources.yaml"
    yaml_file.write_text(f"- kind: image_folder\n  root: {big}\n  scale: 0.5\n  crops: [16]\n")
    assert (
        _cli(tmp_path, "--steps", "2", "--source", "eurosat,weight=3", "--sources", str(yaml_file))
        == 0
    )
    err = capsys.readouterr().err
    assert "source eurosat" in err and "6 images" in err and "2 images" in err
    run = tmp_path / "run"
    kinds = [r["kind"] for r in json.loads((run / "sources.json").read_text())["sources"]]
    assert kinds == ["image_folder", "eurosat"]  # --sources items first, then --source
    history = load_checkpoint(latest_checkpoint(run))["state"]["totals"]["runs"]
    assert [(s["kind"], s["count"], s["weight"]) for s in history[0]["sources"]] == [
        ("image_folder", 2, 1.0),
        ("eurosat", 6, 3.0),
    ]
    out = tmp_path / "export"
    argv = ["pretrain", "--export", str(run), "--to", str(out), "--sample-images", "1"]
    assert main([*argv, "--sample-steps", "1"]) == 0
    card = (out / "README.md").read_text()
    assert (
        "- Data: `image_folder` `big`: 2 images, weight 1 (25% of samples), scale 0.5, "
        "random crops of 16 px" in card
    )
    assert "- Data: `eurosat` `data`: 6 images, weight 3 (75% of samples)" in card
    assert "`unlabeled` pool" in card
    assert json.loads((out / "training.json").read_text())["sources"][1]["count"] == 6


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            ["--source", "eurosat,weight=2"],
            r"source 1 \(eurosat:.*data\): weight=2.0 differs from 1.0",
        ),
        (["--source", "eurosat", "--source", "IMG"], r"2 source\(s\) given but 1 stored"),
        (["--source", "eurosat,crops=16"], r"crops=\[16\] differs from None"),
    ],
)
def test_resume_with_changed_sources_is_refused(
    tmp_path: Path, change: list[str], match: str, capsys
) -> None:
    from tests.tasks.test_pretrain_errors import _one_line_error

    assert _cli(tmp_path, "--steps", "1") == 0
    before = (tmp_path / "run" / "sources.json").read_text()
    img = str(_folder(tmp_path / "img", 2, (16, 16)))
    capsys.readouterr()
    assert (
        _cli(
            tmp_path, "--steps", "1", *[f"image_folder:{img}" if c == "IMG" else c for c in change]
        )
        == 2
    )
    line = _one_line_error(capsys.readouterr().err)
    assert re.search(match, line) and "a run keeps its sources on resume" in line
    assert (tmp_path / "run" / "sources.json").read_text() == before
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"))["state"]["step"] == 1
    assert _cli(tmp_path, "--steps", "1", "--source", "eurosat") == 0  # the same sources resume


def test_run_made_before_sources_resumes_only_on_eurosat(tmp_path: Path, capsys) -> None:
    assert _cli(tmp_path, "--steps", "1") == 0
    (tmp_path / "run" / "sources.json").unlink()  # as a run made before --source existed
    img = _folder(tmp_path / "img", 2, (16, 16))
    capsys.readouterr()
    assert _cli(tmp_path, "--steps", "1", "--source", f"image_folder:{img}") == 2
    assert "trained on the EuroSAT unlabeled pool only" in capsys.readouterr().err
    assert not (tmp_path / "run" / "sources.json").exists()
    assert _cli(tmp_path, "--steps", "1") == 0
    assert json.loads((tmp_path / "run" / "sources.json").read_text())["sources"][0]["count"] == 6


BAD_SOURCES = [
    (["--source", "nosuch:/x"], r"kind 'nosuch' is unknown"),
    (["--source", "image_folder:MISSING"], r"does not exist"),
    (["--source", "image_folder:IMG,weight=-1"], r"weight=-1.0 must be"),
    (["--source", "image_folder:IMG,crops=7"], r"crops=\[7\] must be sides >= 8"),
    (["--source", "image_folder:VAL"], r"is a validation/test folder"),
    (["--source", "mask_folder:DUBAI,tiles=8"], r"tile 8 is the validation tile"),
    (["--source", "geobench:IMG,task=m-eurosat,split=test"], r"split='test' cannot be used"),
    (["--sources", "MISSING.yaml"], r"--sources .*missing.yaml does not exist"),
    (["--split", "val"], r"split='val' cannot be used for pre-training"),
]


@pytest.mark.parametrize(("extra", "match"), BAD_SOURCES)
def test_bad_source_is_one_line_and_creates_nothing(
    tmp_path: Path, extra: list[str], match: str, capsys
) -> None:
    from tests.tasks.test_pretrain_errors import _one_line_error

    img = _folder(tmp_path / "img", 2, (16, 16))
    _folder(tmp_path / "ds" / "val" / "A", 1, (16, 16))
    dubai = maskfx.make_dubai(tmp_path)
    paths = {
        "IMG": img,
        "VAL": tmp_path / "ds" / "val",
        "DUBAI": dubai,
        "MISSING": tmp_path / "missing",
    }
    for key, value in paths.items():
        extra = [e.replace(key, str(value)) for e in extra]
    assert _cli(tmp_path, "--steps", "1", *extra) == 2
    assert re.search(match, _one_line_error(capsys.readouterr().err))
    assert not (tmp_path / "run").exists()


def test_export_of_a_run_without_sources_keeps_the_eurosat_card(tmp_path: Path) -> None:
    assert _cli(tmp_path, "--steps", "1") == 0
    shutil.copytree(tmp_path / "run", tmp_path / "legacy")
    (tmp_path / "legacy" / "sources.json").unlink()
    for run in ("run", "legacy"):
        argv = ["pretrain", "--export", str(tmp_path / run), "--to", str(tmp_path / f"x{run}")]
        assert main([*argv, "--sample-images", "1", "--sample-steps", "1"]) == 0
    legacy = (tmp_path / "xlegacy" / "README.md").read_text()
    assert "`unlabeled` pool" in legacy and "- Data:" not in legacy
    card = (tmp_path / "xrun" / "README.md").read_text()
    assert (
        "- Data: `eurosat` `data`: 6 images, weight 1 (100% of samples), scale 1, "
        "whole images resized to 16" in card
    )
    assert np.isfinite(json.loads((tmp_path / "xrun" / "training.json").read_text())["steps"])
