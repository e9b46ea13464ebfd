"""The demand panel: dense days, returns clipped, stockouts censored, the future unknown."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.schemas import CONTRACTS, LAKE_STORE_SALES
from features.panel import build_panel, daily_demand, pair_spans

D0 = date(2024, 3, 1)


def _sales(rows: list[tuple[int, str, str, float, float | None]]) -> pl.LazyFrame:
    """(day offset, store, sku, units, on_hand) rows as a lake store_sales frame."""
    df = pl.DataFrame(
        {
            "date": [D0 + timedelta(days=r[0]) for r in rows],
            "store_id": [r[1] for r in rows],
            "sku": [r[2] for r in rows],
            "units": [r[3] for r in rows],
            "revenue": [r[3] * 2 for r in rows],
            "on_hand": [r[4] for r in rows],
        },
        schema_overrides={"on_hand": pl.Float64},
    )
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in LAKE_STORE_SALES.items() if c not in df.columns]
    return df.with_columns(missing).select(list(LAKE_STORE_SALES)).lazy()


STORES = pl.DataFrame({"store_id": ["A", "B"], "region": ["R1", "R2"]}).with_columns(
    pl.lit(None, dtype=pl.String).alias("state")
)
PRODUCTS = pl.DataFrame({"sku": ["X", "Y"], "category": ["C", "C"], "regular_price": [1.0, 2.0]})


def test_daily_demand_clips_returns_and_censors_stockouts() -> None:
    sales = _sales(
        [(0, "A", "X", 3.0, 5.0), (1, "A", "X", -2.0, 5.0), (2, "A", "X", 0.0, 0.0), (3, "A", "X", 1.0, 0.0)]
    )
    got = daily_demand(sales, as_of=D0 + timedelta(days=9)).sort("date").collect()
    expected = pl.DataFrame(
        {
            "store_id": ["A"] * 4,
            "sku": ["X"] * 4,
            "date": [D0 + timedelta(days=i) for i in range(4)],
            "units": [3.0, 0.0, None, 1.0],  # a return is no demand; an empty shelf is unknown demand
            "censored": [False, False, True, False],
            "promo": [0.0] * 4,
            "price": [2.0, None, None, 2.0],  # revenue / units on days with a sale
        }
    )
    assert_frame_equal(got, expected)


def test_panel_price_is_actual_then_last_known_then_regular() -> None:
    sales = _sales([(0, "A", "X", 2.0, None), (2, "A", "X", 1.0, None)]).with_columns(
        pl.when(pl.col("date") == D0 + timedelta(days=2))
        .then(1.5)
        .otherwise(pl.col("revenue"))
        .alias("revenue")
    )
    pairs = pl.DataFrame({"store_id": ["A", "B"], "sku": ["X", "Y"]})
    panel = build_panel(
        sales,
        stores=STORES,
        products=PRODUCTS,
        assortment=pairs.head(1),
        as_of=D0 + timedelta(days=3),
        horizon=2,
        pairs=pairs,
    ).collect()
    # day 1 and 3 carry the last price forward; the forecast days keep the last known (1.5); the
    # never-sold pair gets its regular price
    assert panel.get_column("price").to_list() == [2.0, 2.0, 1.5, 1.5, 1.5, 1.5, 2.0, 2.0]


def test_panel_price_carries_no_promotion_past_its_days() -> None:
    # regular 2.0 on day 0, on promotion at 1.0 on days 1-2 (day 2 unsold), as_of day 3 still on
    # promotion at 1.2, then an unsold regular day 4: a promotion's price stays on its days
    sales = _sales([(0, "A", "X", 2.0, None), (1, "A", "X", 4.0, None), (2, "A", "X", 0.0, None)])
    sales = pl.concat(
        [sales.collect(), _sales([(3, "A", "X", 5.0, None), (4, "A", "X", 0.0, None)]).collect()]
    ).with_columns(
        pl.col("date").is_between(D0 + timedelta(days=1), D0 + timedelta(days=3)).alias("promo"),
        pl.when(pl.col("date") == D0 + timedelta(days=3))
        .then(6.0)
        .otherwise(pl.col("revenue"))
        .alias("revenue"),
    )
    sales = sales.with_columns(
        pl.when(pl.col("date") == D0 + timedelta(days=1))
        .then(4.0)
        .otherwise(pl.col("revenue"))
        .alias("revenue")
    )
    pairs = pl.DataFrame({"store_id": ["A"], "sku": ["X"]})
    panel = build_panel(
        sales.lazy(),
        stores=STORES,
        products=PRODUCTS,
        assortment=pairs,
        as_of=D0 + timedelta(days=4),
        horizon=2,
        pairs=pairs,
    ).collect()
    # day 2: an unsold promotion day keeps the promotion's price; day 4 and the forecast days (no
    # promotion known) the last regular price, not the promotion's 1.2 of as_of's eve
    assert panel.get_column("price").to_list() == [2.0, 1.0, 1.0, 1.2, 2.0, 2.0, 2.0]
    assert panel.get_column("promo").to_list() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("carried", "last_sale", "expected_end"),
    [(True, 2, 60), (False, 55, 60), (False, 2, 12)],
)
def test_pair_spans_end(carried: bool, last_sale: int, expected_end: int) -> None:
    sales = _sales([(0, "A", "X", 1.0, None), (last_sale, "A", "X", 1.0, None)])
    assortment = pl.DataFrame(
        {"store_id": ["A"] if carried else [], "sku": ["X"] if carried else []},
        schema=CONTRACTS["assortment"].schema,
    )
    as_of = D0 + timedelta(days=60)
    spans = pair_spans(daily_demand(sales, as_of=as_of), assortment, as_of=as_of, stale_days=10).collect()
    assert spans.get_column("end_date").to_list() == [D0 + timedelta(days=expected_end)]


def test_build_panel_dense_censored_future_and_cold_start() -> None:
    sales = _sales([(0, "A", "X", 2.0, None), (2, "A", "X", 0.0, 0.0), (3, "A", "X", 4.0, None)])
    assortment = pl.DataFrame({"store_id": ["A"], "sku": ["X"]})
    pairs = pl.DataFrame({"store_id": ["A", "B"], "sku": ["X", "Y"]})
    as_of = D0 + timedelta(days=4)
    panel = build_panel(
        sales, stores=STORES, products=PRODUCTS, assortment=assortment, as_of=as_of, horizon=2, pairs=pairs
    ).collect()
    got = panel.select("store_id", "sku", "date", "units", "censored", "is_future", "region", "regular_price")
    expected = pl.DataFrame(
        {
            "store_id": ["A"] * 7 + ["B"] * 2,
            "sku": ["X"] * 7 + ["Y"] * 2,
            "date": [D0 + timedelta(days=i) for i in range(7)] + [D0 + timedelta(days=i) for i in (5, 6)],
            # absent day 1 and 4 sold 0; day 2 was a stockout (unknown); days 5-6 are the future
            "units": [2.0, 0.0, None, 4.0, 0.0, None, None, None, None],
            "censored": [False, False, True, False, False, False, False, False, False],
            "is_future": [False] * 5 + [True] * 2 + [True] * 2,
            "region": ["R1"] * 7 + ["R2"] * 2,
            "regular_price": [1.0] * 7 + [2.0] * 2,
        }
    )
    assert_frame_equal(got, expected)


def test_build_panel_start_trims_history() -> None:
    sales = _sales([(0, "A", "X", 2.0, None), (5, "A", "X", 1.0, None)])
    panel = build_panel(
        sales,
        stores=STORES,
        products=PRODUCTS,
        assortment=pl.DataFrame({"store_id": ["A"], "sku": ["X"]}),
        as_of=D0 + timedelta(days=5),
        start=D0 + timedelta(days=3),
    ).collect()
    assert panel.get_column("date").to_list() == [D0 + timedelta(days=i) for i in (3, 4, 5)]
