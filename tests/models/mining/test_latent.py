"""Tests for latent demand: candidates, the rest-of-chain expectation and the category yardsticks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from features.signals import (
    buyer_dispersion,
    clean_store_sales,
    online_period_buyers,
    online_region_buyers,
    online_region_units,
    week_of,
)
from models.mining.latent import category_yardsticks, latent_hypotheses, latent_periods, latent_test
from models.mining.settings import MiningSettings
from models.mining.stats import BLOCK_WEEKS

MONDAY = date(2024, 1, 1)


def test_latent_periods_tests_only_pairs_no_store_of_the_region_carries() -> None:
    online = pl.LazyFrame(
        {
            "region": ["N", "N", "S", "S"],
            "sku": ["x", "y", "x", "y"],
            "week": [MONDAY] * 4,
            "units": [6.0, 4.0, 2.0, 8.0],
        }
    )
    carried = pl.LazyFrame({"region": ["N", "S", "S"], "sku": ["y", "x", "y"]})
    out = latent_periods(online, carried).collect()
    # N's 10 online units x x's share in the rest of the chain (S: 2 of 10), from S's 2 units of x
    expected = pl.DataFrame(
        {
            "region": ["N"],
            "sku": ["x"],
            "week": [MONDAY],
            "weeks": [1],
            "observed": [6.0],
            "expected": [2.0],
            "rest": [2.0],
        }
    )
    assert_frame_equal(out, expected)


def test_latent_periods_fills_weeks_without_orders_with_zero() -> None:
    online = pl.LazyFrame(
        {
            "region": ["N", "N", "S", "S"],
            "sku": ["x", "y", "y", "y"],
            "week": [MONDAY, MONDAY + timedelta(days=7), MONDAY, MONDAY + timedelta(days=7)],
            "units": [3.0, 1.0, 5.0, 5.0],
        }
    )
    out = latent_periods(online, pl.LazyFrame({"region": ["N"], "sku": ["y"]})).collect().sort("week")
    assert out.filter(pl.col("sku") == "x")["observed"].to_list() == [3.0, 0.0]


def test_category_yardsticks_ratio_and_median_with_chain_fallback() -> None:
    week = MONDAY
    sales = pl.LazyFrame(
        {
            "date": [week] * 3,
            "week": [week] * 3,
            "store_id": ["a", "a", "b"],
            "region": ["N", "N", "S"],
            "sku": ["x", "y", "x"],
            "units": [20.0, 40.0, 30.0],
            "stockout": [False] * 3,
        }
    )
    online = pl.LazyFrame(
        {
            "region": ["N", "N", "S", "S"],
            "sku": ["x", "y", "x", "z"],
            "week": [week] * 4,
            "units": [2.0, 2.0, 0.0, 5.0],
        }
    )
    products = pl.LazyFrame({"sku": ["x", "y", "z"], "category": ["c", "c", "c"]})
    out = category_yardsticks(sales, online, products, first=week, as_of=week + timedelta(days=6))
    out = out.collect().sort("region")
    # N: (20 + 40) / (2 + 2) = 15 store units per online unit, median 30; S sells x online at 0, so it
    # borrows the chain ratio (20 + 40 + 30) / 4
    assert out["ratio"].to_list() == pytest.approx([15.0, 22.5])
    assert out["median_units"].to_list() == pytest.approx([30.0, 30.0])
    # N's two SKUs sell 10x and 20x online: one new SKU's ratio is uncertain by their spread
    lx, ly, pooled = np.log(20.05 / 2.05), np.log(40.05 / 2.05), np.log(15.0)
    spread = ((lx - pooled) ** 2 + (ly - pooled) ** 2) / 2 * (1 + 1 / 2)
    assert out["ratio_var"][0] == pytest.approx(spread)


def test_latent_interval_widens_with_the_ratio_spread_and_substitution_lowers_the_estimate() -> None:
    from tests.worlds.planted import AS_OF, START, planted_chain

    world = planted_chain(plant=True)
    sales = clean_store_sales(world.store_sales, world.stores.lazy(), as_of=AS_OF)
    refs = {n: getattr(world, n).lazy() for n in ("stores", "products", "postal_regions", "assortment")}
    runs = {
        s: latent_hypotheses(
            sales,
            world.online_orders,
            refs,
            first=START,
            as_of=AS_OF,
            settings=MiningSettings(latent_substitution=s),
        ).filter(pl.col("sku") == "S03")
        for s in (0.0, 0.2)
    }
    row = runs[0.0].row(0, named=True)
    online = online_region_units(world.online_orders, refs["postal_regions"], as_of=AS_OF)
    yards = category_yardsticks(sales, online, refs["products"], first=START, as_of=AS_OF).collect()
    category = world.products.filter(pl.col("sku") == "S03")["category"].item()
    ratio_var = yards.filter((pl.col("region") == "R2") & (pl.col("category") == category))[
        "ratio_var"
    ].item()
    assert ratio_var > 0
    assert row["ci_high"] / row["lift"] > np.exp(1.96 * np.sqrt(ratio_var))  # the ratio's share alone
    assert row["ci_low"] < row["lift"] < row["ci_high"]
    assert runs[0.2]["est_store_weekly"].item() < row["est_store_weekly"]


def _online_chain(
    wanted: dict[tuple[str, str], float], *, seed: int, scale: float = 1.0, wander: float = 0.3
) -> tuple[pl.DataFrame, pl.LazyFrame]:
    """A year of weekly online units of 60 slow online sellers (0.1-2 a week per region, weeks
    wandering with log sd ``wander``) to eight regions of different online sizes; each region's stores
    carry 70% of the SKUs. ``wanted``: {(region, sku): x} the region's online demand over the
    chain's; ``scale`` multiplies every rate. Returns ``latent_periods`` output and the carried pairs."""
    rng = np.random.default_rng(seed)
    regions, skus, weeks = [f"R{r}" for r in range(8)], [f"s{k:02d}" for k in range(60)], 52
    speed = rng.uniform(0.2, 1.0, len(skus))
    size = rng.uniform(0.5, 2.0, len(regions))
    rows, carried = [], []
    for r, region in enumerate(regions):
        for k, sku in enumerate(skus):
            shock = np.exp(rng.normal(0.0, wander, weeks) - wander**2 / 2)
            units = rng.poisson(scale * size[r] * speed[k] * wanted.get((region, sku), 1.0) * shock)
            rows += [
                (region, sku, MONDAY + timedelta(days=7 * w), float(u)) for w, u in enumerate(units) if u
            ]
            if rng.random() < 0.7 and (region, sku) not in wanted:
                carried.append((region, sku))
    online = pl.LazyFrame(rows, schema=["region", "sku", "week", "units"], orient="row")
    pairs = pl.LazyFrame(carried, schema=["region", "sku"], orient="row")
    return latent_periods(online, pairs).collect(), pairs


def test_slow_online_sellers_wanted_three_times_over_are_found() -> None:
    # about one online unit a week where the chain's share says 0.3-0.5: a t test of the weekly log
    # ratios (0-3 units a week) read p = 0.002-0.3 on the demo's 2-store world; the blocks' sums see it
    wanted = {("R0", "s00"): 3.0, ("R1", "s01"): 3.0, ("R2", "s02"): 3.0, ("R3", "s03"): 3.0}
    weekly, _ = _online_chain(wanted, seed=3)
    tested = latent_test(weekly, min_weeks=8)
    found = tested.filter(pl.struct("region", "sku").is_in([{"region": r, "sku": s} for r, s in wanted]))
    assert found.height == 4 and (found["p_value"] < 1e-3).all()
    assert found["observed_weekly"].min() < 2.0  # slow sellers


def test_candidates_without_latent_demand_get_calibrated_p_values() -> None:
    # the old weekly test read none of these below 0.05 (conservative: no power); the blocks' test
    # reads about 5%
    p = np.concatenate(
        [latent_test(_online_chain({}, seed=s)[0], min_weeks=8)["p_value"].to_numpy() for s in range(4)]
    )
    assert len(p) > 400
    assert 0.03 <= (p < 0.05).mean() <= 0.08
    assert (p < 0.01).mean() <= 0.02


def test_a_certain_but_small_online_excess_is_not_latent_demand() -> None:
    # a fast online seller the region buys 1.15x as much as the chain: certain against 1, surely
    # below the default margin (1.25)
    weekly, _ = _online_chain({("R0", "s00"): 1.15}, seed=5, scale=50.0, wander=0.05)
    settings = MiningSettings()
    for margin, low, high in ((1.0, 0.0, 1e-3), (settings.min_latent_taste, 0.5, 1.0)):
        row = latent_test(weekly, min_weeks=8, margin=margin).filter(
            (pl.col("region") == "R0") & (pl.col("sku") == "s00")
        )
        assert low <= row["p_value"].item() <= high


def _order_lines(wanted: dict[tuple[str, str], float], *, seed: int) -> pl.LazyFrame:
    """A year of online order lines of 40 SKUs to eight regions: shoppers' lines (1-3 units, a new
    customer each) at 0.5-3 lines a week per region, and for s30-s39 one wholesale customer each, who
    lives in one region and reorders 12-48 units most weeks. No region prefers any SKU but ``wanted``:
    {(region, sku): x} on the shoppers' rate. Columns as the lake's online orders."""
    rng = np.random.default_rng(seed)
    regions, skus = [f"R{r}" for r in range(8)], [f"s{k:02d}" for k in range(40)]
    rate = rng.uniform(0.5, 3.0, len(skus))
    week, region, sku, units, buyer = [], [], [], [], []
    for reg in regions:
        for k, s in enumerate(skus):
            n = rng.poisson(rate[k] * wanted.get((reg, s), 1.0), 52)
            week += np.repeat(np.arange(52), n).tolist()
            region += [reg] * int(n.sum())
            sku += [s] * int(n.sum())
            units += (1 + rng.poisson(0.3, int(n.sum()))).tolist()
            buyer += [None] * int(n.sum())
    for k in range(30, 40):
        weeks = np.flatnonzero(rng.random(52) < 0.6)
        week += weeks.tolist()
        region += [regions[rng.integers(8)]] * len(weeks)
        sku += [skus[k]] * len(weeks)
        units += rng.integers(12, 49, len(weeks)).tolist()
        buyer += [f"wholesale-{k}"] * len(weeks)
    return pl.LazyFrame(
        {
            "order_id": [f"o{i}" for i in range(len(week))],
            "customer_key": pl.Series(buyer, dtype=pl.String),
            "sku": sku,
            "units": pl.Series(units, dtype=pl.Float64),
            "order_date": [MONDAY + timedelta(days=7 * w + 2) for w in week],
            "region": region,
        }
    )


def _latent_q(lines: pl.LazyFrame, *, buyers: bool) -> pl.DataFrame:
    """``latent_test`` at the default margin on ``lines`` (nothing carried anywhere), with the
    Benjamini-Hochberg q-value of each hypothesis: as the miner runs it (buyers a block of weeks, their
    repeat blocks' lumps) or on units counted one by one."""
    as_of = MONDAY + timedelta(days=400)
    if buyers:
        postal = lines.select(pl.col("region").unique().alias("postal_code"), pl.col("region").unique())
        shipped = lines.with_columns(ship_postal_code="region")
        online = online_period_buyers(shipped, postal, first=MONDAY, as_of=as_of, weeks=BLOCK_WEEKS)
        online = online.rename({"buyers": "units"})
        lumps = buyer_dispersion(lines, as_of=as_of, first=MONDAY, weeks=BLOCK_WEEKS)
        lumps = lumps.select("sku", dispersion="repeat_dispersion").collect()
    else:
        online = lines.group_by("region", "sku", week_of("order_date").alias("week")).agg(
            pl.col("units").sum()
        )
        lumps = None
    weekly = latent_periods(online, pl.LazyFrame(schema={"region": pl.String, "sku": pl.String})).collect()
    tested = latent_test(weekly, min_weeks=8, margin=MiningSettings().min_latent_taste, dispersion=lumps)
    return tested.with_columns(pl.Series("q", stats.false_discovery_control(tested["p_value"].to_numpy())))


def test_a_wholesale_customers_reorders_are_not_latent_demand() -> None:
    # on Online Retail II with its customers split into regions at random, units counted one by one
    # read 540-810 latent patterns (bench/online_placebo.py)
    lines = _order_lines({("R0", "s00"): 3.0, ("R1", "s01"): 3.0}, seed=11)
    fooled = _latent_q(lines, buyers=False).filter(pl.col("q") <= 0.05)
    assert fooled.filter(pl.col("sku") >= "s30").height >= 3  # the test this guards against
    found = _latent_q(lines, buyers=True).filter(pl.col("q") <= 0.05)
    assert sorted(zip(found["region"], found["sku"], strict=True)) == [("R0", "s00"), ("R1", "s01")]


def test_buyer_dispersion_is_one_for_single_units_and_the_lumps_otherwise() -> None:
    lines = pl.LazyFrame(
        {
            "order_id": ["a", "b", "c", "d", "e"],
            "customer_key": [None, None, "w", "w", "w"],
            "sku": ["x", "x", "y", "y", "y"],
            "units": [1.0, 1.0, 10.0, 20.0, -5.0],  # the return is left out
            "order_date": [MONDAY, MONDAY, MONDAY, MONDAY + timedelta(days=7), MONDAY],
        }
    )
    out = buyer_dispersion(lines, as_of=MONDAY + timedelta(days=13)).collect().sort("sku")
    # x: two guests of one unit once; y: one customer's 30 units (30^2 / 30) in 2 weeks (2^2 / 2)
    assert out["units_dispersion"].to_list() == pytest.approx([1.0, 30.0])
    assert out["repeat_dispersion"].to_list() == pytest.approx([1.0, 2.0])
    # in blocks of two weeks y's customer came in one block
    blocks = buyer_dispersion(lines, as_of=MONDAY + timedelta(days=13), first=MONDAY, weeks=2).collect()
    assert blocks.sort("sku")["repeat_dispersion"].to_list() == pytest.approx([1.0, 1.0])


def test_online_region_buyers_counts_each_buyer_once_a_week() -> None:
    lines = pl.LazyFrame(
        {
            "order_id": ["a", "b", "c", "d"],
            "customer_key": ["w", "w", None, None],
            "sku": ["x"] * 4,
            "units": [10.0, 20.0, 1.0, -1.0],  # w orders twice in the week; d is a return
            "order_date": [MONDAY, MONDAY + timedelta(days=2), MONDAY, MONDAY],
            "ship_postal_code": ["p1"] * 4,
        }
    )
    postal = pl.LazyFrame({"postal_code": ["p1"], "region": ["N"]})
    out = online_region_buyers(lines, postal, as_of=MONDAY + timedelta(days=6)).collect()
    assert out.select("region", "sku", "buyers").rows() == [("N", "x", 2.0)]


def test_online_period_buyers_counts_each_buyer_once_a_period_of_full_weeks() -> None:
    # w buys x in weeks 1, 2 and 5; a guest in week 5; the lines before the first Monday and in the
    # partial last week are left out; periods of 4 weeks from the first Monday on or after ``first``
    days = [-2, 0, 8, 29, 30, 36]
    lines = pl.LazyFrame(
        {
            "order_id": [f"o{i}" for i in range(len(days))],
            "customer_key": ["w", "w", "w", "w", None, "w"],
            "sku": ["x"] * len(days),
            "units": [1.0] * len(days),
            "order_date": [MONDAY + timedelta(days=d) for d in days],
            "ship_postal_code": ["p1"] * len(days),
        }
    )
    postal = pl.LazyFrame({"postal_code": ["p1"], "region": ["N"]})
    as_of = MONDAY + timedelta(days=37)  # 5 full weeks and 3 days of a sixth
    out = online_period_buyers(lines, postal, first=MONDAY - timedelta(days=3), as_of=as_of, weeks=4)
    rows = out.collect().sort("week").select("week", "weeks", "buyers").rows()
    assert rows == [(MONDAY, 4, 1.0), (MONDAY + timedelta(days=28), 1, 2.0)]


def _loyal_lines(wanted: dict[tuple[str, str], float], *, seed: int) -> pl.LazyFrame:
    """A year of online lines of 40 SKUs to eight regions, bought by loyal customers: each comes
    back for the SKU week after week (runs of about 8 weeks). 2-6 new customers of a SKU a month
    per region, ``wanted`` {(region, sku): x} times as many."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(8):
        for k in range(40):
            rate = (2.0 + 4.0 * k / 40) * 12 * wanted.get((f"R{r}", f"s{k:02d}"), 1.0)
            for c in range(rng.poisson(rate)):
                start, length = rng.integers(0, 52), 1 + rng.geometric(1 / 8)
                for w in range(start, min(52, start + length)):
                    rows.append((f"R{r}", f"s{k:02d}", f"c{r}-{k}-{c}", w))
    region, sku, customer, week = (list(x) for x in zip(*rows, strict=True))
    return pl.LazyFrame(
        {
            "order_id": [f"o{i}" for i in range(len(rows))],
            "customer_key": customer,
            "sku": sku,
            "units": [1.0] * len(rows),
            "order_date": [MONDAY + timedelta(days=7 * w + 2) for w in week],
            "region": region,
        }
    )


def test_more_people_buying_is_found_though_each_comes_back_for_weeks() -> None:
    # three times as many people; each buyer's repeat weeks make buyer-weeks lumpy (about 8 a buyer),
    # a block of four weeks counts each buyer once in it
    wanted = {("R0", "s10"): 3.0, ("R1", "s20"): 3.0, ("R2", "s30"): 3.0}
    lines = _loyal_lines(wanted, seed=7)
    found = _latent_q(lines, buyers=True).filter(pl.col("q") <= 0.05)
    assert sorted(zip(found["region"], found["sku"], strict=True)) == sorted(wanted)
