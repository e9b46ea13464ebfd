"""Tests for latent demand: candidates, the rest-of-chain expectation and the category yardsticks."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.mining.latent import category_yardsticks, latent_weekly

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
