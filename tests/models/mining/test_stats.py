"""Tests for the weekly log-ratio test shared by local affinity and latent demand."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from models.mining.stats import weekly_ratio_test


def _weekly(observed: np.ndarray, expected: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "region": ["r"] * len(observed),
            "week": [date(2024, 1, 1) + timedelta(weeks=i) for i in range(len(observed))],
            "observed": observed.astype(float),
            "expected": [expected] * len(observed),
        }
    )


@pytest.mark.parametrize(("factor", "significant"), [(1.0, False), (2.0, True), (0.5, True)])
def test_pooled_lift_and_two_sided_test(factor: float, significant: bool) -> None:
    obs = np.random.default_rng(1).poisson(100 * factor, 30)
    row = weekly_ratio_test(_weekly(obs, 100.0), ["region"], alternative="two-sided", min_weeks=8).row(
        0, named=True
    )
    assert row["lift"] == pytest.approx(obs.sum() / 3000)
    assert row["ci_low"] < row["lift"] < row["ci_high"]
    assert (row["p_value"] < 0.001) is significant
    assert row["support"] == 30


def test_greater_alternative_ignores_a_drop() -> None:
    obs = np.random.default_rng(2).poisson(50, 30)
    row = weekly_ratio_test(_weekly(obs, 100.0), ["region"], alternative="greater", min_weeks=8).row(
        0, named=True
    )
    assert row["p_value"] > 0.99


def test_too_few_weeks_are_not_tested() -> None:
    assert (
        weekly_ratio_test(_weekly(np.ones(5), 1.0), ["region"], alternative="greater", min_weeks=8).height
        == 0
    )


def test_autocorrelated_weeks_count_as_fewer() -> None:
    smooth = np.repeat([80, 120], 20)  # two long runs: strong positive autocorrelation
    row = weekly_ratio_test(_weekly(smooth, 100.0), ["region"], alternative="two-sided", min_weeks=8).row(
        0, named=True
    )
    assert row["n_eff"] < 10
