"""The shared Lightning task: frozen extractor -> trainable fusion -> trainable head.

Only the fusion and the head train (SatDiFuser, Jia et al., ICCV 2025, arXiv 2503.07890). The
extractor is frozen: ``requires_grad`` off, kept in eval mode even when Lightning calls
``.train()``, run under ``torch.no_grad``, and never given to the optimizer. A batch that carries
``features`` (from a feature cache) skips the extractor.

Defaults follow the paper (method.md section 9): Adam, lr 1e-2, 5-epoch linear warm-up from 2e-5,
cosine to 1e-5 at epoch 40 (``schedule_epochs``; the trainer's ``max_epochs`` when None), early
stopping after 10 validations without improvement of :attr:`BaseTask.monitor`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.callbacks import EarlyStopping
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix

from satdifuser.errors import CheckpointError, ConfigError, InputError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import BaseFusion, create_fusion
from satdifuser.model import ChannelStandardizer, SatDiFuserModel
from satdifuser.tasks.checkpoint import BestTrainableCheckpoint
from satdifuser.tasks.checks import check_datamodule, check_labels, data_class_colors
from satdifuser.tasks.metrics import flatten_metrics, present_classes
from satdifuser.tasks.schedule import check_schedule, warmup_cosine_scheduler

FusionFactory = Callable[[list[FeatureInfo]], BaseFusion]
"""A fusion class configured without its ``feature_info`` (YAML ``class_path`` + ``init_args``)."""

HeadFactory = Callable[[list[int], int], nn.Module]
"""A head class configured without ``in_channels`` and ``num_classes``."""

OptimizerName = Literal["adam", "adamw", "sgd"]


def class_path(obj: object) -> str:
    """``module.QualName`` of a class, of an instance's class, or of a partial's target."""
    if isinstance(obj, functools.partial):  # jsonargparse: partial(call, instantiator, cls, ...)
        obj = next((a for a in (obj.func, *obj.args) if isinstance(a, type)), obj.func)
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class BaseTask(LightningModule):
    """Base of :class:`ClassificationTask`, :class:`MultiLabelClassificationTask` and
    :class:`SegmentationTask`; see those for the arguments.

    Class attributes ``monitor`` / ``mode`` name the validation metric used for early stopping
    and the best checkpoint.
    """

    task_type: ClassVar[str] = ""
    monitor: ClassVar[str] = "val/loss"
    mode: ClassVar[Literal["min", "max"]] = "min"

    def __init__(
        self,
        extractor: nn.Module,
        num_classes: int,
        fusion: FusionFactory | str = "global_weighted",
        head: HeadFactory | str = "linear",
        fusion_args: dict[str, Any] | None = None,
        head_args: dict[str, Any] | None = None,
        ignore_index: int | None = None,
        class_names: list[str] | None = None,
        optimizer: OptimizerName = "adam",
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        warmup_epochs: int = 5,
        warmup_start_lr: float = 2e-5,
        min_lr: float = 1e-5,
        schedule_epochs: int | None = None,
        early_stopping_patience: int | None = 10,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes={num_classes!r} must be a positive integer")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(
                f"class_names has {len(class_names)} names but num_classes={num_classes}; give "
                "one name per class or leave class_names unset to take them from the data"
            )
        info = getattr(extractor, "feature_info", None)
        if not isinstance(extractor, nn.Module) or not info:
            raise ConfigError(
                f"extractor {type(extractor).__name__} has no feature_info; pass a "
                "satdifuser.features.FeatureExtractor (class_path/init_args in YAML)"
            )
        check_schedule(lr, warmup_epochs, warmup_start_lr, schedule_epochs or 40, min_lr)
        if early_stopping_patience is not None and early_stopping_patience < 1:
            raise ConfigError(
                f"early_stopping_patience={early_stopping_patience} must be >= 1 or null (off)"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = (
            list(class_names) if class_names else [str(i) for i in range(num_classes)]
        )
        self.class_colors: list[tuple[int, int, int]] | None = None  # from the data (setup)
        self.extractor = extractor.requires_grad_(False).eval()
        self.standardizer = ChannelStandardizer([f.channels for f in info], bool(standardize))
        self.fusion = self._build_fusion(fusion, fusion_args, list(info))
        self.head = self._build_head(head, head_args, list(self.fusion.out_channels), num_classes)
        self.save_hyperparameters(ignore=["extractor", "fusion", "head"])
        self.hparams["fusion"] = class_path(self.fusion)
        self.hparams["head"] = class_path(self.head)
        self.hparams["extractor"] = self.extractor_identity()
        self.loss_fn = self.build_loss()
        self.val_metrics = self.build_metrics()
        self.test_metrics = self.build_metrics()
        self.val_confusion = self._confusion()
        self.test_confusion = self._confusion()
        self.run_config: str | None = None
        self.results: dict[str, dict[str, float | None]] = {}
        self.confusion: dict[str, Tensor] = {}
        self.fusion_weights: dict[str, dict[str, Tensor]] = {}
        self._weight_sums: dict[str, Tensor] = {}
        self._weight_count = 0
        self.input_contract: dict[str, Any] = {}
        self.card: dict[str, Any] = {}

    # -- the model ----------------------------------------------------------------------------

    @property
    def model(self) -> SatDiFuserModel:
        """The trained product: this task's extractor, standardiser, fusion and head as one
        :class:`~satdifuser.model.SatDiFuserModel` (the same modules, not copies)."""
        channels = getattr(self.extractor, "in_channels", None) or 3
        contract = {"channels": int(channels), **self.input_contract}
        window = getattr(self, "sliding_window", None)  # segmentation: the window it was scored on
        if window and not contract.get("window"):
            contract["window"] = int(window)
        return SatDiFuserModel(
            self.extractor, self.fusion, self.head, self.task_type, self.class_names,
            self.standardizer, input_contract=contract, ignore_index=self.ignore_index,
            card=self.card, class_colors=self.class_colors,
        )  # fmt: skip

    def on_fit_start(self) -> None:
        """Fit the standardiser on the training features (once) and read the input contract."""
        dm = getattr(self.trainer, "datamodule", None)
        contract = getattr(dm, "input_contract", None)
        if callable(contract):
            self.input_contract = dict(contract())
        resample = getattr(dm, "resample", None)  # data resized from native pixels (ScaledTiles)
        if resample is not None:
            self.input_contract["resample"] = float(resample)
        if not self.standardizer.enabled or self.standardizer.is_fitted:
            return
        if dm is not None and callable(getattr(dm, "train_dataloader", None)):
            loader = dm.train_dataloader()
        else:
            loader = self.trainer.fit_loop._data_source.dataloader()
        device = self.device

        def batches() -> Any:
            for batch in loader:
                batch = self.transfer_batch_to_device(batch, device, 0)
                yield self.features(batch)

        self.standardizer.fit(batches())

    # -- construction -------------------------------------------------------------------------

    @staticmethod
    def _build_fusion(
        fusion: FusionFactory | str, args: dict[str, Any] | None, info: list[FeatureInfo]
    ) -> BaseFusion:
        if isinstance(fusion, str):
            return create_fusion(fusion, info, **(args or {}))
        if args:
            raise ConfigError(
                "fusion_args is only used with a registry name (fusion: moe); put "
                "the arguments under fusion.init_args instead"
            )
        module = fusion(info)
        if not isinstance(module, nn.Module) or not hasattr(module, "out_channels"):
            raise ConfigError(
                f"fusion {class_path(fusion)} did not build a fuser with out_channels"
            )
        return module

    @staticmethod
    def _build_head(
        head: HeadFactory | str, args: dict[str, Any] | None, channels: list[int], k: int
    ) -> nn.Module:
        if isinstance(head, str):
            from satdifuser.heads import create_head

            return create_head(head, channels, k, **(args or {}))
        if args:
            raise ConfigError(
                "head_args is only used with a registry name (head: linear); put "
                "the arguments under head.init_args instead"
            )
        return head(channels, k)

    def _confusion(self) -> MulticlassConfusionMatrix | None:
        if self.task_type == "multilabel":
            return None
        return MulticlassConfusionMatrix(
            self.num_classes, ignore_index=self.ignore_index, validate_args=False
        )

    def build_metrics(self) -> MetricCollection:  # pragma: no cover - abstract
        """The task's metric collection (see :mod:`satdifuser.tasks.metrics`)."""
        raise NotImplementedError

    def build_loss(self) -> nn.Module:  # pragma: no cover - abstract
        """The task's loss module."""
        raise NotImplementedError

    def target_of(self, batch: dict[str, Any]) -> Tensor:  # pragma: no cover - abstract
        """The checked target of a batch (label or mask)."""
        raise NotImplementedError

    def predictions(self, logits: Tensor) -> Tensor:
        """Hard predictions for metrics: argmax over classes."""
        return logits.argmax(1)

    # -- frozen extractor ---------------------------------------------------------------------

    def train(self, mode: bool = True) -> BaseTask:
        """Set train/eval mode on fusion and head; the extractor always stays in eval mode."""
        super().train(mode)
        self.extractor.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer gets: fusion + head only."""
        return [p for m in (self.fusion, self.head) for p in m.parameters() if p.requires_grad]

    def extractor_identity(self) -> str:
        """The extractor's ``identity()`` (weights + feature spec), or its class name."""
        ident = getattr(self.extractor, "identity", None)
        value = ident() if callable(ident) else type(self.extractor).__name__
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)

    def features(self, batch: dict[str, Any]) -> list[Tensor]:
        """Cached ``batch["features"]`` if present, else the frozen extractor's output."""
        if "features" in batch:
            return list(batch["features"])
        if "image" not in batch:
            raise InputError(
                f"batch has neither 'features' nor 'image' (keys: {sorted(batch)}); the data "
                "module must yield dicts with image (B, 3, H, W) in [0, 1]"
            )
        with torch.no_grad():
            return list(self.extractor(batch["image"], batch.get("meta")))

    def forward_features(self, features: list[Tensor], output_size: Any = None) -> Tensor:
        """Logits from extracted features: standardiser, fusion, then head."""
        return self.head(self.fusion(self.standardizer(features)), output_size=output_size)

    def forward(self, images: Tensor, meta: Tensor | None = None) -> Tensor:
        """Logits for images (B, 3, H, W) in [0, 1]."""
        return self.logits({"image": images, "meta": meta}, None)

    def logits(self, batch: dict[str, Any], target: Tensor | None) -> Tensor:
        """Logits of a batch; segmentation passes the mask size as the output size."""
        return self.forward_features(self.features(batch))

    # -- steps --------------------------------------------------------------------------------

    def _step(self, batch: dict[str, Any], stage: str) -> Tensor:
        target = self.target_of(batch)
        logits = self.logits(batch, target)
        loss = self.loss_fn(logits, target)
        bs = int(target.shape[0])
        if stage == "train":
            aux = self.fusion.aux_loss()
            if self._trainer is not None:
                self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                         batch_size=bs)  # fmt: skip
                if aux.requires_grad or float(aux) != 0.0:
                    self.log("train/aux_loss", aux, on_step=True, on_epoch=True, batch_size=bs)
            return loss + aux
        if self._trainer is not None:
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=stage == "val", batch_size=bs,
                     sync_dist=True)  # fmt: skip
        preds = self.predictions(logits.detach())
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(preds, target)
        confusion = self.val_confusion if stage == "val" else self.test_confusion
        if confusion is not None:
            confusion.update(preds, target)
        self._accumulate_weights()
        self.on_eval_batch(batch, logits, target, stage)
        return loss

    def on_eval_batch(
        self, batch: dict[str, Any], logits: Tensor, target: Tensor, stage: str
    ) -> None:
        """Hook for subclasses (e.g. keep examples for plots)."""

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Loss (+ the fusion's auxiliary loss) of one training batch."""
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Loss and metric update of one validation batch."""
        return self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Loss and metric update of one test batch."""
        return self._step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Hard predictions of one batch."""
        return self.predictions(self.logits(batch, batch.get("mask")))

    def _accumulate_weights(self) -> None:
        weights = (
            self.fusion.interpretable_weights()
            if hasattr(self.fusion, "interpretable_weights")
            else {}
        )
        for k, v in weights.items():
            v = v.detach().float().cpu()
            prev = self._weight_sums.get(k)
            self._weight_sums[k] = v if prev is None or prev.shape != v.shape else prev + v
        self._weight_count += 1

    def on_validation_epoch_start(self) -> None:
        """Reset the per-epoch accumulators."""
        self._weight_sums, self._weight_count = {}, 0

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        """Log the validation metrics of the epoch."""
        self._finish_epoch("val")

    def on_test_epoch_end(self) -> None:
        """Log the test metrics."""
        self._finish_epoch("test")

    def _finish_epoch(self, stage: str) -> None:
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        confusion = self.val_confusion if stage == "val" else self.test_confusion
        values = metrics.compute()
        present = None
        if confusion is not None:
            cm = confusion.compute().detach().cpu().long()
            self.confusion[stage] = cm
            present = present_classes(cm, self.ignore_index)
            confusion.reset()
        metrics.reset()
        flat = flatten_metrics(values, self.class_names, f"{stage}/", present)
        loss = self.trainer.callback_metrics.get(f"{stage}/loss") if self._trainer else None
        if loss is not None:
            flat[f"{stage}/loss"] = float(loss)
        self.results[stage] = flat
        if self._weight_count:
            self.fusion_weights[stage] = {
                k: v / self._weight_count for k, v in self._weight_sums.items()
            }
        for key, value in flat.items():
            if value is not None and not key.endswith("/loss") and self._trainer is not None:
                self.log(key, value, prog_bar=key == self.monitor.replace("val/", f"{stage}/"))

    # -- optimisation and callbacks -----------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer over fusion + head and the per-epoch warm-up/cosine schedule."""
        hp = self.hparams
        params = self.trainable_parameters()
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)
        epochs = hp.schedule_epochs
        if epochs is None:
            max_epochs = self.trainer.max_epochs if self._trainer is not None else None
            epochs = max_epochs if max_epochs and max_epochs > 0 else 40
        sched = warmup_cosine_scheduler(
            opt, hp.warmup_epochs, hp.warmup_start_lr, int(epochs), hp.min_lr
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def configure_callbacks(self) -> list[Callback]:
        """Early stopping on :attr:`monitor` and the best fusion+head checkpoint."""
        callbacks: list[Callback] = [BestTrainableCheckpoint(self.monitor, self.mode)]
        patience = self.hparams.early_stopping_patience
        if patience is not None:
            callbacks.append(EarlyStopping(self.monitor, patience=patience, mode=self.mode))
        return callbacks

    # -- data checks --------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Check the data module against the config (class count, task type, ignore_index)."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if dm is not None:
            self.check_datamodule(dm)

    def check_datamodule(self, dm: object) -> None:
        """Raise :class:`ConfigError` when the data disagrees with the task config; take the
        data's class names when the config gives none, and its class colours (a mask colour
        table) for the saved model."""
        names = check_datamodule(
            dm, self.num_classes, self.task_type, self.ignore_index, type(self).__name__
        )
        if names and not self.hparams.class_names:
            self.class_names = names
        self.class_colors = data_class_colors(dm, self.num_classes)

    def check_labels(self, target: Tensor, batch: dict[str, Any], key: str) -> None:
        """Raise :class:`InputError` for label values outside ``[0, num_classes)``."""
        check_labels(target, batch, key, self.num_classes, self.ignore_index)

    # -- trainable state ----------------------------------------------------------------------

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Standardiser + fusion + head state (parameters and persistent buffers), keys prefixed
        by module."""
        out = {f"standardizer.{k}": v for k, v in self.standardizer.state_dict().items()}
        out.update({f"fusion.{k}": v for k, v in self.fusion.state_dict().items()})
        out.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return out

    def load_trainable_state_dict(self, state: dict[str, Tensor], source: str = "state") -> None:
        """Load :meth:`trainable_state_dict` output strictly.

        Raises:
            CheckpointError: missing or unexpected keys, or shape mismatches.
        """
        if not any(k.startswith("standardizer.") for k in state):  # checkpoints before 0.2
            if self.standardizer.enabled:
                raise CheckpointError(
                    f"{source} holds no standardiser statistics but standardize is on; retrain "
                    "or set standardize: false"
                )
            state = {**state, **{f"standardizer.{k}": v
                                 for k, v in self.standardizer.state_dict().items()}}  # fmt: skip
        mine = self.trainable_state_dict()
        missing = sorted(set(mine) - set(state))
        extra = sorted(set(state) - set(mine))
        shapes = [k for k in mine if k in state and tuple(state[k].shape) != tuple(mine[k].shape)]
        if missing or extra or shapes:
            what = (f"{len(missing)} missing (e.g. {missing[:2]})" if missing else
                    f"{len(extra)} unexpected (e.g. {extra[:2]})" if extra else
                    f"shape mismatch at {shapes[0]}: {tuple(state[shapes[0]].shape)} vs "
                    f"{tuple(mine[shapes[0]].shape)}")  # fmt: skip
            raise CheckpointError(
                f"{source} does not fit this model: {what} keys; it was trained with another "
                "fusion/head/extractor config; use the run's config.yaml"
            )
        for prefix, module in (("standardizer.", self.standardizer), ("fusion.", self.fusion),
                               ("head.", self.head)):  # fmt: skip
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            module.load_state_dict(sub, strict=True)

    def checkpoint_metadata(self) -> dict[str, Any]:
        """What a checkpoint records about this model (compared again on load)."""
        info = [[f.tap, f.timestep, f.channels, f.reduction] for f in self.extractor.feature_info]
        return {
            "task": class_path(self),
            "fusion": class_path(self.fusion),
            "head": class_path(self.head),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "ignore_index": self.ignore_index,
            "feature_info": info,
            "extractor": self.extractor_identity(),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning checkpoints drop the frozen extractor's weights too."""
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith("extractor.")]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Re-insert the current extractor weights so strict loading works."""
        state = checkpoint.setdefault("state_dict", {})
        for key, value in self.extractor.state_dict().items():
            state.setdefault(f"extractor.{key}", value)


__all__ = ["BaseTask", "FusionFactory", "HeadFactory", "class_path"]
