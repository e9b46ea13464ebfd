"""The negative binomial fill of sell-out days and the store-day dispersion it uses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.mining.dispersion import store_size
from models.mining.effects import censored_mean


@pytest.mark.parametrize("size", [2.0, 8.0])
def test_the_negative_binomial_censored_mean_is_the_conditional_mean(size: float) -> None:
    mu, sold = np.array([3.0, 10.0, 10.0, 40.0]), np.array([2.0, 5.0, 18.0, 30.0])
    got = censored_mean(mu, sold, size)
    y = np.arange(2000)
    for m, s, g in zip(mu, sold, got, strict=True):
        pmf = stats.nbinom.pmf(y, size, size / (size + m))
        keep = y >= s
        assert g == pytest.approx((y[keep] * pmf[keep]).sum() / pmf[keep].sum(), rel=1e-6)
    # more spread: a sold-out day's demand reaches further above what sold than under Poisson
    assert (got[1:] > censored_mean(mu, sold)[1:]).all()


def test_an_infinite_size_is_poisson() -> None:
    mu, sold = np.array([3.0, 12.0]), np.array([4.0, 9.0])
    assert censored_mean(mu, sold, np.inf) == pytest.approx(censored_mean(mu, sold))


def test_the_store_size_is_recovered_by_moments() -> None:
    rng = np.random.default_rng(1)
    m = rng.uniform(0.5, 20.0, size=200_000)
    units = rng.poisson(m * rng.gamma(5.0, 1 / 5.0, size=m.size)).astype(float)
    assert store_size(units, m) == pytest.approx(5.0, rel=0.05)
    assert store_size(rng.poisson(m).astype(float), m) > 200  # Poisson: (almost) no over-dispersion
