"""Metrics checked against confusion matrices written by hand."""

from __future__ import annotations

import pytest
import torch

from satdifuser.tasks.metrics import (
    METRIC_CONVENTIONS,
    classification_metrics,
    flatten_metrics,
    multilabel_metrics,
    present_classes,
    segmentation_metrics,
)


def from_confusion(cm: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets realising ``cm[true][pred]`` (shuffled)."""
    preds, target = [], []
    for t, row in enumerate(cm):
        for p, n in enumerate(row):
            preds += [p] * n
            target += [t] * n
    perm = torch.randperm(len(preds))
    return torch.tensor(preds)[perm], torch.tensor(target)[perm]


CLS_CM = [[5, 1, 0], [2, 3, 1], [0, 0, 4]]


def test_classification_metrics_match_hand_computed_confusion_matrix() -> None:
    preds, target = from_confusion(CLS_CM)
    m = classification_metrics(3)
    m.update(preds[:7], target[:7])  # two updates: values are dataset-level, not batch means
    m.update(preds[7:], target[7:])
    v = m.compute()
    tp, support, predicted = [5, 3, 4], [6, 6, 4], [7, 4, 5]
    precision = [tp[k] / predicted[k] for k in range(3)]
    recall = [tp[k] / support[k] for k in range(3)]
    f1 = [2 * tp[k] / (support[k] + predicted[k]) for k in range(3)]
    p_bar, r_bar = sum(precision) / 3, sum(recall) / 3
    assert v["overall_accuracy"].item() == pytest.approx(12 / 16)
    assert v["mean_accuracy"].item() == pytest.approx(r_bar)
    assert v["f1_macro"].item() == pytest.approx(sum(f1) / 3)
    assert v["precision_macro"].item() == pytest.approx(p_bar)
    assert v["recall_macro"].item() == pytest.approx(r_bar)
    assert v["f1_satdifuser"].item() == pytest.approx(2 * p_bar * r_bar / (p_bar + r_bar))
    assert v["f1_satdifuser"].item() != pytest.approx(v["f1_macro"].item())  # not the same metric
    assert v["f1_per_class"].tolist() == pytest.approx(f1)
    assert v["accuracy_per_class"].tolist() == pytest.approx(recall)


SEG_CM = [[10, 2, 0, 0], [3, 5, 0, 0], [0, 1, 4, 0], [0, 0, 0, 0]]  # class 3 never occurs


def _seg_batch(cm: list[list[int]], extra_ignored: int = 0, ignore: int = 255):
    preds, target = from_confusion(cm)
    if extra_ignored:
        preds = torch.cat([preds, torch.randint(0, 4, (extra_ignored,))])
        target = torch.cat([target, torch.full((extra_ignored,), ignore)])
    n = preds.numel()
    return preds.view(1, 1, n), target.view(1, 1, n)  # (B, H, W) like masks


def test_miou_is_macro_over_present_classes_and_drops_ignored_pixels() -> None:
    preds, target = _seg_batch(SEG_CM, extra_ignored=9, ignore=255)
    m = segmentation_metrics(4, ignore_index=255)
    m.update(preds, target)
    v = m.compute()
    iou = [10 / (12 + 13 - 10), 5 / (8 + 8 - 5), 4 / (5 + 4 - 4)]
    assert v["miou"].item() == pytest.approx(sum(iou) / 3)  # class 3 absent: not averaged
    assert v["overall_accuracy"].item() == pytest.approx(19 / 25)  # ignored pixels not counted
    assert v["iou_per_class"][:3].tolist() == pytest.approx(iou)
    f1 = [20 / 25, 10 / 16, 8 / 9]
    assert v["f1_macro"].item() == pytest.approx(sum(f1) / 3)


def test_ignore_index_that_is_a_class_id_drops_its_pixels_and_its_iou() -> None:
    preds, target = _seg_batch(SEG_CM)
    m = segmentation_metrics(4, ignore_index=2)
    m.update(preds, target)
    v = m.compute()
    # row 2 (true class 2) is dropped; the remaining predictions of class 2 are none
    iou0, iou1 = 10 / (12 + 13 - 10), 5 / (8 + 7 - 5)
    assert v["miou"].item() == pytest.approx((iou0 + iou1) / 2)


def test_miou_without_ignore_index_matches_geobench_all_classes_convention() -> None:
    cm = [[3, 1], [2, 4]]
    preds, target = _seg_batch(cm)
    m = segmentation_metrics(2, ignore_index=None)
    m.update(preds, target)
    iou = [3 / (4 + 5 - 3), 4 / (6 + 5 - 4)]
    assert m.compute()["miou"].item() == pytest.approx(sum(iou) / 2)


def test_multilabel_micro_f1_and_subset_accuracy_by_hand() -> None:
    target = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    preds = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]])
    m = multilabel_metrics(3)
    m.update(preds, target)
    v = m.compute()
    tp, fp, fn = 4, 1, 2
    assert v["f1_micro"].item() == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert v["precision_micro"].item() == pytest.approx(tp / (tp + fp))
    assert v["recall_micro"].item() == pytest.approx(tp / (tp + fn))
    assert v["subset_accuracy"].item() == pytest.approx(1 / 4)
    # label 0: TP 2; label 1: TP 1, FN 1; label 2: TP 1, FP 1, FN 1
    assert v["f1_per_class"].tolist() == pytest.approx([1.0, 2 / 3, 2 / 4])
    assert v["f1_macro"].item() == pytest.approx((1.0 + 2 / 3 + 1 / 2) / 3)


def test_flatten_marks_absent_classes_as_none_not_zero() -> None:
    preds, target = _seg_batch(SEG_CM)
    m = segmentation_metrics(4)
    m.update(preds, target)
    cm = torch.tensor(SEG_CM)
    present = present_classes(cm)
    flat = flatten_metrics(m.compute(), ["a", "b", "c", "d"], "test/", present)
    assert flat["test/iou/d"] is None and flat["test/f1/d"] is None
    assert flat["test/iou/a"] == pytest.approx(10 / 15)
    assert isinstance(flat["test/miou"], float)
    assert present_classes(cm, ignore_index=0).tolist() == [False, True, True, False]


def test_every_logged_metric_has_a_documented_convention() -> None:
    names = set(classification_metrics(3)) | set(multilabel_metrics(3))
    names |= set(segmentation_metrics(3))
    for name in names:
        base = name.removesuffix("_per_class")
        assert base in METRIC_CONVENTIONS, name


def test_absent_class_is_left_out_of_single_label_macro_means() -> None:
    preds, target = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1])
    with_absent, without = classification_metrics(3), classification_metrics(2)
    with_absent.update(preds, target)
    without.update(preds, target)
    a, b = with_absent.compute(), without.compute()
    for name in ("mean_accuracy", "f1_macro", "precision_macro", "recall_macro", "f1_satdifuser"):
        assert a[name].item() == pytest.approx(b[name].item()), name
