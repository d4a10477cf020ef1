"""Baselines that are not satdifuser models: the pooled logistic probe and the small CNN."""

from __future__ import annotations

import pytest
import torch

from satdifuser.baselines import CNNConfig, linear_probe, pooled_vectors, train_small_cnn
from satdifuser.errors import ConfigError

CLASSES = ["a", "b", "c"]


class Rows:
    """The attributes the probe reads of a cached split held in memory (InMemoryFeatures)."""

    def __init__(self, n: int, seed: int, labels: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(n) % 3
        self.maps = []
        for c in (4, 6):
            m = torch.randn(n, c, 2, 2, generator=g)
            m[torch.arange(n), y] += 4.0  # class c lifts channel c
            self.maps.append(m.half())
        self.targets = {"label": y} if labels else {}


def test_pooled_vectors_average_every_map_and_need_labels() -> None:
    rows = Rows(6, 0)
    x, y = pooled_vectors(rows)
    assert x.shape == (6, 10) and y.tolist() == [0, 1, 2, 0, 1, 2]
    torch.testing.assert_close(x[:, :4], rows.maps[0].float().mean(dim=(2, 3)))
    assert pooled_vectors(rows, maps=[1])[0].shape == (6, 6)
    with pytest.raises(ConfigError, match="stores no class labels"):
        pooled_vectors(Rows(3, 0, labels=False))


def test_linear_probe_picks_l2_on_val_and_separates_classes() -> None:
    tr, va, te = (pooled_vectors(Rows(n, s)) for n, s in ((60, 1), (30, 2), (30, 3)))
    r = linear_probe(tr, va, te, CLASSES, l2_grid=(1e-3, 10.0))
    assert r.overall_accuracy > 0.9 and r.extra["l2"] in (1e-3, 10.0)
    assert r.confusion.sum() == 30 and r.val_accuracy is not None


def test_small_cnn_is_reproducible_per_seed_and_reports_its_size() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(12) % 3
    x = (torch.rand(12, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    cfg = CNNConfig(width=2, epochs=2, min_steps=0, batch_size=4, eval_every=1)
    a = train_small_cnn((x, y), (x, y), (x, y), cfg, seed=0, class_names=CLASSES)
    b = train_small_cnn((x, y), (x, y), (x, y), cfg, seed=0, class_names=CLASSES)
    assert a.metrics == b.metrics and 1 <= a.best_epoch <= 2
    assert a.extra["epochs"] == 2 and a.extra["params"] > 0
