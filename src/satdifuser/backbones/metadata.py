"""DiffusionSat metadata: the 7 fields, their normalisation and the 7 metadata MLPs.

DiffusionSat (Khanna et al., ICLR 2024) adds ``sum_i MLP_i(time_proj(md_i))`` to the UNet's time
embedding, where ``md`` holds 7 normalised scalars ``[lon, lat, gsd, cloud_cover, year, month,
day]`` scaled to roughly [0, 1000] (``diffusionsat/data_util.py::metadata_normalize``). Unknown
fields are 0 after normalisation (what training-time dropout fed), which is also our default.
See ``backbones.md`` section 3.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import TimestepEmbedding
from torch import Tensor, nn

from satdifuser.errors import InputError

METADATA_FIELDS: tuple[str, ...] = ("lon", "lat", "gsd", "cloud_cover", "year", "month", "day")
"""Field order of a metadata row (physical units: degrees, degrees, metres, fraction, year, 1-12,
1-31)."""

NUM_METADATA = len(METADATA_FIELDS)

# (offset, divisor) per field: normalised = (value + offset) / divisor * 1000
_NORMALISATION: tuple[tuple[float, float], ...] = (
    (180.0, 360.0),  # lon
    (90.0, 180.0),  # lat
    (0.0, 1.0),  # gsd in metres (after resizing to the working size)
    (0.0, 1.0),  # cloud cover fraction
    (-1980.0, 120.0),  # year
    (0.0, 12.0),  # month
    (0.0, 31.0),  # day
)
_SCALE = 1000.0


def normalize_metadata(metadata: Tensor, gsd_scale: float = 1.0) -> Tensor:
    """Map physical metadata to DiffusionSat's normalised values.

    Args:
        metadata: (B, 7) in physical units, fields in :data:`METADATA_FIELDS` order. NaN marks an
            unknown field and becomes 0 (the value DiffusionSat saw for dropped fields).
        gsd_scale: Factor applied to the GSD first (input size / working size), because
            DiffusionSat's GSD is the one after resizing.

    Returns:
        (B, 7) float32 normalised values.

    Raises:
        InputError: wrong shape or infinite values.
    """
    if metadata.ndim != 2 or metadata.shape[1] != NUM_METADATA:
        raise InputError(
            f"metadata has shape {tuple(metadata.shape)} but (B, {NUM_METADATA}) is expected "
            f"with fields {', '.join(METADATA_FIELDS)}; pass one row of {NUM_METADATA} values "
            "per image (NaN for unknown fields) or None"
        )
    md = metadata.detach().to(dtype=torch.float64, device="cpu")
    if torch.isinf(md).any():
        raise InputError(
            "metadata contains infinite values; use finite physical values, or NaN for an "
            "unknown field"
        )
    offset = torch.tensor([o for o, _ in _NORMALISATION], dtype=torch.float64)
    divisor = torch.tensor([d for _, d in _NORMALISATION], dtype=torch.float64)
    md = md.clone()
    md[:, 2] = md[:, 2] * gsd_scale
    out = (md + offset) / divisor * _SCALE
    out = torch.where(torch.isnan(md), torch.zeros_like(out), out)
    return out.to(torch.float32).to(metadata.device)


class MetadataEmbedding(nn.Module):
    """The 7 DiffusionSat metadata MLPs (``metadata_embedding.{i}.linear_{1,2}``).

    Args:
        in_features: Width of the UNet's sinusoidal time projection (320 for SD 2.1).
        out_features: Width of the time embedding (1280 for SD 2.1).
        num_metadata: Number of fields (7).
    """

    def __init__(self, in_features: int, out_features: int, num_metadata: int = NUM_METADATA):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.embeddings = nn.ModuleList(
            TimestepEmbedding(in_features, out_features) for _ in range(num_metadata)
        )

    def forward(self, normalized: Tensor, time_proj: nn.Module, dtype: torch.dtype) -> Tensor:
        """Embed normalised metadata.

        Args:
            normalized: (B, 7) normalised values (see :func:`normalize_metadata`).
            time_proj: The UNet's ``time_proj`` (same sinusoid as the timestep).
            dtype: Dtype of the UNet's time embedding.

        Returns:
            (B, out_features), to be added to the time embedding (passed as ``class_labels`` of an
            identity class embedding).
        """
        total: Tensor | None = None
        for i, mlp in enumerate(self.embeddings):
            proj = time_proj(normalized[:, i]).to(dtype)
            emb = mlp(proj)
            total = emb if total is None else total + emb
        assert total is not None
        return total

    def load_diffusionsat_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load ``metadata_embedding.{i}.*`` tensors (prefix already stripped) strictly."""
        self.embeddings.load_state_dict(state, strict=True)

    def diffusionsat_state_dict(self) -> dict[str, Tensor]:
        """State dict under DiffusionSat's key names (``metadata_embedding.{i}.linear_*``)."""
        return {f"metadata_embedding.{k}": v for k, v in self.embeddings.state_dict().items()}


__all__ = ["METADATA_FIELDS", "NUM_METADATA", "MetadataEmbedding", "normalize_metadata"]
