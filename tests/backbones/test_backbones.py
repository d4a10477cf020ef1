"""Backbones: registry, attributes, persistence, checkpoint layouts, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from satdifuser.backbones import BACKBONES, DiffusionBackbone, create_backbone
from satdifuser.backbones.loading import build_unet
from satdifuser.backbones.presets import SD_SCHEDULER, TINY_UNET, TINY_VAE, build_random
from satdifuser.errors import CheckpointError, ConfigError, UnknownNameError


@pytest.fixture(scope="module")
def tiny_sd() -> DiffusionBackbone:
    return create_backbone("tiny-sd")


def test_registry_names_and_docstrings() -> None:
    expected = {"tiny-sd", "tiny-pixel", "tiny-diffusionsat", "sd21", "sd21-base"}
    expected |= {"diffusionsat-256", "diffusionsat-512", "satdifuser-eurosat-tiny"}
    expected |= {"satdifuser-aerial-tiny"}
    assert expected <= set(BACKBONES.names())
    for name in BACKBONES.names():
        assert (BACKBONES.get(name).__doc__ or "").strip(), f"{name} has no docstring"


def test_tiny_sd_attributes(tiny_sd: DiffusionBackbone) -> None:
    assert tiny_sd.vae is not None
    assert (tiny_sd.in_channels, tiny_sd.latent_downsample, tiny_sd.total_downsample) == (3, 2, 8)
    assert tiny_sd.sample_size == 32
    assert tiny_sd.prediction_type == "epsilon"
    assert tiny_sd.alphas_cumprod.shape == (1000,)
    emb = tiny_sd.prompt_embedding("a satellite image")
    assert emb is not None and emb.shape == (1, 77, 32) and not emb.any()
    assert not any(p.requires_grad for p in tiny_sd.parameters())
    tiny_sd.train()
    assert not tiny_sd.training and not tiny_sd.unet.training


def test_tiny_pixel_has_no_vae_and_no_text() -> None:
    bb = create_backbone("tiny-pixel")
    assert bb.vae is None and bb.latent_downsample == 1 and bb.total_downsample == 2
    assert bb.prompt_embedding("x") is None and bb.metadata_labels(None, 2) is None
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(bb.encode(x), x)


def test_weights_id_is_stable_and_sensitive() -> None:
    a, b = create_backbone("tiny-pixel", seed=0), create_backbone("tiny-pixel", seed=0)
    c = create_backbone("tiny-pixel", seed=1)
    assert a.weights_id() == b.weights_id() != c.weights_id()
    b2 = create_backbone("tiny-pixel", seed=0)
    with torch.no_grad():
        b2.unet.conv_out.bias[0] += 1e-3
    assert b2.weights_id() != a.weights_id()


def test_random_build_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create_backbone("tiny-pixel", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_save_pretrained_round_trip(tmp_path: Path) -> None:
    bb = create_backbone("tiny-diffusionsat")
    bb.prompt_embedding("a satellite image")
    out = bb.save_pretrained(tmp_path / "saved")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "unet/diffusion_pytorch_model.safetensors" in files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert json.loads((out / "unet" / "config.json").read_text())["use_metadata"] is True
    again = DiffusionBackbone.from_pretrained(out)
    assert again.weights_id() == bb.weights_id()
    assert again.has_metadata and again.prediction_type == "v_prediction"
    assert "a satellite image" in again._prompt_embeds
    via_name = create_backbone(str(out))
    assert via_name.weights_id() == bb.weights_id()


def test_unknown_key_in_backbone_json_is_an_error(tmp_path: Path) -> None:
    out = create_backbone("tiny-pixel").save_pretrained(tmp_path / "m")
    meta = json.loads((out / "satdifuser_backbone.json").read_text())
    (out / "satdifuser_backbone.json").write_text(json.dumps({**meta, "colour": 1}))
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        DiffusionBackbone.from_pretrained(out)


def _diffusionsat_release(root: Path, weights_name: str = "diffusion_pytorch_model.bin") -> dict:
    """Write a tiny checkpoint in DiffusionSat's layout: SatUNet .bin with metadata MLPs."""
    with torch.random.fork_rng():
        torch.manual_seed(7)
        unet, md = build_unet(TINY_UNET, None, use_metadata=True)
    assert md is not None
    state = {**unet.state_dict(), **md.diffusionsat_state_dict()}
    res = root / "resolution256"
    unet_dir = res / "checkpoint-150000" / "unet"
    unet_dir.mkdir(parents=True)
    cfg = {**TINY_UNET, "_class_name": "SatUNet", "_diffusers_version": "0.17.0.dev0"}
    cfg.update(use_metadata=True, num_metadata=7)
    (unet_dir / "config.json").write_text(json.dumps(cfg))
    torch.save(state, unet_dir / weights_name)
    vae = build_random("v", TINY_UNET, TINY_VAE, "v_prediction", 0, None).vae
    assert vae is not None
    (res / "vae").mkdir()
    (res / "vae" / "config.json").write_text(json.dumps(TINY_VAE))
    save_file(vae.state_dict(), str(res / "vae" / "diffusion_pytorch_model.safetensors"))
    (res / "scheduler").mkdir()
    sched = {**SD_SCHEDULER, "prediction_type": "v_prediction"}
    (res / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched))
    return state


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("release")
    return root, _diffusionsat_release(root)


def _copy(release: tuple[Path, dict], tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "ds"
    shutil.copytree(release[0], target)
    return target


def test_diffusionsat_layout_with_metadata_loads(
    release: tuple[Path, dict], tmp_path: Path
) -> None:
    root, state = _copy(release, tmp_path), release[1]
    bb = create_backbone(str(root))
    assert bb.has_metadata and bb.prediction_type == "v_prediction"
    assert bb.unet.config.class_embed_type == "identity"
    loaded = bb.metadata_embedding.diffusionsat_state_dict()  # type: ignore[union-attr]
    assert len(loaded) == 28
    for key, value in loaded.items():
        assert torch.equal(value, state[key])
    assert torch.equal(bb.unet.conv_in.weight, state["conv_in.weight"])


def test_pickled_objects_in_bin_are_refused(release: tuple[Path, dict], tmp_path: Path) -> None:
    root = _copy(release, tmp_path)
    path = root / "resolution256" / "checkpoint-150000" / "unet" / "diffusion_pytorch_model.bin"
    torch.save({"conv_in.weight": torch.zeros(1), "evil": Path("/")}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        create_backbone(str(root))


@pytest.mark.parametrize(
    ("remove", "match"),
    [
        ("resolution256/scheduler/scheduler_config.json", "scheduler_config.json"),
        ("resolution256/checkpoint-150000/unet", "missing UNet folder"),
        ("resolution256/vae", "missing VAE folder"),
        ("resolution256/checkpoint-150000/unet/diffusion_pytorch_model.bin", "no weights in"),
    ],
)
def test_missing_checkpoint_parts_name_the_path(
    release: tuple[Path, dict], tmp_path: Path, remove: str, match: str
) -> None:
    import shutil

    root = _copy(release, tmp_path)
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(CheckpointError, match=match) as info:
        create_backbone(str(root))
    assert str(root) in str(info.value)


def test_mismatched_weights_are_a_checkpoint_error(
    release: tuple[Path, dict], tmp_path: Path
) -> None:
    root = _copy(release, tmp_path)
    cfg_path = root / "resolution256" / "checkpoint-150000" / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["block_out_channels"] = [32, 64, 128]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"):
        create_backbone(str(root))


def test_hub_id_resolves_through_huggingface_hub_cache(tmp_path: Path) -> None:
    bb = create_backbone("tiny-sd", seed=3)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--satdifuser--tiny-sd"
    bb.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = create_backbone(
        "satdifuser/tiny-sd", hub_cache_dir=str(tmp_path), local_files_only=True
    )
    assert loaded.weights_id() == bb.weights_id()
    assert loaded.name == "satdifuser/tiny-sd"
    with pytest.raises(CheckpointError, match="cannot fetch hub repository"):
        create_backbone("satdifuser/absent", hub_cache_dir=str(tmp_path), local_files_only=True)


def test_unknown_names_and_overrides() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'tiny-sd'"):
        create_backbone("tiny-sdd")
    with pytest.raises(ConfigError, match="unknown override 'colour'"):
        create_backbone("tiny-sd", colour="red")


@pytest.mark.parametrize("name", ["satdifuser-eurosat-tiny", "satdifuser-aerial-tiny"])
def test_shipped_backbone_loads_or_says_it_is_absent(name: str) -> None:
    from satdifuser.backbones.presets import SHIPPED_WEIGHTS

    if (SHIPPED_WEIGHTS / name / "unet").is_dir():
        bb = create_backbone(name)
        assert bb.vae is None and bb.unet.dtype == torch.float32 and bb.name == name
    else:
        with pytest.raises(CheckpointError, match=name):
            create_backbone(name)


def test_text_encoder_without_transformers_names_the_extra(tmp_path: Path) -> None:
    try:
        import transformers  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("transformers is installed; the missing-extra path cannot be exercised")
    from satdifuser.errors import DependencyNotFoundError

    out = create_backbone("tiny-sd").save_pretrained(tmp_path / "m")
    (out / "text_encoder").mkdir()
    (out / "text_encoder" / "config.json").write_text("{}")
    bb = create_backbone(str(out))
    with pytest.raises(DependencyNotFoundError, match=r"satdifuser\[text\]"):
        bb.prompt_embedding("a satellite image")


def test_diffusers_fp16_pixel_pipeline_folder_loads_as_float32(tmp_path: Path) -> None:
    """The shipped model's layout: diffusers-saved fp16 UNet2DModel + DDPMScheduler folder."""
    from diffusers import DDPMScheduler

    src = create_backbone("tiny-pixel", seed=4)
    src.unet.to(torch.float16).save_pretrained(tmp_path / "unet", safe_serialization=True)
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(tmp_path / "scheduler")
    (tmp_path / "README.md").write_text("model card")
    bb = create_backbone(str(tmp_path))
    assert bb.vae is None and type(bb.unet).__name__ == "UNet2DModel"
    assert bb.unet.dtype == torch.float32
    expected = src.unet.conv_in.weight.float()  # fp16-rounded values, back in fp32
    assert torch.equal(bb.unet.conv_in.weight, expected)
    assert bb.prediction_type == "epsilon" and bb.sample_size == 32
