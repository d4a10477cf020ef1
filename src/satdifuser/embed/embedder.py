"""One pooled vector per image, from a feature extractor or from a saved model.

Two representations:

- ``maps`` (:meth:`Embedder.from_extractor`): every map of a
  :class:`~satdifuser.features.FeatureExtractor` adaptive-average-pooled to ``pool_size`` x
  ``pool_size`` (1 = global average), flattened and concatenated in ``feature_info`` order.
  Dimension: ``sum(channels) * pool_size ** 2``.
- ``fused`` (:meth:`Embedder.from_model`): the representation a trained
  :class:`~satdifuser.model.SatDiFuserModel` feeds its head: standardiser, then fusion, each
  fused scale globally average-pooled and concatenated (finest first). Dimension:
  ``sum(model.fusion.out_channels)``.

``normalize=True`` divides each vector by its L2 norm (cosine similarity becomes a dot product).

A model records the factor it was trained at (``input.resample``, e.g. 0.25 for imagery
downscaled 4x): :meth:`Embedder.from_model` resizes native pixels by it before the extractor,
as ``satdifuser predict`` does (:mod:`satdifuser.model.resample`). A model whose input spec
selects or scales bands (multispectral, raw DN or z-scored input: ``input.spec``) gets them
converted by its own :meth:`~satdifuser.model.SatDiFuserModel.adapt_input`, the step
``model.forward`` takes, so images are given in the model's input contract, as to ``predict``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.model.resample import check_resample, resampled_size, resize_images

Representation = Literal["maps", "fused"]


class Embedder(nn.Module):
    """Pixels ``(B, C, H, W)`` -> embeddings ``(B, dim)`` float32.

    Pixels are RGB in [0, 1] for an extractor, and in the model's input contract for a model
    (its bands and value kind; converted by ``model.adapt_input`` before the extractor).

    Build with :meth:`from_extractor` or :meth:`from_model`.

    Attributes:
        dim: Length of one embedding.
        identity: Digest of everything that determines the vectors (extractor identity or model
            weights, representation, pooling, normalisation); the ``model_identity`` column.
        info: JSON-able description written into the Parquet schema metadata.
        image_size: Square working size of the extractor (0: each batch's own size).
        in_channels: Bands the extractor or model takes (a model's input contract: 13 for a
            model with a 13-band input spec).
        resample: Factor images are resized by before the extractor (a model's
            ``input.resample``; 1.0 for an extractor).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        extractor: nn.Module,
        representation: Representation,
        pool_size: int,
        normalize: bool,
        model: nn.Module | None,
        source: dict[str, Any],
        resample: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"pool_size={pool_size!r} must be an integer >= 1 (1: global mean)")
        self._parts = (extractor, model)  # frozen; not registered submodules
        self.representation = representation
        self.pool_size = pool_size
        self.normalize = bool(normalize)
        self.resample = check_resample(resample)
        info = list(extractor.feature_info)
        if representation == "fused":
            assert model is not None
            self.dim = int(sum(model.fusion.out_channels))
        else:
            self.dim = int(sum(f.channels for f in info)) * pool_size * pool_size
        spec = getattr(extractor, "spec", None)
        self.image_size = int(getattr(spec, "image_size", 0) or 0)
        bb = getattr(extractor, "backbone", None)
        self.in_channels = int(
            model.in_channels if model is not None else getattr(bb, "in_channels", 3)
        )
        weights = getattr(bb, "weights_id", None)
        ex_ident = extractor.identity() if callable(getattr(extractor, "identity", None)) else None
        self.info: dict[str, Any] = {
            "representation": representation,
            "dim": self.dim,
            "pool_size": pool_size,
            "normalize": self.normalize,
            "extractor_identity": ex_ident,
            "backbone": getattr(extractor, "backbone_source", getattr(bb, "name", None)),
            "backbone_weights_id": weights() if callable(weights) else None,
            "spec": spec.to_dict() if callable(getattr(spec, "to_dict", None)) else None,
            "feature_info": [[f.tap, f.timestep, f.channels, f.reduction] for f in info],
            "resample": self.resample,
            **source,
        }
        # resample 1.0 stays out of the digest: the vectors, so the identity, are the ones of
        # exports written before the factor was applied
        key = json.dumps({k: v for k, v in self.info.items()
                          if k != "spec" and not (k == "resample" and v == 1.0)},
                         sort_keys=True)  # fmt: skip
        self.identity = hashlib.sha256(key.encode()).hexdigest()[:16]

    # ------------------------------------------------------------- builders
    @classmethod
    def from_extractor(
        cls, extractor: nn.Module, pool_size: int = 1, normalize: bool = False
    ) -> Embedder:
        """Pooled extractor maps (``maps`` representation).

        Args:
            extractor: A :class:`~satdifuser.features.FeatureExtractor` (any module with
                ``feature_info`` and ``forward(images, metadata)``).
            pool_size: Each map is pooled to ``pool_size`` x ``pool_size`` (1: global mean).
            normalize: L2-normalise each vector.
        """
        return cls(extractor, "maps", pool_size, normalize, None, {"model": None})

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        representation: Representation = "fused",
        pool_size: int = 1,
        normalize: bool = False,
        folder: str | Path | None = None,
        resample: float | None = None,
    ) -> Embedder:
        """Embeddings of a saved :class:`~satdifuser.model.SatDiFuserModel`.

        Args:
            model: The loaded model.
            representation: ``fused`` (standardiser + fusion, globally pooled: what the head
                sees; ``pool_size`` must be 1) or ``maps`` (the model's extractor maps).
            pool_size: See :meth:`from_extractor`.
            normalize: L2-normalise each vector.
            folder: The model folder, recorded and hashed into the identity.
            resample: Factor native pixels are resized by before the model, overriding
                ``model.resample`` (1.0: images already at the model's scale).

        Raises:
            ConfigError: unknown representation, ``fused`` with ``pool_size`` > 1, or a
                ``resample`` out of (0, 4].
        """
        if representation not in ("fused", "maps"):
            raise ConfigError(f"representation={representation!r} is not one of fused, maps")
        if representation == "fused" and pool_size != 1:
            raise ConfigError(
                f"pool_size={pool_size} applies to the maps representation; the fused one is "
                "globally pooled (drop --pool-size or pass --representation maps)"
            )
        weights = None
        if folder is not None and (Path(folder) / "model.safetensors").is_file():
            h = hashlib.sha256()
            for name in ("config.json", "model.safetensors"):
                p = Path(folder) / name
                if p.is_file():
                    h.update(p.read_bytes())
            weights = h.hexdigest()[:16]
        source = {
            "model": None if folder is None else str(folder),
            "model_weights_id": weights,
            "task_type": getattr(model, "task_type", None),
            "class_names": list(getattr(model, "class_names", []) or []),
        }
        factor = getattr(model, "resample", 1.0) if resample is None else resample
        return cls(model.extractor, representation, pool_size, normalize, model, source,
                   check_resample(factor))  # fmt: skip

    # -------------------------------------------------------------- forward
    @property
    def read_size(self) -> int:
        """Square native size that :attr:`resample` turns into :attr:`image_size` (0: none)."""
        return max(1, round(self.image_size / self.resample)) if self.image_size else 0

    @property
    def extractor(self) -> nn.Module:
        """The frozen extractor."""
        return self._parts[0]

    def _apply(self, fn: Any, recurse: bool = True) -> Embedder:  # .to() moves the parts too
        super()._apply(fn, recurse)
        for part in self._parts:
            if part is not None:
                part._apply(fn, recurse)
        return self

    def pool(self, maps: list[Tensor]) -> Tensor:
        """``(B, dim)`` from extractor maps (``maps``) or fused maps (``fused``)."""
        size = 1 if self.representation == "fused" else self.pool_size
        parts = [F.adaptive_avg_pool2d(m.float(), size).flatten(1) for m in maps]
        vec = torch.cat(parts, dim=1)
        return F.normalize(vec, dim=1) if self.normalize else vec

    @torch.no_grad()
    def forward(self, images: Tensor, metadata: Tensor | None = None) -> Tensor:
        """Embeddings ``(B, dim)`` float32 on the CPU; ``images`` are native pixels.

        As in ``model.predict_proba``: resized by :attr:`resample`, then converted by the
        model's ``adapt_input`` (its input spec's band selection and scaling), then extracted.
        """
        if self.resample != 1.0:
            images = resize_images(images, resampled_size(*images.shape[-2:], self.resample))
        model = self._parts[1]
        adapt = getattr(model, "adapt_input", None)
        if callable(adapt):
            images = adapt(images)
        maps = list(self.extractor(images, metadata))
        if self.representation == "fused":
            assert model is not None
            model.eval()
            maps = list(model.fusion(model.standardizer(maps)))
        return self.pool(maps).cpu()


__all__ = ["Embedder", "Representation"]
