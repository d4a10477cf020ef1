from __future__ import annotations

import itertools

import pytest
import torch

from satdifuser.errors import ConfigError
from satdifuser.tasks.schedule import warmup_cosine_lr, warmup_cosine_scheduler


def test_paper_schedule_key_points() -> None:
    lr = [warmup_cosine_lr(e, 1e-2) for e in range(45)]
    assert lr[0] == pytest.approx(2e-5)  # epoch 1 runs at the warm-up start
    assert lr[5] == pytest.approx(1e-2)  # epoch 6 reaches the base rate
    assert lr[40] == pytest.approx(1e-5) and lr[44] == pytest.approx(1e-5)
    assert all(a < b for a, b in itertools.pairwise(lr[:6]))  # rising warm-up
    assert all(a > b for a, b in itertools.pairwise(lr[5:41]))  # falling cosine
    mid = warmup_cosine_lr(5 + 35 // 2, 1e-2)
    assert 1e-5 < mid < 1e-2


def test_scheduler_steps_once_per_epoch_on_the_optimizer() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-2)
    sched = warmup_cosine_scheduler(opt, warmup_epochs=2, warmup_start_lr=1e-4, max_epochs=6,
                                    min_lr=1e-6)  # fmt: skip
    seen = []
    for _ in range(7):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [warmup_cosine_lr(e, 1e-2, 2, 1e-4, 6, 1e-6) for e in range(7)]
    assert seen == pytest.approx(expected)
    assert seen[2] == pytest.approx(1e-2) and seen[6] == pytest.approx(1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_lr": 1.0}, {"warmup_start_lr": -1.0}, {"warmup_epochs": -1}, {"max_epochs": 0}],
)
def test_bad_schedule_arguments_raise_config_error(kwargs: dict) -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-2)
    with pytest.raises(ConfigError):
        warmup_cosine_scheduler(opt, **kwargs)
