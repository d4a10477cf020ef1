"""Semantic segmentation on frozen diffusion features (UPerNet or FPN head by default)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection

from satdifuser.errors import ConfigError
from satdifuser.tasks.base import BaseTask, FusionFactory, HeadFactory
from satdifuser.tasks.checks import class_id_target
from satdifuser.tasks.losses import MulticlassLossFn
from satdifuser.tasks.metrics import segmentation_metrics


class SegmentationTask(BaseTask):
    """Per-pixel classification; logits are upsampled to the mask size (labels never resized).

    Monitors ``val/miou`` (macro over classes, ``ignore_index`` pixels dropped). With
    ``sliding_window`` set, validation and test predict each image window by window with
    overlap and average the logits, so metrics are computed on whole images (use batch size 1
    for images of different sizes).

    Args:
        extractor: Frozen feature extractor.
        num_classes: Number of classes (``ignore_index`` not counted unless it is a class id).
        fusion: Fusion class (``class_path``) or registry name.
        head: Head class or registry name (``upernet`` by default, ``fpn`` is lighter).
        loss: ``ce`` (the paper's), ``focal``, ``dice`` or ``ce+dice``.
        class_weights: Per-class loss weights.
        sliding_window: Window side in pixels for evaluation, or None to predict whole batches.
        sliding_overlap: Fraction of the window shared by neighbours, in [0, 1).
        sliding_batch_size: Windows per forward pass.
        num_plot_samples: Test images kept for the image / ground truth / prediction panels.
        **kwargs: Shared options of :class:`~satdifuser.tasks.base.BaseTask` (``ignore_index``,
            ``lr`` ...).
    """

    task_type: ClassVar[str] = "segmentation"
    monitor: ClassVar[str] = "val/miou"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(
        self,
        extractor: nn.Module,
        num_classes: int,
        fusion: FusionFactory | str = "global_weighted",
        head: HeadFactory | str = "upernet",
        loss: Literal["ce", "focal", "dice", "ce+dice"] = "ce",
        class_weights: list[float] | None = None,
        sliding_window: int | None = None,
        sliding_overlap: float = 0.5,
        sliding_batch_size: int = 8,
        num_plot_samples: int = 4,
        **kwargs: Any,
    ) -> None:
        if sliding_window is not None and sliding_window < 8:
            raise ConfigError(f"sliding_window={sliding_window} must be >= 8 pixels or null")
        if not 0.0 <= sliding_overlap < 1.0:
            raise ConfigError(f"sliding_overlap={sliding_overlap} must lie in [0, 1)")
        if sliding_batch_size < 1 or num_plot_samples < 0:
            raise ConfigError("sliding_batch_size must be >= 1 and num_plot_samples >= 0")
        self._loss_args = (loss, class_weights)
        super().__init__(extractor, num_classes, fusion, head, **kwargs)
        self.sliding_window = sliding_window
        self.sliding_overlap = sliding_overlap
        self.sliding_batch_size = sliding_batch_size
        self.num_plot_samples = num_plot_samples
        self.examples: list[tuple[Tensor, Tensor, Tensor, str]] = []

    def build_loss(self) -> nn.Module:
        """Pixel cross-entropy (or focal / Dice) with ``ignore_index``."""
        name, weights = self._loss_args
        return MulticlassLossFn(name, self.num_classes, self.ignore_index, weights)

    def build_metrics(self) -> MetricCollection:
        """See :func:`satdifuser.tasks.metrics.segmentation_metrics`."""
        return segmentation_metrics(self.num_classes, self.ignore_index)

    def target_of(self, batch: dict[str, Any]) -> Tensor:
        """``batch["mask"]`` as (B, H, W) int64, range-checked."""
        return class_id_target(
            batch, "mask", "(B, H, W)", kind="segmentation", task_name="SegmentationTask",
            num_classes=self.num_classes, ignore_index=self.ignore_index,
        )  # fmt: skip

    def logits(self, batch: dict[str, Any], target: Tensor | None) -> Tensor:
        """Logits at the mask size (the image size without a mask); sliding in evaluation."""
        if target is not None:
            size = tuple(target.shape[-2:])
        elif "image" in batch:
            size = tuple(batch["image"].shape[-2:])
        else:
            size = None
        window = self.sliding_window
        image = batch.get("image")
        if (
            window is None
            or self.training
            or "features" in batch
            or image is None
            or max(image.shape[-2:]) <= window
        ):
            return self.forward_features(self.features(batch), output_size=size)
        return self._sliding_logits(image, batch.get("meta"), size)

    def _sliding_logits(self, image: Tensor, meta: Tensor | None, size: Any) -> Tensor:
        from satdifuser.data.tiling import sliding_window_predict

        n = image.shape[0]
        window = int(self.sliding_window or 0)

        def fn(tiles: Tensor) -> Tensor:
            reps = tiles.shape[0] // n
            m = None if meta is None else meta.repeat(reps, 1)
            feats = self.features({"image": tiles, "meta": m})
            return self.forward_features(feats, output_size=(window, window))

        out = sliding_window_predict(
            fn, image, window, self.sliding_overlap, self.num_classes, self.sliding_batch_size
        )
        if size is not None and tuple(out.shape[-2:]) != tuple(size):
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out

    def on_eval_batch(
        self, batch: dict[str, Any], logits: Tensor, target: Tensor, stage: str
    ) -> None:
        """Keep the first ``num_plot_samples`` test images with their mask and prediction."""
        if stage != "test" or len(self.examples) >= self.num_plot_samples:
            return
        image = batch.get("image")
        if image is None:
            return
        preds = logits.argmax(1)
        ids = batch.get("id")
        for i in range(min(image.shape[0], self.num_plot_samples - len(self.examples))):
            step = max(1, max(target.shape[-2:]) // 512)
            img = image[i].detach().float().cpu()
            if img.shape[-2:] != target.shape[-2:]:
                img = F.interpolate(img[None], size=target.shape[-2:], mode="bilinear")[0]
            name = str(ids[i]) if isinstance(ids, (list, tuple)) and i < len(ids) else f"#{i}"
            self.examples.append(
                (
                    img[:, ::step, ::step].clamp(0, 1),
                    target[i, ::step, ::step].detach().cpu(),
                    preds[i, ::step, ::step].detach().cpu(),
                    name,
                )
            )

    def on_test_epoch_start(self) -> None:
        """Reset accumulators and kept examples."""
        super().on_test_epoch_start()
        self.examples = []


__all__ = ["SegmentationTask"]
