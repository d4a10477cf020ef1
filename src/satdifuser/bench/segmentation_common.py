"""Segmentation benchmark machinery: scaled images, a feature bank, head training, whole-image eval.

Used by ``satdifuser bench dubai``. The extractor (diffusion features or a CNN baseline) is
frozen, so the features of every training window are extracted **once** into an in-memory bank
(float16) and the trainable part (fuser + head) trains on random, stride-aligned crops of it with
flips and 90-degree rotations. Evaluation runs the whole pipeline (extractor, fuser, head) window
by window over each whole validation image (:func:`~satdifuser.data.tiling.sliding_window_predict`,
overlapping windows averaged), upsamples the logits to the image's native size and scores every
labelled pixel of the native mask: metrics are per whole image at native resolution, never per
crop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.data.mask_folder import MaskFolder
from satdifuser.data.tiling import grid_windows, sliding_window_predict
from satdifuser.errors import ConfigError, DataFormatError
from satdifuser.features.spec import FeatureInfo
from satdifuser.tasks.metrics import present_classes, segmentation_metrics


class Extractor(Protocol):
    """What the bench needs of a frozen extractor (FeatureExtractor, EfficientNetLiteExtractor)."""

    feature_info: list[FeatureInfo]

    def __call__(self, images: Tensor) -> list[Tensor]: ...


@dataclass
class ScaledImage:
    """One image resized by the benchmark's scale factor.

    Attributes:
        id: Image path relative to the dataset root.
        image: (3, h, w) float32 in [0, 1] at the working scale.
        mask: (h, w) int64 class ids at the working scale (nearest neighbour).
        full_mask: (H, W) uint8 native-resolution mask (evaluation images only).
    """

    id: str
    image: Tensor
    mask: Tensor
    full_mask: np.ndarray | None = None


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(round(height * scale), round(width * scale))``, at least 1 each."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def load_scaled(
    dataset: MaskFolder, scale: float, keep_full: bool, limit: int | None = None
) -> list[ScaledImage]:
    """Read whole images of ``dataset`` and resize them by ``scale``.

    Images are resized with antialiased bilinear interpolation, masks with nearest neighbour.

    Args:
        dataset: A :class:`MaskFolder` (e.g. ``DubaiAerial``); its ``load`` gives native arrays.
        scale: Resize factor in (0, 1].
        keep_full: Keep the native mask (needed to score at native resolution).
        limit: Read only the first ``limit`` images.
    """
    out: list[ScaledImage] = []
    n = len(dataset.images) if limit is None else min(limit, len(dataset.images))
    for i in range(n):
        image, mask = dataset.load(i)
        h, w = scaled_size(image.shape[0], image.shape[1], scale)
        img = torch.from_numpy(image.copy()).permute(2, 0, 1).float().div_(255)
        msk = torch.from_numpy(mask.astype(np.int64))
        if (h, w) != tuple(img.shape[-2:]):
            img = F.interpolate(
                img[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False
            )[0].clamp_(0, 1)
            msk = F.interpolate(msk[None, None].float(), size=(h, w), mode="nearest-exact")
            msk = msk[0, 0].long()
        out.append(ScaledImage(dataset.rel_id(i), img, msk, mask if keep_full else None))
    return out


def padded(
    image: Tensor, mask: Tensor, y: int, x: int, window: int, ignore: int
) -> tuple[Tensor, Tensor]:
    """The ``window``-square crop at ``(y, x)``; image padded with 0, mask with ``ignore``."""
    img = image[:, y : y + window, x : x + window]
    msk = mask[y : y + window, x : x + window]
    ph, pw = window - img.shape[1], window - img.shape[2]
    if ph or pw:
        img = F.pad(img, (0, pw, 0, ph))
        msk = F.pad(msk, (0, pw, 0, ph), value=ignore)
    return img, msk


@dataclass
class FeatureBank:
    """Features of every training window, extracted once (float16, in memory).

    Attributes:
        feature_info: The extractor's feature_info (order of ``features``).
        features: One (N, C_i, window / r_i, window / r_i) float16 tensor per feature map.
        masks: (N, window, window) uint8 class ids (``ignore_index`` on padding).
        window: Window side in pixels.
        ignore_index: Mask value of unlabelled pixels.
        seconds: Extraction time.
    """

    feature_info: list[FeatureInfo]
    features: list[Tensor]
    masks: Tensor
    window: int
    ignore_index: int
    seconds: float = 0.0
    weights: Tensor = field(init=False)

    def __post_init__(self) -> None:
        valid = (self.masks != self.ignore_index).flatten(1).sum(1).float()
        if float(valid.sum()) == 0:
            raise DataFormatError(
                "the training images hold no labelled pixel (every mask pixel is ignore_index); "
                "check the masks or choose other training tiles"
            )
        self.weights = valid / valid.sum()

    @classmethod
    def build(
        cls,
        extractor: Extractor,
        images: Sequence[ScaledImage],
        window: int,
        batch_size: int,
        ignore_index: int,
    ) -> FeatureBank:
        """Cut each image into a grid of ``window`` squares (last flush with the edge) and extract.

        Images smaller than the window are padded (image 0, mask ``ignore_index``), exactly as
        :func:`sliding_window_predict` pads them at evaluation.
        """
        start = time.perf_counter()
        tiles: list[tuple[Tensor, Tensor]] = []
        for im in images:
            h, w = im.image.shape[-2:]
            for y, x in grid_windows(h, w, window, window):
                tiles.append(padded(im.image, im.mask, y, x, window, ignore_index))
        chunks: list[list[Tensor]] = []
        for b in range(0, len(tiles), batch_size):
            batch = torch.stack([t[0] for t in tiles[b : b + batch_size]])
            with torch.no_grad():
                chunks.append([f.to(torch.float16) for f in extractor(batch)])
        features = [torch.cat([c[i] for c in chunks]) for i in range(len(chunks[0]))]
        masks = torch.stack([t[1] for t in tiles]).to(torch.uint8)
        return cls(
            list(extractor.feature_info),
            features,
            masks,
            window,
            ignore_index,
            time.perf_counter() - start,
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the features."""
        return sum(f.numel() * f.element_size() for f in self.features)

    def sample(
        self, batch: int, crop: int, generator: torch.Generator
    ) -> tuple[list[Tensor], Tensor]:
        """Random crops (float32 features, int64 masks) with random flips / 90-degree turns.

        Windows are drawn in proportion to their labelled pixels; crop corners are multiples of
        the coarsest feature stride so every map is cropped at the same place.
        """
        align = max(f.reduction for f in self.feature_info)
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        slots = (self.window - crop) // align + 1
        feats: list[list[Tensor]] = [[] for _ in self.features]
        masks: list[Tensor] = []
        for i in idx.tolist():
            y, x = (int(v) * align for v in torch.randint(0, slots, (2,), generator=generator))
            k, flip = (int(v) for v in torch.randint(0, 4, (2,), generator=generator))

            def aug(t: Tensor, k: int = k, flip: int = flip) -> Tensor:
                t = torch.rot90(t, k, dims=(-2, -1))
                return t.flip(-1) if flip % 2 else t

            for j, (f, info) in enumerate(zip(self.features, self.feature_info, strict=True)):
                r = info.reduction
                feats[j].append(aug(f[i, :, y // r : (y + crop) // r, x // r : (x + crop) // r]))
            masks.append(aug(self.masks[i, y : y + crop, x : x + crop]))
        return [torch.stack(f).float() for f in feats], torch.stack(masks).long()


class FusedSegmenter(nn.Module):
    """The trainable part: a fuser (maps -> one map per scale) and a segmentation head."""

    def __init__(self, fuser: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.fuser, self.head = fuser, head

    def forward(self, features: list[Tensor], output_size: tuple[int, int]) -> Tensor:
        """Logits (B, K, *output_size)."""
        return self.head(self.fuser(features), output_size=output_size)


def train_segmenter(
    model: FusedSegmenter,
    bank: FeatureBank,
    steps: int,
    batch: int,
    crop: int,
    lr: float,
    weight_decay: float,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """AdamW with linear warm-up then cosine decay; cross-entropy ignoring ``ignore_index``.

    Returns:
        ``losses`` (mean loss per logging interval), ``final_loss`` (mean of the last 10% of
        steps), ``seconds``, ``seconds_per_step``.
    """
    if crop > bank.window:
        raise ConfigError(f"crop={crop} is larger than the feature window={bank.window}")
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warm = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    every = max(1, steps // 10)
    losses: list[float] = []
    curve: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(steps):
        feats, target = bank.sample(batch, crop, gen)
        logits = model(feats, (crop, crop))
        loss = F.cross_entropy(logits, target, ignore_index=bank.ignore_index)
        loss = loss + model.fuser.aux_loss() if hasattr(model.fuser, "aux_loss") else loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % every == 0 or step + 1 == steps:
            seg = losses[-every:]
            curve.append({"step": step + 1, "loss": sum(seg) / len(seg)})
            log(
                f"  step {step + 1}/{steps}  loss {curve[-1]['loss']:.4f}  "
                f"{time.perf_counter() - start:.0f}s"
            )
    seconds = time.perf_counter() - start
    tail = losses[-max(1, steps // 10) :]
    model.eval()
    return {
        "losses": curve,
        "final_loss": sum(tail) / len(tail),
        "seconds": seconds,
        "seconds_per_step": seconds / max(1, steps),
    }


def predict_whole(
    extractor: Extractor,
    model: FusedSegmenter,
    image: Tensor,
    window: int,
    overlap: float,
    batch_size: int,
    num_classes: int,
) -> Tensor:
    """Sliding-window logits (K, h, w) of one whole (3, h, w) image (overlaps averaged)."""

    def fn(tiles: Tensor) -> Tensor:
        return model(extractor(tiles), (tiles.shape[-2], tiles.shape[-1]))

    with torch.no_grad():
        return sliding_window_predict(fn, image, window, overlap, num_classes, batch_size)


def to_native(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Argmax class ids (H, W) after bilinearly resizing (K, h, w) logits to native ``size``."""
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    return logits.argmax(0)


class WholeImageScorer:
    """Accumulates metrics over whole native-resolution images (ignore pixels excluded).

    Uses :func:`satdifuser.tasks.metrics.segmentation_metrics` (mIoU, OA, per-class IoU ...)
    and keeps the (K, K) confusion matrix (rows: truth, columns: prediction) as raw result.
    """

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.metrics = segmentation_metrics(num_classes, ignore_index)
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.pixels = 0
        self.ignored = 0
        self.per_image: list[dict[str, Any]] = []

    def update(self, pred: Tensor, target: Tensor, image_id: str = "") -> None:
        """Add one image: ``pred`` and ``target`` (H, W) of the same (native) size."""
        if pred.shape != target.shape:
            raise DataFormatError(
                f"prediction {tuple(pred.shape)} and mask {tuple(target.shape)} differ in size; "
                "predict over the whole image"
            )
        t = target.long().reshape(-1)
        p = pred.long().reshape(-1)
        keep = (t != self.ignore_index) & (t >= 0) & (t < self.num_classes)
        self.pixels += int(keep.sum())
        self.ignored += int((~keep).sum())
        k = self.num_classes
        conf = torch.bincount(t[keep] * k + p[keep], minlength=k * k).view(k, k)
        self.confusion += conf
        self.metrics.update(pred[None].long(), target[None].long())
        self.per_image.append({"id": image_id, **confusion_summary(conf)})

    def compute(self, class_names: Sequence[str]) -> dict[str, Any]:
        """Metrics: ``miou``, ``overall_accuracy``, ``mean_accuracy``, ``f1_macro``,
        ``iou`` / ``f1`` per class name (None for a class absent from truth and prediction),
        ``confusion``, ``pixels`` (scored) and ``ignored_pixels``."""
        values = self.metrics.compute()
        present = present_classes(self.confusion)
        out: dict[str, Any] = {}
        for key in ("miou", "overall_accuracy", "mean_accuracy", "f1_macro"):
            out[key] = float(values[key])
        for key in ("iou", "f1"):
            vec = values[f"{key}_per_class"].float().tolist()
            out[key] = {
                name: (float(v) if bool(present[i]) else None)
                for i, (name, v) in enumerate(zip(class_names, vec, strict=True))
            }
        out["confusion"] = self.confusion.tolist()
        out["pixels"] = self.pixels
        out["ignored_pixels"] = self.ignored
        out["per_image"] = self.per_image
        return out


def confusion_summary(confusion: Tensor) -> dict[str, Any]:
    """``pixels``, ``overall_accuracy`` and ``miou`` (over classes present in truth or prediction)
    of one (K, K) confusion matrix; None when it is empty."""
    conf = confusion.double()
    total = float(conf.sum())
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return {
        "pixels": int(total),
        "overall_accuracy": float(tp.sum() / total) if total else None,
        "miou": float((tp[present] / union[present]).mean()) if bool(present.any()) else None,
    }


__all__ = [
    "Extractor",
    "FeatureBank",
    "FusedSegmenter",
    "ScaledImage",
    "WholeImageScorer",
    "confusion_summary",
    "load_scaled",
    "padded",
    "predict_whole",
    "scaled_size",
    "to_native",
    "train_segmenter",
]
