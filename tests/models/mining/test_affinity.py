"""Tests for local affinity: shares among carrying stores, assortment differences cancel out."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from models.mining.affinity import affinity_weekly

MONDAY = date(2024, 1, 1)
NO_EVENTS = pl.LazyFrame(schema={"region": pl.String, "week": pl.Date})


def _sales(daily_units: dict[tuple[str, str, str], float], weeks: int = 4) -> pl.LazyFrame:
    """Clean daily sales: {(store, region, sku): units per day} for ``weeks`` full weeks."""
    rows = [
        (MONDAY + timedelta(days=d), store, region, sku, units)
        for (store, region, sku), units in daily_units.items()
        for d in range(7 * weeks)
    ]
    return pl.LazyFrame(
        rows, schema=["date", "store_id", "region", "sku", "units"], orient="row"
    ).with_columns(
        pl.col("date").dt.truncate("1w").alias("week"),
        pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"),
        pl.lit(False).alias("stockout"),
    )


def _lift(frame: pl.DataFrame, region: str, sku: str) -> float:
    row = frame.filter((pl.col("region") == region) & (pl.col("sku") == sku))
    return row["observed"].sum() / row["expected"].sum()


def test_a_narrower_assortment_is_not_a_local_taste() -> None:
    # store b carries two of a's three SKUs at the same rates: its shares of x and y are higher, but
    # only because z is missing
    sales = _sales(
        {
            ("a", "N", "x"): 10,
            ("a", "N", "y"): 10,
            ("a", "N", "z"): 10,
            ("b", "S", "x"): 10,
            ("b", "S", "y"): 10,
        }
    )
    out = affinity_weekly(sales, NO_EVENTS, first=MONDAY, as_of=MONDAY + timedelta(days=27))
    assert _lift(out, "S", "x") == pytest.approx(1.0, abs=0.01)
    assert _lift(out, "N", "x") == pytest.approx(1.0, abs=0.01)


def test_a_regional_favourite_gets_a_lift_above_one_and_store_size_cancels() -> None:
    # b is twice a's size and sells x at 3x its usual rate
    rates = {("a", "N", s): 10.0 for s in "vwxyz"} | {("b", "S", s): 20.0 for s in "vwxyz"}
    sales = _sales(rates | {("b", "S", "x"): 60.0})
    out = affinity_weekly(sales, NO_EVENTS, first=MONDAY, as_of=MONDAY + timedelta(days=27))
    assert _lift(out, "S", "x") > 1.1  # diluted: b is two thirds of this tiny chain
    assert _lift(out, "N", "x") < 0.75
    assert max("vwxyz", key=lambda sku: _lift(out, "S", sku)) == "x"
    assert out["week"].n_unique() == 4


def test_event_weeks_are_left_out_for_their_region() -> None:
    sales = _sales({("a", "N", "x"): 10, ("b", "S", "x"): 10})
    busy = pl.LazyFrame({"region": ["N"], "week": [MONDAY]})
    out = affinity_weekly(sales, busy, first=MONDAY, as_of=MONDAY + timedelta(days=27))
    assert out.filter(pl.col("region") == "N").height == 3
    assert out.filter(pl.col("region") == "S").height == 4
