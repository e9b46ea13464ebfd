"""The negative binomial fill of sell-out days and the store-day dispersion it uses."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from models.mining.dispersion import censored_excess, pair_dispersion, store_size
from models.mining.effects import Censored, censored_mean
from models.mining.event_design import Design, build_design, with_dispersion
from models.mining.event_uplift import counterfactuals, score_cells, window_cells
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
            "store_id": [f"s{i}" for _ in dates for i in range(stores)],
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
    # five stores of a fifth each: excess (mean x stores)^2 x 5 / 25 / size = 5 mean^2 / size a day,
    # each store's own 1 / size where its own history reads it wider than the chain's (same truth)
    floor = 5 * mean**2 / design.censored.size
    assert (cells["excess"].to_numpy() >= floor * (1 - 1e-9)).all()
    assert cells["excess"].to_numpy() == pytest.approx(floor, rel=0.3)


def test_a_store_and_sku_s_own_dispersion_by_moments() -> None:
    rng = np.random.default_rng(5)
    m = rng.uniform(1.0, 10.0, size=60_000)
    pair = np.repeat([0, 1, 2], 20_000)
    units = rng.poisson(m * np.where(pair == 1, rng.gamma(4.0, 1 / 4.0, size=m.size), 1.0)).astype(float)
    bulk = (pair == 2) & (rng.random(m.size) < 0.005)  # a store whose customers buy by the case
    units[bulk] += 300
    kappa = pair_dispersion(units, m, pair)
    assert kappa[0] < 0.01  # Poisson
    assert kappa[1] == pytest.approx(0.25, rel=0.1)  # negative binomial of size 4
    assert kappa[2] > 10  # case sales: a spread no chain-wide size shows


def _bulk_chain(seed: int, skus: int = 40) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[date]]:
    """A year of ``skus`` SKUs in three regions of four stores (negative binomial, size 4, 5 a day);
    store R0-0's customers buy K00 by the case (200) on a few days, two of them in the fair's
    windows. No event has any effect. Returns panel, store-days, the fair's window days (R0) and the
    dates."""
    rng = np.random.default_rng(seed)
    first, days, stores, mean = date(2024, 1, 1), 364, 4, 5.0
    dates = [first + timedelta(days=t) for t in range(days)]
    starts = [40, 100, 160, 220, 280, 330]
    demand = rng.negative_binomial(4.0, 4.0 / (4.0 + mean), size=(3, skus, days, stores)).astype(float)
    cases = np.concatenate([rng.choice(np.arange(days), 6, replace=False), [starts[1], starts[3] - 2]])
    demand[0, 0, cases, 0] += 200
    r, k, t, i = (a.ravel() for a in np.indices(demand.shape))
    regions = np.array(["R0", "R1", "R2"])
    store_days = pl.DataFrame(
        {
            "store_id": np.char.add(np.char.add(regions[r], "-"), i.astype(str)),
            "region": regions[r],
            "sku": np.char.add("K", np.char.zfill(k.astype(str), 2)),
            "date": pl.Series([first + timedelta(days=int(d)) for d in range(days)]).gather(t),
            "units": demand.ravel(),
            "weight": mean,
        }
    )
    panel = store_days.group_by("region", "sku", "date").agg(
        pl.col("units").sum().alias("y"),
        pl.col("weight").sum().alias("exposure"),
        (pl.col("weight") ** 2).sum().alias("square_weight"),
    )
    return panel, store_days, fair_days(dates, starts), dates


def test_a_stores_case_sales_on_event_days_are_its_own_noise_not_a_rise() -> None:
    """One store's case sales of K00 (200 where the store sells 5) fall on two of the fair's six
    events: K00's lift in R0 reads near 2x, and the moderated test with the chain's one size (the
    prior borrowed from the other SKUs) makes it a pattern after Benjamini-Hochberg over the fair's
    80 hypotheses; with the store's own dispersion in the cells' variance it is not one. The other
    SKUs' p-values stay calibrated."""
    panel, store_days, days, dates = _bulk_chain(3)
    design = build_design(panel, no_sell_outs(), days, first=dates[0], block_days=28, stores=store_days)
    design = with_dispersion(design)
    expected = counterfactuals(design)

    def q_values(d: Design) -> pl.DataFrame:
        tested = score_cells(window_cells(d, expected), lead_days=7, min_support=2)
        return tested.with_columns(
            pl.Series("q", stats.false_discovery_control(tested["p_value"].to_numpy()))
        )

    own, chain = q_values(design), q_values(replace(design, square_kappa=np.zeros(0)))
    k00 = pl.col("sku") == "K00"
    assert own.filter(k00)["lift"].max() > 1.5
    assert chain.filter(k00)["q"].min() < 0.05  # the test this guards against
    assert own.filter(k00)["q"].min() > 0.05
    others = own.filter(~k00)["p_value"].to_numpy()
    assert len(others) == 78 and (others < 0.05).mean() < 0.1
    assert (own["q"] > 0.05).all()
