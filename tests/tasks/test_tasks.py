"""Task behaviour: frozen extractor, optimizer contents, losses, data checks, checkpoints."""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from task_fakes import SMALL_GW, CountingExtractor, TinyData, TinyDataModule, tiny_trainer

from satdifuser.errors import CheckpointError, ConfigError, InputError, UnknownNameError
from satdifuser.fusion import GlobalWeightedFusion, MoEFusion
from satdifuser.heads import FPNHead, LinearHead
from satdifuser.tasks import (
    BestTrainableCheckpoint,
    ClassificationTask,
    MultiLabelClassificationTask,
    SegmentationTask,
    load_trainable,
    read_checkpoint,
    resolve_checkpoint,
    save_trainable,
)


def cls_task(**kw: object) -> ClassificationTask:
    args = {"fusion": "global_weighted", "fusion_args": SMALL_GW, "head": "linear"} | kw
    return ClassificationTask(CountingExtractor(), 3, **args)


def batch(kind: str = "cls", n: int = 4, k: int = 3) -> dict:
    items = [TinyData(n, kind, k)[i] for i in range(n)]
    out = {key: [it[key] for it in items] for key in items[0]}
    for key in ("image", "meta", "mask"):
        if key in out:
            out[key] = torch.stack(out[key])
    if "label" in out:
        out["label"] = torch.stack([torch.as_tensor(v) for v in out["label"]])
    return out


def test_optimizer_gets_exactly_fusion_and_head_parameters() -> None:
    task = cls_task()
    opt = task.configure_optimizers()["optimizer"]
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    expected = {id(p) for p in [*task.fusion.parameters(), *task.head.parameters()]}
    assert in_opt == expected and len(expected) > 0
    assert not in_opt & {id(p) for p in task.extractor.parameters()}
    assert all(not p.requires_grad for p in task.extractor.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == pytest.approx(2e-5)


def test_backbone_stays_eval_under_train_and_gets_no_gradient() -> None:
    task = cls_task().train()
    assert task.training and task.fusion.training and not task.extractor.training
    assert not task.extractor.bn.training
    before = task.extractor.bn.running_mean.clone()
    loss = task.training_step(batch(), 0)
    loss.backward()
    assert all(p.grad is None for p in task.extractor.parameters())
    assert all(p.grad is not None for p in task.trainable_parameters())
    assert torch.equal(task.extractor.bn.running_mean, before)  # eval BN: stats untouched


def test_backbone_stays_eval_during_and_after_trainer_fit(tmp_path: Path) -> None:
    task = cls_task()
    seen: list[tuple[bool, bool]] = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # type: ignore[no-untyped-def]
            seen.append((pl_module.extractor.training, pl_module.fusion.training))

    tiny_trainer(tmp_path, callbacks=[Spy()]).fit(task, TinyDataModule())
    assert seen and all(s == (False, True) for s in seen)
    assert not task.extractor.training
    assert (tmp_path / "best.safetensors").is_file()  # written by BestTrainableCheckpoint


def test_cached_features_in_the_batch_skip_the_extractor() -> None:
    task = cls_task()
    b = batch()
    b["features"] = task.extractor(b["image"])
    calls = task.extractor.calls
    del b["image"]
    task.validation_step(b, 0)
    assert task.extractor.calls == calls
    task.validation_step(batch(), 0)
    assert task.extractor.calls == calls + 1


def test_fusion_aux_loss_is_added_to_the_training_loss() -> None:
    task = ClassificationTask(CountingExtractor(), 3, fusion=functools.partial(
        MoEFusion, projection_dim=8, bottleneck_dim=4, num_groups=2, num_experts=2, top_k=1,
        warmup_steps=0, balance_coef=10.0), head="linear")  # fmt: skip
    task.train()
    b = batch()
    total = task.training_step(b, 0)
    aux = task.fusion.aux_loss()
    assert aux.requires_grad and float(aux) > 0
    task.eval()
    with torch.no_grad():
        plain = task.loss_fn(task.forward_features(task.features(b)), b["label"])
    assert float(total) == pytest.approx(float(plain) + float(aux), rel=1e-4)


def test_fusion_and_head_from_classes_or_names_are_the_same_modules() -> None:
    a = cls_task()
    b = ClassificationTask(CountingExtractor(), 3, fusion=functools.partial(
        GlobalWeightedFusion, **SMALL_GW), head=LinearHead)  # fmt: skip
    assert type(a.fusion) is type(b.fusion) is GlobalWeightedFusion
    assert type(a.head) is type(b.head) is LinearHead
    assert (
        a.checkpoint_metadata()["fusion"]
        == "satdifuser.fusion.global_weighted.GlobalWeightedFusion"
    )


def test_unknown_fusion_and_head_names_are_clear_errors() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown fusion 'global_weigted'.*did you mean"):
        cls_task(fusion="global_weigted")
    with pytest.raises(UnknownNameError, match="unknown head 'lineer'"):
        cls_task(head="lineer")
    with pytest.raises(ConfigError, match="fusion_args is only used with a registry name"):
        ClassificationTask(CountingExtractor(), 3, fusion=functools.partial(
            GlobalWeightedFusion, **SMALL_GW), fusion_args={"projection_dim": 4})  # fmt: skip


def test_class_count_mismatch_with_the_data_is_a_config_error(tmp_path: Path) -> None:
    task = cls_task()
    with pytest.raises(ConfigError, match=r"num_classes=3 but data TinyDataModule has 5 classes"):
        tiny_trainer(tmp_path).fit(task, TinyDataModule(k=5))
    with pytest.raises(ConfigError, match="is a segmentation dataset but the model is"):
        task.check_datamodule(TinyDataModule(kind="seg"))


def test_labels_out_of_range_name_the_sample() -> None:
    task = cls_task()
    b = batch()
    b["label"][2] = 7
    with pytest.raises(InputError, match=r"value 7 \(sample 'img2'\) outside \[0, 3\)"):
        task.training_step(b, 0)
    seg = SegmentationTask(CountingExtractor(), 3, fusion_args=SMALL_GW, head="fpn",
                           head_args={"channels": 8}, ignore_index=255)  # fmt: skip
    sb = batch("seg")
    sb["mask"][1, 0, 0] = 255  # ignored: fine
    seg.validation_step(sb, 0)
    sb["mask"][1, 0, 1] = -3
    with pytest.raises(InputError, match="value -3"):
        seg.validation_step(sb, 0)


def test_multilabel_width_mismatch_and_bad_values() -> None:
    task = MultiLabelClassificationTask(CountingExtractor(), 4, fusion_args=SMALL_GW)
    with pytest.raises(ConfigError, match=r"batch labels have 3 entries but .*num_classes=4"):
        task.training_step(batch("multilabel"), 0)
    task3 = MultiLabelClassificationTask(CountingExtractor(), 3, fusion_args=SMALL_GW)
    b = batch("multilabel")
    loss = task3.training_step(b, 0)
    assert torch.isfinite(loss)
    b["label"][0, 0] = 2
    with pytest.raises(InputError, match="must be 0 or 1"):
        task3.training_step(b, 0)
    preds = task3.predictions(torch.tensor([[0.0, 0.1, -0.1]]))
    assert preds.tolist() == [[0, 1, 0]]  # sigmoid(0) = 0.5 is not > 0.5


def test_segmentation_logits_match_mask_size_and_sliding_window_covers_image() -> None:
    task = SegmentationTask(CountingExtractor(), 3, fusion_args=SMALL_GW,
                            head=functools.partial(FPNHead, channels=8), sliding_window=8,
                            sliding_overlap=0.5)  # fmt: skip
    b = batch("seg")
    task.eval()
    with torch.no_grad():
        direct = task.forward_features(task.features(b), output_size=(16, 16))
        slid = task.logits(b, b["mask"])
    assert direct.shape == slid.shape == (4, 3, 16, 16)
    calls = task.extractor.calls
    with torch.no_grad():
        task.logits(b, b["mask"])
    assert task.extractor.calls - calls == 2  # 9 windows of 8 px, 8 per call
    task.train()
    assert task.logits(b, b["mask"]).shape == (4, 3, 16, 16)


def test_trainable_checkpoint_round_trip_and_mismatch(tmp_path: Path) -> None:
    a = cls_task()
    with torch.no_grad():
        for p in a.trainable_parameters():
            p.add_(torch.randn_like(p))
    path = save_trainable(a, tmp_path / "best.safetensors", {"epoch": 3, "score": 0.5})
    tensors, meta = read_checkpoint(path)
    assert all(k.startswith(("standardizer.", "fusion.", "head.")) for k in tensors)
    assert not any(k.startswith("extractor") for k in tensors)
    assert meta["epoch"] == "3" and meta["task"].endswith("ClassificationTask")
    b = cls_task()
    x = batch()
    load_trainable(b, path)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.allclose(a.logits(x, None), b.logits(x, None))
    with pytest.raises(CheckpointError, match="num_classes=3 but the config gives num_classes=4"):
        load_trainable(ClassificationTask(CountingExtractor(), 4, fusion_args=SMALL_GW), path)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_trainable(cls_task(fusion_args={**SMALL_GW, "projection_dim": 4}), path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_checkpoint(tmp_path / "junk.safetensors")


def test_bad_task_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="num_classes=0"):
        ClassificationTask(CountingExtractor(), 0)
    with pytest.raises(ConfigError, match="class_names has 2 names but num_classes=3"):
        cls_task(class_names=["a", "b"])
    with pytest.raises(ConfigError, match="has no feature_info"):
        ClassificationTask(torch.nn.Linear(2, 2), 3)
    with pytest.raises(ConfigError, match=r"threshold=1\.5"):
        MultiLabelClassificationTask(CountingExtractor(), 3, threshold=1.5)
    with pytest.raises(ConfigError, match="min_lr"):
        cls_task(min_lr=1.0)


def test_checkpoint_from_another_extractor_warns(tmp_path: Path) -> None:
    path = save_trainable(cls_task(), tmp_path / "best.safetensors")
    other = cls_task()
    other.extractor.identity = lambda: "another-backbone"  # type: ignore[method-assign]
    with pytest.warns(UserWarning, match="trained on features of extractor"):
        load_trainable(other, path)


def test_resolve_checkpoint_accepts_best_run_dir_or_file(tmp_path: Path) -> None:
    path = save_trainable(cls_task(), tmp_path / "best.safetensors")
    assert resolve_checkpoint("best", tmp_path) == path
    assert resolve_checkpoint(tmp_path, "elsewhere") == path
    assert resolve_checkpoint(path, "elsewhere") == path
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        resolve_checkpoint("best", tmp_path / "missing")
    (tmp_path / "model.ckpt").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match=r"pickled Lightning \.ckpt files are not read"):
        resolve_checkpoint(tmp_path / "model.ckpt", tmp_path)


def test_best_checkpoint_is_written_only_when_the_monitor_improves(tmp_path: Path) -> None:
    task = cls_task()
    cb = BestTrainableCheckpoint("val/overall_accuracy", "max", tmp_path)
    trainer = SimpleNamespace(sanity_checking=False, state=SimpleNamespace(fn="fit"),
                              callback_metrics={}, current_epoch=0, global_step=5,
                              is_global_zero=True, default_root_dir=str(tmp_path))  # fmt: skip
    for epoch, score in enumerate([0.5, 0.4, 0.7, float("nan")]):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val/overall_accuracy": torch.tensor(score)}
        cb.on_validation_end(trainer, task)  # type: ignore[arg-type]
    meta = read_checkpoint(tmp_path / "best.safetensors")[1]
    assert cb.best_epoch == 2 and meta["epoch"] == "2"
    assert float(meta["score"]) == pytest.approx(0.7)
    trainer.sanity_checking = True
    trainer.callback_metrics = {"val/overall_accuracy": torch.tensor(0.9)}
    cb.on_validation_end(trainer, task)  # type: ignore[arg-type]
    assert cb.best_score == pytest.approx(0.7)


def test_real_tiny_backbone_gets_no_gradient_and_stays_eval() -> None:
    from satdifuser.features import FeatureExtractor

    fx = FeatureExtractor("tiny-pixel", timesteps=[21], image_size=32)
    task = ClassificationTask(fx, 3, fusion_args=SMALL_GW).train()
    unet = fx.backbone.unet
    assert not unet.training and not any(p.requires_grad for p in unet.parameters())
    task.training_step(batch(), 0).backward()
    assert all(p.grad is None for p in unet.parameters())
    assert all(p.grad is not None for p in task.trainable_parameters())
    opt = task.configure_optimizers()["optimizer"]
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in unet.parameters()}
