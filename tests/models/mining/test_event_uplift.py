"""Tests for the event uplift statistics on hand-made observed/expected frames."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from models.mining.event_uplift import score_event_uplift


def _frames(ratios: list[float], *, expected: float = 100.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One event per ratio, two window days (offsets -1 and 0), the peak on offset 0."""
    n = len(ratios)
    ids = [f"e{i}" for i in range(n)]
    daily = pl.DataFrame(
        {
            "event_id": ids * 2,
            "event_type": ["t"] * (2 * n),
            "region": ["r"] * (2 * n),
            "sku": ["x"] * (2 * n),
            "offset": [-1] * n + [0] * n,
            "observed": [expected / 2] * n + [expected * (2 * r - 1) / 2 for r in ratios],
            "expected": [expected / 2] * (2 * n),
        }
    )
    baseline = pl.DataFrame(
        {
            "event_id": ids,
            "event_type": ["t"] * n,
            "region": ["r"] * n,
            "sku": ["x"] * n,
            "base_units": [1000.0] * n,
        }
    )
    return daily, baseline


def test_lift_is_the_geometric_mean_of_event_ratios_with_a_t_interval() -> None:
    daily, baseline = _frames([2.0, 4.0, 3.0, 2.5])
    row = score_event_uplift(daily, baseline, min_support=2, window_starts=(-1,)).row(0, named=True)
    ratios = np.log([(r * 100 + 0.5) / 100.5 for r in (2.0, 4.0, 3.0, 2.5)])
    assert row["lift"] == pytest.approx(math.exp(ratios.mean()))
    assert row["support"] == 4
    assert row["ci_low"] < row["lift"] < row["ci_high"]
    assert row["p_value"] < 0.01
    assert row["peak_offset_days"] == 0
    assert row["window_start_offset_days"] == -1


def test_each_window_start_is_its_own_hypothesis() -> None:
    daily, baseline = _frames([3.0, 3.0, 3.0])
    out = score_event_uplift(daily, baseline, min_support=2, window_starts=(-1, 0)).sort(
        "window_start_offset_days"
    )
    # offset 0 alone: 5x (observed 250 of expected 50); with the quiet day before: 3x
    assert out["lift"].to_list() == pytest.approx([300.5 / 100.5, 250.5 / 50.5])


def test_fewer_events_than_min_support_are_not_tested() -> None:
    daily, baseline = _frames([5.0, 5.0])
    assert score_event_uplift(daily, baseline, min_support=3).height == 0


def test_agreeing_events_are_not_infinitely_precise() -> None:
    # two identical events: the sample variance is 0, the Poisson floor keeps the interval open
    daily, baseline = _frames([1.2, 1.2], expected=10.0)
    row = score_event_uplift(daily, baseline, min_support=2, window_starts=(-1,)).row(0, named=True)
    assert row["ci_high"] / row["ci_low"] > 1.5
    assert row["p_value"] > 0.05


def test_no_effect_gives_uniform_like_p_values() -> None:
    rng = np.random.default_rng(3)
    pvals = []
    for _ in range(200):
        daily, baseline = _frames([1.0] * 6, expected=40.0)
        daily = daily.with_columns(pl.Series("observed", rng.poisson(20.0, daily.height).astype(float)))
        pvals.append(score_event_uplift(daily, baseline, min_support=2)["p_value"].item())
    assert np.mean(np.array(pvals) < 0.05) < 0.1
