"""Lag features look only back, by exactly their lag, and cross-sectional rates leave the pair out."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from features.lags import (
    add_cross_sectional,
    add_dow_means,
    add_online_demand,
    add_own_lags,
    add_own_rolling,
    add_price_features,
)
from features.panel import FeatureSpec, demand_features
from tests.worlds.weekly import START, weekly_chain

D0 = date(2024, 3, 1)


def _panel(units: dict[tuple[str, str], list[float | None]], region: dict[str, str]) -> pl.LazyFrame:
    """A dense hand-made panel: per (store, sku) its daily units from D0."""
    frames = [
        pl.DataFrame(
            {
                "store_id": s,
                "sku": k,
                "date": [D0 + timedelta(days=i) for i in range(len(u))],
                "units": pl.Series(u, dtype=pl.Float64),
                "region": region[s],
            }
        )
        for (s, k), u in units.items()
    ]
    return pl.concat(frames).lazy()


def test_own_lag_and_rolling_mean_hand_values() -> None:
    lf = _panel({("A", "X"): [1.0, 2.0, None, 4.0, 5.0]}, {"A": "R"})
    got = (
        lf.pipe(add_own_lags, lags=[2])
        .pipe(add_own_rolling, lag=2, windows=[2])
        .select("units_lag2", "units_mean_lag2_window2", "_own_sum_2", "_own_days_2")
        .collect()
    )
    expected = pl.DataFrame(
        {
            "units_lag2": [None, None, 1.0, 2.0, None],
            # mean of the uncensored days among the 2 ending 2 days back: the null day is skipped
            "units_mean_lag2_window2": [None, None, 1.0, 1.5, 2.0],
            "_own_sum_2": [0.0, 0.0, 1.0, 3.0, 2.0],
            "_own_days_2": [0.0, 0.0, 1.0, 2.0, 1.0],
        }
    )
    assert_frame_equal(got, expected)


def test_same_weekday_mean_looks_back_whole_weeks() -> None:
    # 22 days: day i sold i, except a censored (unknown) day 7
    units = [float(i) if i != 7 else None for i in range(22)]
    got = add_dow_means(_panel({("A", "X"): units}, {"A": "R"}), lag=3, weeks=[2]).collect()
    name = "units_dow_mean_lag7_window14"  # a lag of 3 days reaches back to the same weekday 1 week ago
    values = got.get_column(name).to_list()
    assert values[:7] == [None] * 7
    assert values[14] == 0.0  # days 7 (unknown, skipped) and 0
    assert values[15] == 4.5  # days 8 and 1
    assert values[21] == 14.0  # days 14 and 7 (unknown, skipped)
    assert values[8] == 1.0  # only day 1 exists that far back


def test_price_features_hand_values() -> None:
    lf = _panel({("A", "X"): [1.0] * 4}, {"A": "R"}).with_columns(
        pl.Series("price", [2.0, 2.0, 1.5, 1.0]), pl.lit(2.0).alias("regular_price")
    )
    got = add_price_features(lf, lag=1, window=2).collect()
    assert got.get_column("price_ratio_regular").to_list() == [1.0, 1.0, 0.75, 0.5]
    assert got.get_column("price_discount").to_list() == [0.0, 0.0, 0.25, 0.5]
    # against the mean price of the 2 days ending 1 day back
    assert got.get_column("price_ratio_mean_lag1_window2").to_list() == [None, 1.0, 0.75, 1.0 / 1.75]
    assert got.get_column("price_ratio_max").to_list() == [1.0, 1.0, 0.75, 0.5]


def test_lag28_equals_value_28_days_earlier() -> None:
    tables = weekly_chain(n_stores=2, n_skus=2, days=120, stockout_share=0.05)
    spec = FeatureSpec(lags=(28,), windows=(7,), horizon=28)
    feats = demand_features(tables, spec, as_of=START + timedelta(days=100)).collect()
    earlier = feats.select("store_id", "sku", (pl.col("date") + timedelta(days=28)).alias("date"), "units")
    joined = feats.join(earlier, on=["store_id", "sku", "date"], how="inner", suffix="_then")
    assert joined.height > 100
    assert_frame_equal(
        joined.select(pl.col("units_lag28").alias("x")), joined.select(pl.col("units_then").alias("x"))
    )
    # and no row is dated after as_of when no pairs are asked for
    assert feats.get_column("date").max() == START + timedelta(days=100)


def test_cross_sectional_rates_leave_the_pair_out() -> None:
    lf = _panel(
        {("A", "X"): [10.0, 10.0, 10.0], ("B", "X"): [2.0, 4.0, 6.0], ("C", "X"): [1.0, 1.0, 1.0]},
        {"A": "R1", "B": "R1", "C": "R2"},
    )
    got = (
        lf.pipe(add_own_rolling, lag=1, windows=[2])
        .pipe(add_cross_sectional, lag=1, windows=[2])
        .filter(pl.col("date") == D0 + timedelta(days=2))
        .sort("store_id")
        .select(
            "store_id",
            "sku_region_rate_lag1_window2",
            "sku_chain_rate_lag1_window2",
            "store_rate_lag1_window2",
        )
        .collect()
    )
    expected = pl.DataFrame(
        {
            "store_id": ["A", "B", "C"],
            "sku_region_rate_lag1_window2": [3.0, 10.0, None],  # the other store of the region, days 0-1
            "sku_chain_rate_lag1_window2": [2.0, 5.5, 6.5],  # all other stores
            "store_rate_lag1_window2": [10.0, 3.0, 1.0],
        }
    )
    assert_frame_equal(got, expected)
    assert not any(c.startswith("_") for c in got.columns)


def test_online_demand_per_store_of_region() -> None:
    lf = _panel({("A", "X"): [0.0] * 4, ("B", "X"): [0.0] * 4}, {"A": "R1", "B": "R1"})
    online = pl.LazyFrame(
        {
            "region": ["R1", "R1", "R2"],
            "sku": ["X", "X", "X"],
            "date": [D0, D0 + timedelta(days=1), D0],
            "units": [4.0, 8.0, 100.0],
        }
    )
    stores = pl.DataFrame({"store_id": ["A", "B"], "region": ["R1", "R1"]})
    got = (
        lf.pipe(add_online_demand, online, stores, lag=1, windows=[2])
        .filter(pl.col("store_id") == "A")
        .sort("date")
        .collect()
        .get_column("online_units_lag1_window2")
    )
    # day 2 sees days 0-1: 12 units / 2 days / 2 stores of R1; R2's orders never count
    assert got.to_list() == [0.0, 1.0, 3.0, 2.0]


def test_online_demand_without_orders_is_zero_either_way() -> None:
    # a chain with no online orders: the collected empty frame skips the window sums, same result
    lf = _panel({("A", "X"): [1.0] * 4, ("C", "X"): [2.0] * 4}, {"A": "R1", "C": "R9"})
    empty = pl.DataFrame(schema={"region": pl.String, "sku": pl.String, "date": pl.Date, "units": pl.Float64})
    stores = pl.DataFrame({"store_id": ["A", "B"], "region": ["R1", "R1"]})  # R9 has no store row

    def online(frame: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
        out = lf.pipe(add_online_demand, frame, stores, lag=1, windows=[2, 3])
        return out.sort("store_id", "date").collect()

    fast, slow = online(empty), online(empty.lazy())
    assert_frame_equal(fast, slow)
    a = fast.filter(pl.col("store_id") == "A")
    assert a.get_column("online_units_lag1_window2").to_list() == [0.0] * 4
    assert fast.filter(pl.col("store_id") == "C").get_column("online_units_lag1_window3").null_count() == 4
