"""The negative binomial fill of sell-out days and the store-day dispersion it uses."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from models.mining.dispersion import censored_excess, store_size
from models.mining.effects import Censored, censored_mean
from models.mining.event_uplift import Design, build_design, window_cells, with_dispersion
from tests.models.mining.fair import fair_days, no_sell_outs


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


def _store_days(size: float, seed: int = 2, n: int = 300_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Store-days: expected units m, negative binomial demand of ``size``, a shelf of 1.5-4 days of m."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.3, 6.0, size=n)
    demand = rng.poisson(m * rng.gamma(size, 1 / size, size=n)).astype(float)
    stock = np.ceil(m * rng.uniform(1.5, 4.0, size=n)) + 3
    return m, demand, stock


def test_days_without_a_sales_row_count_as_days_with_none_sold() -> None:
    m, demand, _ = _store_days(4.0)
    rows = demand > 0  # a sales export has rows for the days that sold
    assert store_size(demand[rows], m[rows]) > 4.6  # the zeros left out: demand reads less spread
    assert store_size(demand[rows], m[rows], square=float(np.sum(m**2))) == pytest.approx(4.0, rel=0.05)


def test_sold_out_days_enter_by_their_conditional_moment() -> None:
    m, demand, stock = _store_days(4.0)
    out = demand >= stock  # the shelf ran empty: only "at least stock" is known
    kept = ~out
    square = float(np.sum(m[kept] ** 2))
    assert store_size(demand[kept], m[kept], square=square) > 4.4  # the top of the spread cut off
    got = store_size(demand[kept], m[kept], square=square, censored_expected=m[out], sold=stock[out])
    assert got == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("size", [3.0, np.inf])
def test_the_censored_excess_is_the_conditional_moment(size: float) -> None:
    mu, sold = np.array([2.0, 6.0, 6.0]), np.array([3.0, 4.0, 15.0])
    y = np.arange(3000)
    for m, s, got in zip(mu, sold, censored_excess(mu, sold, size), strict=True):
        pmf = stats.poisson.pmf(y, m) if np.isinf(size) else stats.nbinom.pmf(y, size, size / (size + m))
        keep = y >= s
        want = (((y - m) ** 2 - y)[keep] * pmf[keep]).sum() / pmf[keep].sum()
        assert got == pytest.approx(want, rel=1e-6)


def _two_events(seed: int = 4, skus: int = 400) -> tuple[Design, np.ndarray, np.ndarray]:
    """One region's window days of one type: per SKU a mild event (1.3x) and a strong one (4x), four
    stores (a fifth of the row's demand each, a shelf of 1.5-4 days of normal demand, negative
    binomial demand of size 4) and online orders (the last fifth, never sold out). Returns the design,
    the rows' expected demand without the event and their true lifts."""
    rng = np.random.default_rng(seed)
    lifts = np.tile([1.3, 4.0], skus)
    expected = np.full(len(lifts), 20.0)
    m = 0.2 * expected[:, None] * np.ones((1, 4))
    demand = rng.poisson(m * lifts[:, None] * rng.gamma(4.0, 0.25, size=m.shape)).astype(float)
    stock = np.ceil(m * rng.uniform(1.5, 4.0, size=m.shape)) + 3
    out = demand >= stock
    y = np.where(out, 0.0, demand).sum(axis=1) + rng.poisson(0.2 * expected * lifts)
    row, store = np.nonzero(out)
    censored = Censored(row, stock[row, store], np.full(len(row), 0.2), size=4.0)
    windows = {
        "storm": pl.DataFrame(
            {
                "row": np.arange(len(lifts)),
                "region": "R",
                "sku": [f"S{i // 2}" for i in range(2 * skus)],
                "offset": 0,
                "phase": "during",
                "cluster": [date(2024, 6, 1), date(2024, 8, 1)] * skus,
                "chain_wide": False,
            }
        )
    }
    design = Design(y, np.ones(len(y)), censored, {}, windows, np.zeros(len(y)))
    return design, expected, lifts


def test_each_event_s_sell_outs_are_filled_under_its_own_lift() -> None:
    design, expected, lifts = _two_events()
    cells = window_cells(design, {"storm": expected})
    got = cells.group_by("cluster").agg(pl.col("observed").sum() / pl.col("expected").sum()).sort("cluster")
    # a lift pooled over the SKU's two events reads the strong one's sell-outs low (3.6x here)
    assert got["observed"].to_list() == pytest.approx([1.3, 4.0], rel=0.04)


def test_a_window_cell_carries_its_stores_excess_variance() -> None:
    """Each store's demand is negative binomial: a row whose stores hold shares s_i of its exposure
    adds sum (s_i x expected)^2 / size to the variance of what it observes, beyond Poisson."""
    design, expected, _ = _two_events()
    square = np.full(len(expected), 4 * 0.2**2)  # four stores of a fifth each, online the rest
    cells = window_cells(replace(design, square_share=square), {"storm": expected})
    assert cells["excess"].to_numpy() == pytest.approx(20.0**2 * 0.16 / 4.0)
    # without store-days (or with a Poisson size) the cells have none
    assert (window_cells(design, {"storm": expected})["excess"] == 0).all()


def test_a_drop_without_sell_outs_still_gets_its_size_and_excess() -> None:
    """The size sets the test's noise floor too, so it is estimated where no store ran out."""
    rng = np.random.default_rng(3)
    first, days, stores, mean = date(2024, 1, 1), 364, 5, 6.0
    demand = rng.negative_binomial(4.0, 4.0 / (4.0 + mean), size=(days, stores)).astype(float)
    dates = [first + timedelta(days=t) for t in range(days)]
    panel = pl.DataFrame(
        {
            "region": "R0",
            "sku": "K",
            "date": dates,
            "y": demand.sum(axis=1),
            "exposure": float(stores),
            "square_weight": float(stores),
        }
    )
    store_days = pl.DataFrame(
        {
            "region": "R0",
            "sku": "K",
            "date": [d for d in dates for _ in range(stores)],
            "units": demand.ravel(),
            "weight": 1.0,
        }
    )
    window = fair_days(dates, [60])
    design = build_design(panel, no_sell_outs(), window, first=first, block_days=28, stores=store_days)
    design = with_dispersion(design)
    assert design.censored.size == pytest.approx(4.0, rel=0.25)
    cells = window_cells(design, {"fair": np.full(window.height, mean * stores)})
    # five stores of a fifth each: excess (mean x stores)^2 x 5 / 25 / size = 5 mean^2 / size a day
    assert cells["excess"].to_numpy() == pytest.approx(5 * mean**2 / design.censored.size)
