"""Tests for latent demand: candidates, the rest-of-chain expectation and the category yardsticks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.signals import clean_store_sales, online_region_units
from models.mining.latent import category_yardsticks, latent_hypotheses, latent_weekly

MONDAY = date(2024, 1, 1)


def test_latent_weekly_tests_only_pairs_no_store_of_the_region_carries() -> None:
    online = pl.LazyFrame(
        {
            "region": ["N", "N", "S", "S"],
            "sku": ["x", "y", "x", "y"],
            "week": [MONDAY] * 4,
            "units": [6.0, 4.0, 2.0, 8.0],
        }
    )
    carried = pl.LazyFrame({"region": ["N", "S", "S"], "sku": ["y", "x", "y"]})
    out = latent_weekly(online, carried).collect()
    # N's 10 online units x x's share in the rest of the chain (S: 2 of 10)
    expected = pl.DataFrame(
        {"region": ["N"], "sku": ["x"], "week": [MONDAY], "observed": [6.0], "expected": [2.0]}
    )
    assert_frame_equal(out, expected)


def test_latent_weekly_fills_weeks_without_orders_with_zero() -> None:
    online = pl.LazyFrame(
        {
            "region": ["N", "N", "S", "S"],
            "sku": ["x", "y", "y", "y"],
            "week": [MONDAY, MONDAY + timedelta(days=7), MONDAY, MONDAY + timedelta(days=7)],
            "units": [3.0, 1.0, 5.0, 5.0],
        }
    )
    out = latent_weekly(online, pl.LazyFrame({"region": ["N"], "sku": ["y"]})).collect().sort("week")
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
    from models.mining.settings import MiningSettings
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
