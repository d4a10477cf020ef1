"""GEO-Bench aggregation (``tasks.aggregate``) against hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from satdifuser.errors import DataFormatError
from satdifuser.tasks.aggregate import (
    AGGREGATED,
    aggregate,
    bootstrap_iqm,
    confidence_interval,
    iqm,
    load_normalizer,
    normalise,
    stratified_bootstrap_iqm,
    sweep_ranges,
    trim_mean,
)


class FixedRng:
    """Returns the given index arrays in turn (so a bootstrap can be computed by hand)."""

    def __init__(self, *draws: list[int]) -> None:
        self.draws = [np.asarray(d) for d in draws]

    def integers(self, low: int, high: int, size: object) -> np.ndarray:
        d = self.draws.pop(0)
        return d.reshape(size) if isinstance(size, tuple) else d


def test_iqm_cuts_a_quarter_at_each_end_like_scipy_trim_mean() -> None:
    assert iqm([4, 1, 3, 2]) == pytest.approx(2.5)  # cut 1 each end: mean(2, 3)
    assert iqm([5, 1, 3]) == pytest.approx(3.0)  # int(0.75) = 0: plain mean
    assert iqm(range(1, 9)) == pytest.approx(4.5)  # cut 2 each end: mean(3, 4, 5, 6)
    assert iqm([1, 100, 2, 3, -50, 2.5, 2, 1.5]) == pytest.approx((1.5 + 2 + 2 + 2.5) / 4)
    assert iqm([0.2, math.nan, 0.4]) == pytest.approx(0.3)
    assert math.isnan(iqm([]))
    assert trim_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1) == pytest.approx(5.5)


def test_iqm_matches_scipy_trim_mean() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(0).normal(size=13)
    assert iqm(x) == pytest.approx(float(scipy_stats.trim_mean(x, 0.25)))


def test_normalise_min_max_and_zero_width() -> None:
    assert normalise(0.7, 0.5, 0.9) == pytest.approx(0.5)
    assert normalise(0.4, 0.5, 0.9) == pytest.approx(-0.25)
    assert math.isnan(normalise(0.7, 0.7, 0.7))


def test_bootstrap_iqm_by_hand() -> None:
    scores = [0.1, 0.5, 0.9, 0.3]
    # resample 1: [0.1, 0.1, 0.5, 0.9] -> mean(0.1, 0.5) = 0.3
    # resample 2: [0.9, 0.9, 0.3, 0.5] -> sorted [0.3, 0.5, 0.9, 0.9] -> mean(0.5, 0.9) = 0.7
    rng = FixedRng([[0, 0, 1, 2], [2, 2, 3, 1]])
    out = bootstrap_iqm(scores, 2, rng)  # type: ignore[arg-type]
    assert out == pytest.approx([0.3, 0.7])


def test_stratified_bootstrap_resamples_within_each_task_then_pools() -> None:
    a, b = [0.0, 1.0], [0.5, 0.7]
    # repeat 1: a -> [1, 1], b -> [0.5, 0.5]; pooled sorted [0.5, 0.5, 1, 1] -> mean(0.5, 1)
    rng = FixedRng([1, 1], [0, 0])
    out = stratified_bootstrap_iqm([a, b], 1, rng)  # type: ignore[arg-type]
    assert out == pytest.approx([0.75])


def test_confidence_interval_percentiles() -> None:
    assert confidence_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert confidence_interval(np.full(10, 0.4)) == pytest.approx((0.4, 0.4))
    lo, hi = confidence_interval(np.array([math.nan]))
    assert math.isnan(lo) and math.isnan(hi)


def rec(task: str, model: str, seed: int, score: float | None, part: str = "default") -> dict:
    return {"task": task, "partition": part, "model": model, "seed": seed, "score": score}


def test_aggregate_per_task_and_pooled_iqm_by_hand() -> None:
    records = [
        rec("A", "m", 0, 0.2), rec("A", "m", 1, 0.4),
        rec("B", "m", 0, 0.75), rec("B", "m", 1, 1.0),
        rec("B", "m", 2, None),  # a skipped run: left out
        rec("C", "m", 0, 0.6), rec("C", "n", 0, 0.8),
    ]  # fmt: skip
    rows = {(r.model, r.task): r for r in aggregate(records, {"A": (0, 1), "B": (0.5, 1.0)},
                                                    repeat=200)}  # fmt: skip
    assert rows[("m", "A")].iqm == pytest.approx(0.3)  # mean of 2 seeds
    assert rows[("m", "B")].iqm == pytest.approx(0.75)  # normalised [0.5, 1.0]
    assert rows[("m", "B")].n == 2 and rows[("m", "B")].mean_score == pytest.approx(0.875)
    # C has no given range: sweep min-max over its scores (0.6 .. 0.8): m -> 0, n -> 1
    assert rows[("m", "C")].iqm == pytest.approx(0.0) and rows[("n", "C")].iqm == 1.0
    assert rows[("m", "C")].norm_source == "sweep min-max"
    assert rows[("m", "A")].norm_source == "normalizer.json"
    # pooled m: [0.2, 0.4, 0.5, 1.0, 0.0] sorted [0, .2, .4, .5, 1] -> cut 1 each: mean(.2,.4,.5)
    agg = rows[("m", AGGREGATED)]
    assert agg.iqm == pytest.approx((0.2 + 0.4 + 0.5) / 3) and agg.n == 5
    assert agg.ci_low <= agg.iqm <= agg.ci_high
    # a seeded bootstrap: the same intervals every time
    again = {(r.model, r.task): r for r in aggregate(records, {"A": (0, 1), "B": (0.5, 1.0)},
                                                     repeat=200)}  # fmt: skip
    assert again[("m", AGGREGATED)] == agg


def test_zero_width_range_gives_nan_scores_that_drop_out() -> None:
    records = [rec("A", "m", 0, 0.5), rec("A", "n", 0, 0.5), rec("B", "m", 0, 0.1),
               rec("B", "n", 0, 0.3)]  # fmt: skip
    rows = {(r.model, r.task): r for r in aggregate(records, repeat=10)}
    assert math.isnan(rows[("m", "A")].iqm) and rows[("m", "A")].n == 0
    assert rows[("n", AGGREGATED)].iqm == pytest.approx(1.0) and rows[("n", AGGREGATED)].n == 1
    assert sweep_ranges(records) == {"A": (0.5, 0.5), "B": (0.1, 0.3)}


def test_load_normalizer(tmp_path: Path) -> None:
    good = tmp_path / "normalizer.json"
    good.write_text(json.dumps({"m-eurosat": [0.6, 0.99]}))
    assert load_normalizer(good) == {"m-eurosat": (0.6, 0.99)}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"m-eurosat": 3}))
    with pytest.raises(DataFormatError, match=r"normalizer\.json"):
        load_normalizer(bad)
