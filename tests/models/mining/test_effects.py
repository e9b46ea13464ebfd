"""The fixed-effects Poisson fit against statsmodels' GLM, and its censored-demand EM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.mining.effects import Censored, Effect, censored_mean, fit_effects, linear_predictor


def _panel(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Three crossed effects (a: 5 levels, b: 7 levels, c: 2 levels on a third of the rows)."""
    rng = np.random.default_rng(seed)
    n = 600
    a, b = rng.integers(0, 5, n), rng.integers(0, 7, n)
    c = np.where(rng.random(n) < 1 / 3, rng.integers(0, 2, n), -1)
    exposure = rng.uniform(0.5, 2.0, n)
    eta = (
        np.log(4.0)
        + rng.normal(0, 0.5, 5)[a]
        + rng.normal(0, 0.3, 7)[b]
        + np.where(c >= 0, np.array([0.7, -0.4])[c.clip(0)], 0)
    )
    y = rng.poisson(exposure * np.exp(eta)).astype(float)
    return y, exposure, {"a": a, "b": b, "c": c}


def test_the_fit_is_the_poisson_maximum_likelihood() -> None:
    sm = pytest.importorskip("statsmodels.api")
    y, exposure, codes = _panel()
    effects = [Effect(name, c, prior=0.0) for name, c in codes.items()]
    fit_effects(y, exposure, effects, tol=1e-10, max_sweeps=5000)
    ours = exposure * np.exp(linear_predictor(effects, np.arange(len(y))))
    # the same model as a GLM: one dummy per level (first level of a and b dropped, c's two levels)
    cols = [np.ones(len(y))]
    cols += [(codes["a"] == i).astype(float) for i in range(1, 5)]
    cols += [(codes["b"] == i).astype(float) for i in range(1, 7)]
    cols += [(codes["c"] == i).astype(float) for i in range(2)]
    glm = sm.GLM(y, np.column_stack(cols), family=sm.families.Poisson(), offset=np.log(exposure)).fit()
    assert ours == pytest.approx(glm.fittedvalues, rel=1e-6)
    c_effect = effects[2].theta
    assert c_effect[0] - c_effect[1] == pytest.approx(glm.params[-2] - glm.params[-1], abs=1e-6)


def test_fitted_totals_match_observed_totals_on_every_level() -> None:
    y, exposure, codes = _panel(1)
    effects = [Effect(name, c, prior=0.0) for name, c in codes.items()]
    fit_effects(y, exposure, effects, tol=1e-10, max_sweeps=5000)
    mu = exposure * np.exp(linear_predictor(effects, np.arange(len(y))))
    for c in codes.values():
        on = c >= 0
        assert np.bincount(c[on], mu[on]) == pytest.approx(np.bincount(c[on], y[on]), rel=1e-6)


def test_the_mask_leaves_rows_out_of_the_fit() -> None:
    y, exposure, codes = _panel(2)
    spoiled = y.copy()
    spoiled[:50] *= 10  # rows left out must not move the fit
    mask = np.arange(len(y)) >= 50
    fits = []
    for counts in (y, spoiled):
        effects = [Effect(name, c, prior=0.0) for name, c in codes.items()]
        fit_effects(counts, exposure, effects, mask=mask, tol=1e-10, max_sweeps=5000)
        fits.append(linear_predictor(effects, np.arange(len(y))))
    assert fits[0] == pytest.approx(fits[1])


def test_a_prior_keeps_a_level_without_sales_finite() -> None:
    y = np.array([0.0, 0.0, 5.0, 7.0])
    effects = [Effect("g", np.array([0, 0, 1, 1]), prior=0.5)]
    fit_effects(y, np.ones(4), effects, offset=np.log(3.0))
    assert np.isfinite(effects[0].theta).all()
    assert effects[0].theta[0] < -1.5


def test_censored_mean_is_the_poisson_tail_mean() -> None:
    mu, sold = np.array([5.0, 5.0, 0.5]), np.array([3.0, 12.0, 2.0])
    for m, c, got in zip(mu, sold, censored_mean(mu, sold), strict=True):
        k = np.arange(int(c), 400)
        p = stats.poisson.pmf(k, m)
        assert got == pytest.approx((k * p).sum() / p.sum(), rel=1e-6)


def test_censored_rows_recover_the_demand_behind_sell_outs() -> None:
    rng = np.random.default_rng(5)
    level = np.repeat([0, 1], 400)
    demand = rng.poisson(np.where(level == 0, 6.0, 12.0)).astype(float)
    stock = rng.integers(5, 15, len(demand)).astype(float)
    sold_out = demand >= stock
    y = np.where(sold_out, 0.0, demand)
    cens = Censored(np.flatnonzero(sold_out), stock[sold_out], np.ones(int(sold_out.sum())))
    effects = [Effect("level", level, prior=0.0)]
    fit_effects(y, np.ones(len(y)), effects, censored=cens, tol=1e-8, max_sweeps=500)
    assert np.exp(effects[0].theta) == pytest.approx([6.0, 12.0], rel=0.05)
    naive = [np.minimum(demand, stock)[level == i].mean() for i in (0, 1)]
    assert naive[1] < 11.0  # what the sales alone say
