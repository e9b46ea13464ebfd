"""Tests for the pure polars pipes behind pattern mining."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.signals import (
    carried_weeks,
    clean_store_sales,
    event_baseline_days,
    event_instances,
    event_window_days,
    full_weeks,
    online_region_units,
    sku_dow_factors,
)

D = date(2024, 1, 1)  # a Monday
STORES = pl.LazyFrame({"store_id": ["a", "b"], "region": ["N", "S"]})


def _day(i: int) -> date:
    return D + timedelta(days=i)


@pytest.mark.parametrize(
    ("on_hand", "units", "stockout"),
    [(0.0, 0.0, True), (0.0, -1.0, True), (0.0, 2.0, False), (3.0, 0.0, False), (None, 0.0, False)],
)
def test_clean_store_sales_flags_censored_days(on_hand: float | None, units: float, stockout: bool) -> None:
    sales = pl.LazyFrame(
        {"date": [D], "store_id": ["a"], "sku": ["x"], "units": [units], "on_hand": [on_hand]},
        schema_overrides={"on_hand": pl.Float64},
    )
    out = clean_store_sales(sales, STORES, as_of=D).collect()
    assert out["stockout"].to_list() == [stockout]


def test_clean_store_sales_cuts_at_as_of_and_adds_region_week_dow() -> None:
    sales = pl.LazyFrame(
        {"date": [_day(2), _day(9)], "store_id": ["b", "a"], "sku": ["x", "x"], "units": [1.0, 2.0]}
    )
    out = clean_store_sales(sales, STORES, as_of=_day(8)).collect()
    expected = pl.DataFrame(
        {
            "date": [_day(2)],
            "week": [D],
            "dow": pl.Series([3], dtype=pl.Int8),
            "store_id": ["b"],
            "region": ["S"],
            "sku": ["x"],
            "units": [1.0],
            "stockout": [False],
        }
    )
    assert_frame_equal(out, expected)


def test_event_instances_expands_all_to_every_region() -> None:
    events = pl.LazyFrame(
        {
            "event_id": ["e1", "e2"],
            "event_type": ["storm", "holiday"],
            "region": ["N", "ALL"],
            "start_date": [_day(10), _day(20)],
            "end_date": [_day(11), _day(20)],
        }
    )
    out = event_instances(events, STORES, lead_days=3).collect().sort("event_id", "region")
    assert out.select("event_id", "region").rows() == [("e1", "N"), ("e2", "N"), ("e2", "S")]
    assert out["window_start"].to_list() == [_day(7), _day(17), _day(17)]


def _instances(*rows: tuple[str, str, int, int]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "event_id": [r[0] for r in rows],
            "event_type": ["t"] * len(rows),
            "region": [r[1] for r in rows],
            "start_date": [_day(r[2]) for r in rows],
            "end_date": [_day(r[3]) for r in rows],
        }
    ).with_columns((pl.col("start_date") - timedelta(days=2)).alias("window_start"))


def test_event_window_days_counts_offsets_from_start() -> None:
    out = event_window_days(_instances(("e", "N", 10, 11))).collect()
    assert out["offset"].to_list() == [-2, -1, 0, 1]
    assert out["date"].to_list() == [_day(8), _day(9), _day(10), _day(11)]
    assert out["dow"].to_list() == [2, 3, 4, 5]


def test_event_baseline_days_leaves_out_other_windows_of_the_region() -> None:
    # e2's window (days 3..5 in N) lies inside e1's baseline; e3 is in another region
    inst = _instances(("e1", "N", 12, 12), ("e2", "N", 5, 5), ("e3", "S", 7, 7))
    out = event_baseline_days(inst, baseline_days=8).collect().filter(pl.col("event_id") == "e1")
    assert out["date"].to_list() == [_day(i) for i in (2, 6, 7, 8, 9)]


def test_online_region_units_maps_postal_codes_and_weeks() -> None:
    orders = pl.LazyFrame(
        {
            "order_date": [D, _day(1), _day(8), _day(2), _day(30)],
            "sku": ["x"] * 5,
            "units": [1.0, 2.0, 1.0, 5.0, 9.0],
            "ship_postal_code": ["01", "01", "01", "99", "01"],
        }
    )
    postal = pl.LazyFrame({"postal_code": ["01", "02"], "region": ["N", "S"]})
    out = online_region_units(orders, postal, as_of=_day(20)).collect().sort("week")
    expected = pl.DataFrame(
        {"region": ["N", "N"], "sku": ["x", "x"], "week": [D, _day(7)], "units": [3.0, 1.0]}
    )
    assert_frame_equal(out, expected)


def test_carried_weeks_fills_weeks_without_sales() -> None:
    sales = pl.LazyFrame(
        {"store_id": ["a", "a"], "region": ["N", "N"], "sku": ["x", "x"], "week": [D, _day(21)]}
    )
    assert carried_weeks(sales).collect()["week"].to_list() == [D, _day(7), _day(14), _day(21)]


def test_full_weeks_drops_partial_weeks_at_both_ends() -> None:
    lf = pl.LazyFrame({"week": [D, _day(7), _day(14)]})
    out = full_weeks(lf, first=_day(1), as_of=_day(19)).collect()
    assert out["week"].to_list() == [_day(7)]


def test_sku_dow_factors_follow_the_weekday_profile() -> None:
    days = [_day(i) for i in range(28)]
    units = [100.0 if d.weekday() == 5 else 50.0 for d in days]  # Saturdays sell double
    sales = pl.LazyFrame({"date": days, "sku": ["x"] * 28, "units": units, "stockout": [False] * 28})
    sales = sales.with_columns(pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"))
    out = sku_dow_factors(sales, prior_units=0.0).collect().sort("dow")
    mean = (6 * 50 + 100) / 7
    assert out["dow_factor"].to_list() == pytest.approx([50 / mean] * 5 + [100 / mean, 50 / mean])
