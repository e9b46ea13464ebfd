"""Tests for the pure polars pipes behind pattern mining."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.signals import (
    carried_weeks,
    clean_store_sales,
    daily_online_units,
    daily_panel,
    event_days,
    event_instances,
    event_window_days,
    full_weeks,
    online_region_units,
    pair_weights,
)

D = date(2024, 1, 1)  # a Monday
STORES = pl.LazyFrame({"store_id": ["a", "b"], "region": ["N", "S"]})


def _day(i: int) -> date:
    return D + timedelta(days=i)


@pytest.mark.parametrize(
    ("on_hand", "units", "censored", "stockout"),
    [
        (0.0, 0.0, True, True),
        (0.0, -1.0, True, True),
        (0.0, 2.0, True, False),
        (3.0, 0.0, False, False),
        (None, 0.0, False, False),
    ],
)
def test_clean_store_sales_flags_censored_days(
    on_hand: float | None, units: float, censored: bool, stockout: bool
) -> None:
    sales = pl.LazyFrame(
        {"date": [D], "store_id": ["a"], "sku": ["x"], "units": [units], "on_hand": [on_hand]},
        schema_overrides={"on_hand": pl.Float64},
    )
    out = clean_store_sales(sales, STORES, as_of=D).collect()
    assert out["censored"].to_list() == [censored]
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
            "censored": [False],
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
    assert out["chain_wide"].to_list() == [False, True, True]


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


def _clean(rows: list[tuple[str, str, int, float, float | None]]) -> pl.LazyFrame:
    """Sales rows (store, sku, day, units, on_hand) through clean_store_sales."""
    sales = pl.LazyFrame(
        {
            "store_id": [r[0] for r in rows],
            "sku": [r[1] for r in rows],
            "date": [_day(r[2]) for r in rows],
            "units": [r[3] for r in rows],
            "on_hand": [r[4] for r in rows],
        },
        schema_overrides={"on_hand": pl.Float64},
    )
    return clean_store_sales(sales, STORES, as_of=_day(60))


def test_pair_weights_are_mean_units_per_uncensored_day() -> None:
    # a sells x on days 0..3 (4 days, one a full stockout), 6 units in all
    clean = _clean([("a", "x", 0, 2.0, 1.0), ("a", "x", 1, 0.0, 0.0), ("a", "x", 3, 4.0, 2.0)])
    out = pair_weights(clean).collect().row(0, named=True)
    assert (out["first"], out["last"]) == (_day(0), _day(3))
    assert out["weight"] == pytest.approx((6 + 0.5) / (3 + 1))


def test_daily_panel_counts_carrying_stores_and_online_and_marks_sell_outs() -> None:
    clean = _clean(
        [
            ("a", "x", 0, 3.0, 2.0),
            ("a", "x", 2, 4.0, 0.0),  # sold out after selling 4: censored, demand >= 4
            ("a", "x", 3, 0.0, 0.0),  # empty all day: no exposure
            ("a", "x", 4, 1.0, 5.0),
        ]
    )
    online = pl.LazyFrame(
        {"region": ["N", "N"], "sku": ["x", "x"], "date": [_day(1), _day(4)], "units": [2.0, 2.0]}
    )
    panel, parts = daily_panel(clean, online, as_of=_day(5))
    panel, parts = panel.collect().sort("date"), parts.collect()
    w_store = (4 + 0.5) / (3 + 1)  # 4 uncensored units over the 5 days 0..4 less the 2 censored
    w_online = 4 / 5  # 4 online units over the 5 days from the first online order to as_of
    assert panel["date"].to_list() == [_day(i) for i in range(6)]
    assert panel["y"].to_list() == [3.0, 2.0, 0.0, 0.0, 3.0, 0.0]
    assert panel["exposure"].to_list() == pytest.approx(
        [w_store, w_store + w_online, w_store + w_online, w_online, w_store + w_online, w_online]
    )
    assert parts.select("date", "sold").rows() == [(_day(2), 4.0)]
    assert parts["weight"].item() == pytest.approx(w_store)
    # the stores whose demand the row sees in full: day 1 (no sales row) sold none, days 2-3 are
    # censored, online orders are not a store
    assert panel["square_weight"].to_list() == pytest.approx([w_store**2, w_store**2, 0, 0, w_store**2, 0])


def test_daily_online_units_net_of_returns_by_order_date() -> None:
    orders = pl.LazyFrame(
        {
            "order_date": [D, D, _day(1)],
            "sku": ["x"] * 3,
            "units": [3.0, -1.0, -2.0],
            "ship_postal_code": ["01"] * 3,
        }
    )
    postal = pl.LazyFrame({"postal_code": ["01"], "region": ["N"]})
    out = daily_online_units(orders, postal, as_of=_day(5)).collect().sort("date")
    assert out.select("date", "units").rows() == [(D, 2.0), (_day(1), 0.0)]


def test_event_days_assign_overlaps_to_the_event_under_way_and_cluster_close_windows() -> None:
    # e1 (days 10-11) and e2 (days 13-14) with 2 lead days: e2's lead overlaps e1; e3 is far away
    inst = _instances(("e1", "N", 10, 11), ("e2", "N", 13, 14), ("e3", "N", 40, 40)).with_columns(
        pl.lit(False).alias("chain_wide")
    )
    out = event_days(inst, cluster_gap_days=3).collect().sort("date")
    assert out["date"].to_list() == [_day(i) for i in (8, 9, 10, 11, 12, 13, 14, 38, 39, 40)]
    assert out["offset"].to_list() == [-2, -1, 0, 1, -1, 0, 1, -2, -1, 0]
    assert out["cluster"].to_list() == [_day(8)] * 7 + [_day(38)] * 3
    apart = event_days(inst, cluster_gap_days=0).collect()
    assert apart["cluster"].n_unique() == 3  # event days 2 apart: lead days do not join them


def test_event_days_mark_the_wake_after_an_event() -> None:
    inst = _instances(("e1", "N", 10, 11)).with_columns(pl.lit(False).alias("chain_wide"))
    out = event_days(inst, cluster_gap_days=0, after_days=2).collect().sort("date")
    assert out["phase"].to_list() == ["lead", "lead", "during", "during", "after", "after"]
    assert out["offset"].to_list() == [-2, -1, 0, 1, 2, 3]
