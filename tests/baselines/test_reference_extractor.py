"""The reference's per-batch pipeline as a library baseline: same layout as our extractor, its own
10-pass inversion, and a training loop that recomputes features in every batch."""

from __future__ import annotations

import pytest
import torch

from satdifuser.baselines import ReferenceStyleExtractor, reference_probe
from satdifuser.data import TensorImageDataset, seeded_loader
from satdifuser.errors import ConfigError
from satdifuser.features.extractor import FeatureExtractor
from satdifuser.tasks import ClassificationTask


@pytest.fixture(scope="module")
def fx() -> FeatureExtractor:
    return FeatureExtractor("tiny-pixel", timesteps=[21, 61, 161])


def test_reference_extractor_returns_our_feature_layout(fx: FeatureExtractor) -> None:
    ref = ReferenceStyleExtractor(fx)
    images = torch.rand(2, 3, 32, 32)
    ours, theirs = fx(images), ref(images)
    assert [t.shape for t in theirs] == [t.shape for t in ours]
    assert not torch.allclose(theirs[0], ours[0])  # 10-step inversion differs from noising
    assert not list(ref.state_dict())  # the frozen extractor is not a submodule


def test_reference_extractor_refuses_timesteps_the_inversion_skips() -> None:
    fx = FeatureExtractor("tiny-pixel", timesteps=[10])
    with pytest.raises(ConfigError, match=r"timesteps \[10\]"):
        ReferenceStyleExtractor(fx)


def test_reference_probe_recomputes_features_in_every_batch(fx: FeatureExtractor) -> None:
    calls = []
    ref = ReferenceStyleExtractor(fx)

    def counted(images: torch.Tensor) -> list[torch.Tensor]:
        calls.append(len(images))
        return ref(images)

    ds = TensorImageDataset(torch.rand(3, 3, 32, 32), [0, 1, 0], "t", num_classes=2)
    task = ClassificationTask(fx, 2, fusion_args={"projection_dim": 8, "bottleneck_dim": 8,
                                                   "num_groups": 4}, warmup_epochs=0)  # fmt: skip
    before = [p.detach().clone() for p in task.trainable_parameters()]
    train, val = seeded_loader(ds, 2, True, 0), seeded_loader(ds, 2, False, 0)
    r = reference_probe(task, counted, train, val, epochs=2)
    assert calls == [2, 1, 2, 1] * 2  # 2 train + 2 val batches, every epoch
    assert len(r.epoch_s) == len(r.val_accuracy) == 2 and r.wall_s == r.train_s + r.val_s
    after = task.trainable_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert task.hparams["schedule_epochs"] == 2


def test_reference_probe_refuses_an_unfitted_standardiser(fx: FeatureExtractor) -> None:
    task = ClassificationTask(fx, 2, fusion_args={"projection_dim": 8, "bottleneck_dim": 8,
                                                   "num_groups": 4}, standardize=True)  # fmt: skip
    with pytest.raises(ConfigError, match="standardize=False"):
        reference_probe(task, ReferenceStyleExtractor(fx), [], [], epochs=1)
