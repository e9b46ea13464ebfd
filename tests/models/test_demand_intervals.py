"""Forecast intervals: negative-binomial quantiles and their width calibrated on held-out days."""

from __future__ import annotations

import numpy as np
import pytest

from models.demand_intervals import (
    calibrate_dispersion,
    inside_interval,
    interval_coverage,
    nb_dispersion,
    nb_interval,
)


@pytest.mark.parametrize(
    ("mu", "dispersion", "lo", "hi"),
    [
        (np.array([0.0]), 0.0, [0.0], [0.0]),
        (np.array([10.0]), 0.0, [6.0], [14.0]),  # Poisson(10) deciles
        (np.array([0.05]), 0.0, [0.0], [0.05]),  # both deciles 0: widened to hold the mean
        (np.array([10.0]), 0.5, [2.0], [20.0]),  # overdispersed: wider than Poisson
    ],
)
def test_nb_interval(mu: np.ndarray, dispersion: float, lo: list[float], hi: list[float]) -> None:
    got_lo, got_hi = nb_interval(mu, dispersion)
    assert got_lo.tolist() == lo and got_hi.tolist() == hi


@pytest.mark.parametrize("dispersion", [0.0, 0.3, 2.0])
def test_inside_interval_agrees_with_the_quantiles(dispersion: float) -> None:
    rng = np.random.default_rng(2)
    mu = rng.gamma(1.0, 3.0, size=3_000)
    y = rng.poisson(mu * rng.gamma(1.0, 1.0, size=3_000)).astype(float)
    lo, hi = nb_interval(mu, dispersion)
    assert (inside_interval(y, mu, dispersion) == ((y >= lo) & (y <= hi))).all()


def test_nb_dispersion_recovers_overdispersion() -> None:
    rng = np.random.default_rng(0)
    mu = np.full(20_000, 4.0)
    y = rng.negative_binomial(n=2.0, p=2.0 / (2.0 + mu))  # a = 1/n = 0.5
    assert abs(nb_dispersion(y.astype(float), mu) - 0.5) < 0.05
    assert nb_dispersion(rng.poisson(mu).astype(float), mu) < 0.02


def test_calibrated_width_holds_the_target_share_on_new_days() -> None:
    rng = np.random.default_rng(1)
    mu = rng.gamma(2.0, 3.0, size=40_000)  # slow and fast sellers mixed
    y = rng.negative_binomial(n=1.5, p=1.5 / (1.5 + mu)).astype(float)  # a = 2/3
    a = calibrate_dispersion(y[:20_000], mu[:20_000], coverage=0.8)
    assert a > 0.2  # Poisson intervals would be far too narrow
    # held out from the calibration: the share inside is close to the target (counts: a little above)
    assert 0.78 <= interval_coverage(y[20_000:], mu[20_000:], a) <= 0.86
    assert interval_coverage(y[20_000:], mu[20_000:], 0.0) < 0.6


def test_calibration_without_rows_is_poisson() -> None:
    assert calibrate_dispersion(np.array([]), np.array([])) == 0.0
