"""Inputs as TorchGeo / TerraTorch shape them -> the encoder (issue 15, section 3).

torchvision (hence torchgeo and terratorch) does not import beside the pinned torch here, so the
contract is tested with the tensors those libraries produce: TorchGeo's EuroSAT-MS data module
gives float32 (B, 13, H, W), band order B01..B12 with B8A last, z-scored with the MEAN/STD below
(``torchgeo/datamodules/eurosat.py``).
"""

from __future__ import annotations

import json
import re
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from satdifuser.data.bands import EUROSAT_MS_BANDS
from satdifuser.errors import ConfigError, InputError, InputShapeError
from satdifuser.features.spec import FeatureInfo
from satdifuser.interop import SatDiFuserEncoder
from satdifuser.interop import terratorch as tt
from satdifuser.model.inputs import InputAdapter, InputSpec

# TorchGeo EuroSATDataModule statistics (EuroSAT-MS band order, B8A last), in DN
MEAN = [1354.40546513, 1118.24399958, 1042.92983953, 947.62620298, 1199.47283961,
        1999.79090914, 2369.22292565, 2296.82608323, 732.08340178, 12.11327804,
        1819.01027855, 1118.92391149, 2594.14080798]  # fmt: skip
STD = [245.71762908, 333.00778264, 395.09249139, 593.75055589, 566.4170017, 861.18399006,
       1086.63139075, 1117.98170791, 404.91978886, 4.77584468, 1002.58768311, 761.30323499,
       1231.58581042]  # fmt: skip
RGB = [3, 2, 1]  # B04, B03, B02 in EuroSAT-MS order
DOCS = Path(__file__).resolve().parents[2] / "docs" / "terratorch.md"


def eurosat_ms_batch(b: int = 2, size: int = 64) -> tuple[Tensor, Tensor]:
    """Raw DN (uint16-valued float) and the z-scored float32 batch TorchGeo would hand over."""
    g = torch.Generator().manual_seed(1)
    mean, std = torch.tensor(MEAN).view(1, 13, 1, 1), torch.tensor(STD).view(1, 13, 1, 1)
    raw = (mean + std * torch.randn(b, 13, size, size, generator=g)).clamp(0, 10000).round()
    return raw, ((raw - mean) / std).float()


class RecordingExtractor(nn.Module):
    """Stands in for FeatureExtractor: records what reaches it, 2 maps from a 3-band conv."""

    def __init__(self) -> None:
        super().__init__()
        self.feature_info = [FeatureInfo("a", 10, 8, 2), FeatureInfo("b", 10, 8, 4)]
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.seen: list[Tensor] = []

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        if images.shape[1] != 3:
            raise AssertionError(f"extractor got {images.shape[1]} bands")
        self.seen.append(images)
        y = self.conv(images)
        return [F.avg_pool2d(y, f.reduction) for f in self.feature_info]


def zscore_spec(**kw: object) -> InputSpec:
    return InputSpec("eurosat_ms", "zscore", scale=kw.pop("scale", 2750), mean=MEAN, std=STD,
                     **kw)  # type: ignore[arg-type]  # fmt: skip


def test_encoder_on_zscored_13_band_eurosat_ms() -> None:
    """Acceptance: TorchGeo EuroSAT-MS z-scored (B, 13, 64, 64) -> the fused maps."""
    raw, z = eurosat_ms_batch()
    extractor = RecordingExtractor()
    spec = zscore_spec()
    encoder = SatDiFuserEncoder(extractor, "concat", {"projection_dim": 4}, input_spec=spec)
    assert encoder.in_channels == 13 and encoder.out_channels == [4, 4]
    maps = encoder(z)
    assert [tuple(m.shape) for m in maps] == [(2, 4, 32, 32), (2, 4, 16, 16)]
    expected = (raw[:, RGB] / 2750).clamp(0, 1)  # B04/B03/B02 DN -> EuroSAT RGB brightness
    torch.testing.assert_close(extractor.seen[-1], expected, atol=1e-5, rtol=0)


def test_denormalisation_recovers_rgb_reflectance() -> None:
    raw, z = eurosat_ms_batch()
    out = InputAdapter(zscore_spec(scale=10000))(z)
    torch.testing.assert_close(out, raw[:, RGB] / 10000, atol=1e-6, rtol=0)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 64, 64)


def test_band_order_is_by_name_b8a_last_or_in_wavelength_order() -> None:
    assert zscore_spec(rgb=["B8A", "B04", "B03"]).rgb_indices == (12, 3, 2)  # EuroSAT-MS
    l1c = InputSpec("sentinel2_l1c", "raw", scale=10000, rgb=["b8a", "red", "green"])
    assert l1c.rgb_indices == (8, 3, 2) and l1c.rgb == ("B08A", "B04", "B03")


def test_uint16_with_scale_10000_and_l2a_offset() -> None:
    raw = torch.randint(0, 10000, (1, 12, 8, 8), dtype=torch.int32).to(torch.uint16)
    spec = InputSpec("sentinel2_l2a", "raw", scale=10000)
    out = InputAdapter(spec)(raw)
    torch.testing.assert_close(out, raw[:, [3, 2, 1]].float() / 10000)
    shifted = InputAdapter(InputSpec("sentinel2_l2a", "raw", scale=10000, offset=-1000))(raw)
    torch.testing.assert_close(shifted, ((raw[:, [3, 2, 1]].float() - 1000) / 10000).clamp(0, 1))


def test_uint8_raw_defaults_to_255_and_unit_passes_through() -> None:
    img = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    out = InputAdapter(InputSpec(("red", "green", "blue"), "raw"))(img)
    torch.testing.assert_close(out, img.float() / 255)
    unit = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(InputAdapter(InputSpec())(unit), unit)
    bgr = InputAdapter(InputSpec(("blue", "green", "red")))(unit)  # picked by name
    torch.testing.assert_close(bgr, unit.flip(1))


def test_learned_adapter_starts_as_plain_rgb_selection() -> None:
    _, z = eurosat_ms_batch()
    learned = InputAdapter(zscore_spec(adapter="learned"))
    torch.testing.assert_close(learned(z), InputAdapter(zscore_spec())(z))
    assert learned.trainable and set(learned.state_dict()) == {"mix.weight", "mix.bias"}
    assert InputAdapter(zscore_spec()).state_dict() == {}


def test_learned_adapter_gets_gradients_through_the_frozen_extractor() -> None:
    _, z = eurosat_ms_batch(b=1)
    extractor = RecordingExtractor()
    encoder = SatDiFuserEncoder(extractor, "concat", {"projection_dim": 4},
                                input_spec=zscore_spec(adapter="learned"))  # fmt: skip
    encoder.train()
    sum(m.mean() for m in encoder(z)).backward()
    assert encoder.input_adapter is not None and encoder.input_adapter.mix is not None
    assert encoder.input_adapter.mix.weight.grad is not None
    assert encoder.input_adapter.mix.weight.grad.abs().sum() > 0
    assert extractor.conv.weight.grad is None  # the extractor stays frozen


def test_wrong_band_count_is_one_clear_error() -> None:
    _, z = eurosat_ms_batch(b=1, size=8)
    rgb_spec = SatDiFuserEncoder(RecordingExtractor(), "concat", input_spec=InputSpec())
    with pytest.raises(InputShapeError, match=r"13 bands but the input spec names 3 .*eurosat_ms"):
        rgb_spec(z)
    no_spec = SatDiFuserEncoder(RecordingExtractor(), "concat")
    with pytest.raises(InputShapeError, match="13 bands but this encoder has no input_spec"):
        no_spec(z)
    with pytest.raises(InputShapeError, match="12 bands but the input spec names 13") as info:
        InputAdapter(zscore_spec())(z[:, :12])
    assert "\n" not in str(info.value)


def test_wrong_dtype_and_range_errors_name_the_fix() -> None:
    raw = torch.randint(0, 4000, (1, 13, 8, 8), dtype=torch.int32).to(torch.uint16)
    with pytest.raises(InputError, match=r"dtype torch.uint16 .*kind='zscore'.*kind='raw'"):
        InputAdapter(zscore_spec())(raw)
    with pytest.raises(InputError, match="no scale is declared; set scale"):
        InputAdapter(InputSpec("eurosat_ms", "raw"))(raw)
    _, z = eurosat_ms_batch(b=1, size=8)
    with pytest.raises(InputError, match=r"\[0, 1\]; declare kind='zscore'"):
        InputAdapter(InputSpec("eurosat_ms"))(z)
    with pytest.raises(InputError, match="NaN"):
        InputAdapter(zscore_spec())(torch.full((1, 13, 4, 4), float("nan")))


def test_spec_validation() -> None:
    with pytest.raises(ConfigError, match="needs scale"):
        InputSpec("eurosat_ms", "zscore", mean=MEAN, std=STD)
    with pytest.raises(ConfigError, match=r"std with one value per band \(13\), got 3"):
        InputSpec("eurosat_ms", "zscore", scale=1, mean=MEAN, std=[1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="only apply to kind='zscore'"):
        InputSpec("eurosat_ms", "raw", scale=10000, mean=MEAN)
    with pytest.raises(ConfigError, match=r"no B04/B03/B02 .*rgb=\[r, g, b\]"):
        InputSpec(("vv", "vh", "hh", "hv"), "raw", scale=1)
    with pytest.raises(ConfigError, match="unknown band table"):
        InputSpec("eurosat", "unit")
    with pytest.raises(ConfigError, match="kind='bogus'"):
        InputSpec(kind="bogus")  # type: ignore[arg-type]


def test_spec_config_is_json_and_round_trips() -> None:
    spec = zscore_spec(adapter="learned", offset=-1000)
    config = json.loads(json.dumps(spec.to_config()))
    assert config["bands"] == list(EUROSAT_MS_BANDS) and config["rgb"] == ["B04", "B03", "B02"]
    assert InputSpec.from_config(config) == spec
    assert InputAdapter(config).spec == spec
    with pytest.raises(ConfigError, match="unknown key 'means'"):
        InputSpec.from_config({**config, "means": MEAN})
    stats = InputSpec("eurosat_ms", "zscore", scale=1, mean=torch.tensor(MEAN), std=STD)
    assert stats.mean == tuple(float(m) for m in torch.tensor(MEAN))  # tensors accepted


# ------------------------------------------------------------------ TerraTorch-style factory
def test_factory_builds_from_kwargs_only_and_takes_zscored_13_bands() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny-pixel has random weights
        encoder = tt.satdifuser_encoder(
            backbone="tiny-pixel", timesteps=[10], fusion="concat",
            fusion_kwargs={"projection_dim": 4}, bands="eurosat_ms", mean=MEAN, std=STD,
            scale=2750, adapter="learned", patch_size=None, padding="reflect",
        )  # fmt: skip
    assert isinstance(encoder, SatDiFuserEncoder) and encoder.in_channels == 13
    _, z = eurosat_ms_batch(b=1)
    maps = encoder(z)
    assert [m.shape[1] for m in maps] == encoder.out_channels
    assert all(m.shape[0] == 1 and m.ndim == 4 for m in maps)
    sum(m.mean() for m in maps).backward()  # through the real frozen extractor
    assert encoder.input_adapter is not None and encoder.input_adapter.mix is not None
    assert encoder.input_adapter.mix.weight.grad is not None
    assert not any(p.requires_grad for p in encoder.extractor.parameters())


def test_factory_refuses_unknown_keywords_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="unknown argument 'timestep'; did you mean 'timesteps'"):
        tt.satdifuser_encoder(timestep=[10])
    with pytest.raises(ConfigError, match="without bands"):
        tt.satdifuser_encoder(scale=10000)


def test_registration_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    class Registry:  # the shape of terratorch.registry.Registry
        def __init__(self) -> None:
            self._registry: dict[str, object] = {}

        def register(self, constructor: object) -> object:
            self._registry[constructor.__name__] = constructor  # type: ignore[attr-defined]
            return constructor

        def __contains__(self, name: str) -> bool:
            return name in self._registry

    registry = Registry()
    pkg, sub = types.ModuleType("terratorch"), types.ModuleType("terratorch.registry")
    sub.TERRATORCH_BACKBONE_REGISTRY = registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "terratorch", pkg)
    monkeypatch.setitem(sys.modules, "terratorch.registry", sub)
    assert tt.register_with_terratorch() and tt.register_with_terratorch()
    assert registry._registry == {"satdifuser_encoder": tt.satdifuser_encoder}
    monkeypatch.setitem(sys.modules, "terratorch.registry", None)  # installed but broken
    with pytest.warns(UserWarning, match="does not import"):
        assert tt.register_with_terratorch() is False


def test_docs_yaml_backbone_kwargs_build_the_encoder() -> None:
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block, "docs/terratorch.md needs a ```yaml block"
    model_args = yaml.safe_load(block.group(1))["model"]["init_args"]["model_args"]
    assert model_args["backbone"] == "satdifuser_encoder"
    kwargs = {k[len("backbone_") :]: v for k, v in model_args.items() if k.startswith("backbone_")}
    assert len(kwargs["mean"]) == len(kwargs["std"]) == 13
    kwargs["backbone"] = "tiny-pixel"  # the documented one is the shipped model; keep it fast
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = tt.satdifuser_encoder(**kwargs)
    assert encoder.in_channels == 13
    assert encoder.input_adapter is not None and encoder.input_adapter.spec.kind == "zscore"


@pytest.mark.slow
def test_shipped_backbone_on_zscored_13_bands() -> None:
    """The documented default (shipped satdifuser-eurosat-tiny) end to end (~10 s on CPU)."""
    encoder = tt.satdifuser_encoder(bands="eurosat_ms", mean=MEAN, std=STD, scale=2750)
    _, z = eurosat_ms_batch(b=1)
    with torch.no_grad():
        maps = encoder(z)
    pairs = zip(encoder.out_channels, encoder.out_reductions, strict=True)
    assert [tuple(m.shape) for m in maps] == [(1, c, 64 // r, 64 // r) for c, r in pairs]
