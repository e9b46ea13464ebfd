"""The empirical-Bayes shrinkage of the event counterfactual's same-day shock (issue 8).

The SKU x date shock carries what the control regions show on an event's dates. How far to trust
them is set by moments: the variance of a shock the regions share (their residuals' covariance on
one day) against the noise of the controls' ratio. A chain with real same-day shocks keeps them; a
chain without them gets a shock near zero instead of the control regions' noise.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from models.mining.dispersion import shared_shock_variance, shock_left, shock_prior
from models.mining.event_design import build_design
from models.mining.event_uplift import counterfactuals, counterfactuals_and_shocks, window_cells
from tests.models.mining.fair import fair_days, no_sell_outs

FIRST = date(2024, 1, 1)
DAYS = 364
REGIONS = ("R0", "R1", "R2", "R3", "R4")
STORES = 40
MEAN = 5.0  # units per store-day
FAIR_STARTS = (40, 100, 160, 220, 280, 330)  # a no-effect fair in R0: 7 lead days and 3 days


def _cube(rng: np.random.Generator, tau2: float, phi: float, groups: int = 20_000, regions: int = 5):
    """Counts of ``regions`` cells in each of ``groups`` SKU-days: Poisson around m x shared shock x
    the cell's own noise (gamma, variances tau2 and phi)."""
    m = rng.uniform(2.0, 60.0, size=(groups, regions))
    shock = rng.gamma(1 / tau2, tau2, size=(groups, 1)) if tau2 > 0 else np.ones((groups, 1))
    own = rng.gamma(1 / phi, phi, size=(groups, regions)) if phi > 0 else 1.0
    counts = rng.poisson(m * shock * own).astype(float)
    group = np.repeat(np.arange(groups), regions)
    return counts.ravel(), m.ravel(), group


@pytest.mark.parametrize(("tau2", "phi"), [(0.04, 0.1), (0.01, 0.0), (0.1, 0.05)])
def test_the_shared_and_own_variances_are_recovered(tau2: float, phi: float) -> None:
    counts, m, group = _cube(np.random.default_rng(3), tau2, phi)
    got_tau2, got_phi = shared_shock_variance(counts, m, group)
    assert got_tau2 == pytest.approx(tau2, rel=0.1)
    # E[(c - m)^2] = m + m^2 ((1 + tau2)(1 + phi) - 1): phi carries the small cross term tau2 x phi
    assert got_phi == pytest.approx(phi + tau2 * phi, abs=0.01)


def test_without_a_shared_shock_its_variance_reads_near_zero() -> None:
    counts, m, group = _cube(np.random.default_rng(4), 0.0, 0.1)
    tau2, phi = shared_shock_variance(counts, m, group)
    assert tau2 < 0.002
    assert phi == pytest.approx(0.1, rel=0.1)


def test_the_prior_shrinks_as_far_as_the_noise_asks() -> None:
    """One control region of expected m: shrinkage m / (m + a) = tau2 / (tau2 + 1 / m + phi)."""
    m, group = np.array([10.0, 200.0]), np.array([0, 1])
    a = shock_prior(m, group, 0.04, 0.1, levels=3)
    assert m / (m + a[:2]) == pytest.approx(0.04 / (0.04 + 1 / m + 0.1))
    assert a[2] == pytest.approx(1 / 0.04)  # a level without controls stays at no shock
    # the more the controls' own noise (phi), the less their ratio is trusted
    assert (shock_prior(m, group, 0.04, 0.5, levels=2) > a[:2]).all()


def _chain(seed: int, shock_sd: float) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, np.ndarray]:
    """A one-SKU chain with a same-day shock every region shares (log sd ``shock_sd``), no event
    effect anywhere, and the fair's window days in R0. Returns panel, parts (none), days, shock."""
    rng = np.random.default_rng(seed)
    shock = np.exp(rng.normal(-(shock_sd**2) / 2, shock_sd, size=DAYS)) if shock_sd else np.ones(DAYS)
    dates = [FIRST + timedelta(days=t) for t in range(DAYS)]
    y = rng.poisson(MEAN * STORES * shock[None, :], size=(len(REGIONS), DAYS))
    panel = pl.DataFrame(
        {
            "region": np.repeat(REGIONS, DAYS),
            "sku": "K",
            "date": dates * len(REGIONS),
            "y": y.ravel().astype(float),
            "exposure": float(STORES),
        }
    )
    parts = no_sell_outs()
    days = fair_days(dates, FAIR_STARTS)
    return panel, parts, days, shock


def _window_error(seed: int, shock_sd: float) -> tuple[np.ndarray, float]:
    panel, parts, days, shock = _chain(seed, shock_sd)
    design = build_design(panel, parts, days, first=FIRST, block_days=84)
    expected = counterfactuals(design)
    w = design.windows["fair"]
    t = w["row"].to_numpy()  # R0 comes first, one row a day: its row is its day
    error = np.log(expected["fair"] / (MEAN * STORES * shock[t]))
    cells = window_cells(design, expected)
    return error, float(cells["observed"].sum() / cells["expected"].sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_a_real_chain_wide_shock_is_kept(seed: int) -> None:
    """Same-day shocks of log sd 0.3 that every region shows: the fair's expected demand follows
    them day by day: log sd of the daily error 0.040-0.053 over four seeds, as with the fixed
    pseudo-count of 0.5 before; without the shock it is 0.26-0.31."""
    error, lift = _window_error(seed, 0.3)
    assert np.std(error) < 0.08, np.std(error)
    assert abs(lift - 1) < 0.03, lift


@pytest.mark.parametrize("seed", [1, 2])
def test_without_chain_wide_shocks_the_controls_noise_stays_out(seed: int) -> None:
    """No shared shock: the fair's expected demand stays at the region's level instead of taking
    the four control regions' day-to-day Poisson noise: log sd of the daily error 0.013-0.018 over
    four seeds (the block's level and drift), as without any shock; 0.036-0.042 with the fixed
    pseudo-count of 0.5 before."""
    error, lift = _window_error(seed, 0.0)
    assert np.std(error) < 0.025, np.std(error)
    assert abs(lift - 1) < 0.03, lift


def test_the_shock_left_is_the_shrunk_estimates_posterior_variance() -> None:
    """tau2 x a / (E + a): the more the controls expect, the less of tau2 is left; a SKU-day without
    controls (a chain-wide day) keeps all of it."""
    m, group = np.array([10.0, 200.0]), np.array([0, 1])
    left = shock_left(m, group, 0.04, 0.0, levels=3)
    a = shock_prior(m, group, 0.04, 0.0, levels=3)
    assert left[:2] == pytest.approx(0.04 * a[:2] / (m + a[:2]))
    # as the posterior of a normal shock with the controls' ratio noise 1 / m
    assert left[:2] == pytest.approx(1 / (1 / 0.04 + m))
    assert left[1] < left[0] < 0.04
    assert left[2] == pytest.approx(0.04)


def test_a_chain_wide_window_keeps_the_whole_shock_in_its_cells_variance() -> None:
    """The fair on every region's same days (no control region): each window cell's excess carries
    expected^2 x tau2 beyond the store-days' (none here), and its shock sd is expected x sqrt(tau2)."""
    panel, parts, days, _ = _chain(1, 0.3)
    every = pl.concat([days.with_columns(region=pl.lit(r), chain_wide=pl.lit(True)) for r in REGIONS])
    design = build_design(panel, parts, every, first=FIRST, block_days=84)
    expected, left = counterfactuals_and_shocks(design)
    assert left["fair"] == pytest.approx(np.full(len(left["fair"]), left["fair"].max()))
    assert 0.05 < left["fair"].max() < 0.15  # tau2 of a log sd 0.3 shock, about 0.09
    cells = window_cells(design, expected, left)
    assert cells["excess"].to_numpy() == pytest.approx(cells["expected"].to_numpy() ** 2 * left["fair"].max())
    assert cells["shock"].to_numpy() == pytest.approx(
        cells["expected"].to_numpy() * np.sqrt(left["fair"].max())
    )
    # R0 alone in the window: four control regions see most of the shock
    alone = counterfactuals_and_shocks(build_design(panel, parts, days, first=FIRST, block_days=84))[1]
    assert alone["fair"].max() < left["fair"].max() / 4
