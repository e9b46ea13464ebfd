"""The frames behind the report's charts: event curves find the planted storm lift, the regional index
is the category share against the chain's, history is zero-filled."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.report import series
from tests.flows.report import frames

AS_OF = frames.AS_OF


@pytest.fixture(scope="module")
def curves() -> pl.DataFrame:
    return series.event_curves(
        frames.sales().lazy(), frames.stores(), frames.events(), frames.patterns(), as_of=AS_OF
    )


def test_event_curves_find_the_planted_storm_lift(curves: pl.DataFrame) -> None:
    storm = curves.filter(pl.col("event_type") == "storm")
    lift = dict(storm.select("offset", "lift").iter_rows())
    # A1 (the only product with a storm uplift on the coast) sells 4x on the storm's first three days
    assert [round(lift[d], 6) for d in (0, 1, 2)] == [4.0, 4.0, 4.0]
    assert round(lift[-3], 6) == 1.0 and round(lift[5], 6) == 1.0
    assert storm["events"].max() == 2 and storm["skus"].max() == 1 and storm["flagged"].all()
    # the two storms agree exactly, so the interval across them has no width
    day0 = storm.filter(pl.col("offset") == 0).row(0, named=True)
    assert day0["ci_low"] == pytest.approx(4.0) and day0["ci_high"] == pytest.approx(4.0)


def test_event_type_without_uplift_uses_every_product_in_every_region(curves: pl.DataFrame) -> None:
    holiday = curves.filter(pl.col("event_type") == "holiday")
    assert not holiday["flagged"].any()
    assert holiday["skus"].null_count() == holiday.height  # every product, not counted
    # flat, except where a coast storm (days -9 to -7) falls in the holiday's window
    assert holiday.filter(pl.col("offset") > -7)["lift"].round(6).unique().to_list() == [1.0]
    assert holiday.filter(pl.col("offset") == -9)["lift"].item() > 1.0
    assert holiday["events"].max() == 1  # one chain-wide event, counted once over its two regions


def test_event_curves_leave_out_events_without_enough_history() -> None:
    late = frames.events().with_columns(pl.lit(AS_OF - timedelta(days=2)).alias("start_date"))
    out = series.event_curves(frames.sales().lazy(), frames.stores(), late, frames.patterns(), as_of=AS_OF)
    assert out.height == 0 and "lift" in out.columns


def test_event_curves_interval_spans_disagreeing_events() -> None:
    # the second storm lifts A1 only 2x: the mean is 3x with an interval that contains both
    second = frames.STORMS[1]
    sales = frames.sales().with_columns(
        pl.when(
            (pl.col("sku") == "A1")
            & pl.col("date").is_between(second, second + timedelta(days=2))
            & pl.col("store_id").is_in(["S01", "S02"])
        )
        .then(20.0)
        .otherwise(pl.col("units"))
        .alias("units")
    )
    out = series.event_curves(sales.lazy(), frames.stores(), frames.events(), frames.patterns(), as_of=AS_OF)
    day0 = out.filter((pl.col("event_type") == "storm") & (pl.col("offset") == 0)).row(0, named=True)
    assert day0["lift"] == pytest.approx(3.0)
    assert day0["ci_low"] < 2.0 and day0["ci_high"] > 4.0


def test_region_index_is_the_category_share_against_the_chain() -> None:
    sales = pl.DataFrame(
        {
            "date": [AS_OF] * 4,
            "store_id": ["S01", "S01", "S03", "S03"],
            "sku": ["A1", "A3", "A1", "A3"],
            "units": [30.0, 10.0, 10.0, 30.0],
        }
    )
    out = series.region_index(sales.lazy(), frames.stores(), frames.products(), as_of=AS_OF)
    expected = pl.DataFrame(
        {
            "region": ["COAST", "COAST", "HILLS", "HILLS"],
            "category": ["drinks", "snacks", "drinks", "snacks"],
            "units": [10.0, 30.0, 30.0, 10.0],
            "index": [50.0, 150.0, 150.0, 50.0],
        }
    )
    assert_frame_equal(out, expected)


def test_history_fills_days_without_sales_with_zero() -> None:
    sales = pl.DataFrame(
        {
            "date": [AS_OF - timedelta(days=2), AS_OF],
            "store_id": ["S01", "S01"],
            "sku": ["A1", "A1"],
            "units": [3.0, 5.0],
        }
    )
    pairs = pl.DataFrame({"store_id": ["S01"], "sku": ["A1"]})
    out = series.history(sales.lazy(), pairs, as_of=AS_OF, days=3)
    assert out["units"].to_list() == [3.0, 0.0, 5.0]
    assert out["date"].to_list() == [AS_OF - timedelta(days=k) for k in (2, 1, 0)]


def test_chain_history_counts_only_the_forecast_shelves() -> None:
    sales = frames.sales().filter(pl.col("date") == AS_OF)
    fc = frames.forecast()  # S01's A1 and A3
    out = series.chain_history(sales.lazy(), fc.lazy(), as_of=AS_OF, days=1)
    assert out.to_dicts() == [{"date": AS_OF, "units": 20.0}]


def test_example_pairs_chosen_or_the_best_keep_per_region() -> None:
    a = frames.assortment().with_columns(
        pl.col("store_id").replace_strict(frames.STORES).alias("region"),
        pl.lit(None, pl.String).alias("name"),
    )
    fc = frames.forecast().lazy()
    picked = series.example_pairs(a, fc, store=None, sku=None, top=3)
    assert picked.select("store_id", "sku").rows() == [("S01", "A3")]  # the only kept pair with a forecast
    chosen = series.example_pairs(a, fc, store="S02", sku="A4", top=3)
    assert chosen.select("store_id", "sku", "region").rows() == [("S02", "A4", "COAST")]
    unknown = series.example_pairs(a, fc, store="S09", sku="Z", top=3)
    assert unknown.select("store_id", "sku").rows() == [("S09", "Z")]
