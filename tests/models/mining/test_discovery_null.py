"""The riser test's empirical null (models.mining.discovery_null): the excess variance grows just enough
for null cells to pass at the nominal tail, not at all where the model's tail is right, and a co-rising
group does not move it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.mining.discovery_null import passes, tail_inflation, tail_p

LEVEL = float(stats.norm.sf(3.5))
ROWS, SKUS, DAYS = 4, 300, 700


def _cube(seed: int, *, alpha_true: float, alpha_model: float) -> tuple[np.ndarray, ...]:
    """Negative binomial counts (dispersion ``alpha_true``) and a model that believes ``alpha_model``."""
    rng = np.random.default_rng(seed)
    e = np.broadcast_to(rng.lognormal(1.5, 1.0, size=(1, SKUS, 1)), (ROWS, SKUS, DAYS)).copy()
    n = 1 / alpha_true
    y = rng.negative_binomial(n, n / (n + e)).astype(np.float64)
    var = e + alpha_model * e**2
    return y, e, var, e >= 0.5


def _share(y, e, var, scanned) -> float:
    at = np.flatnonzero(scanned)
    return float(passes(y.ravel()[at], e.ravel()[at], var.ravel()[at], level=LEVEL, min_lift=1.5).mean())


def test_tail_p_is_poisson_without_overdispersion() -> None:
    assert tail_p(np.array([6.0]), np.array([2.0]), np.array([2.0]))[0] == pytest.approx(0.01656, abs=1e-4)


def test_an_understated_dispersion_is_inflated_until_null_cells_pass_at_the_nominal_tail() -> None:
    y, e, var, scanned = _cube(1, alpha_true=0.3, alpha_model=0.1)
    before = _share(y, e, var, scanned)
    kappa = tail_inflation(y, e, var, scanned, np.zeros(ROWS, dtype=int), days=1, level=LEVEL, min_lift=1.5)
    after = _share(y, e, e + kappa * (var - e), scanned)
    assert before > 5 * LEVEL
    assert after <= 1.2 * LEVEL
    assert kappa.min() > 1.5  # the busy SKUs need about alpha_true / alpha_model


def test_a_right_model_is_left_alone_and_a_co_rising_group_does_not_move_it() -> None:
    y, e, var, scanned = _cube(2, alpha_true=0.1, alpha_model=0.1)
    groups = np.zeros(ROWS, dtype=int)
    kappa = tail_inflation(y, e, var, scanned, groups, days=1, level=LEVEL, min_lift=1.5)
    assert np.median(kappa) < 1.25
    # 20 spikes of 6 SKUs at 4x in one row: the crowded days are left out of the null
    spiked = y.copy()
    rng = np.random.default_rng(3)
    for t in rng.choice(DAYS, 20, replace=False):
        ks = rng.choice(np.flatnonzero(e[0, :, 0] >= 3), 6, replace=False)
        spiked[0, ks, t] = rng.poisson(4 * e[0, ks, t])
    with_spikes = tail_inflation(spiked, e, var, scanned, groups, days=1, level=LEVEL, min_lift=1.5)
    assert np.abs(np.log(with_spikes) - np.log(kappa)).max() < 0.15
