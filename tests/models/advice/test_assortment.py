"""Tests for models/assortment.py on a tiny hand-made world."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.outputs import ASSORTMENT_COLUMNS, PATTERN_COLUMNS
from data_contracts.schemas import CONTRACTS, LAKE_ONLINE_ORDERS, LAKE_STORE_SALES
from data_contracts.tables import LakeTables
from models.advice.assortment import candidate_pairs, recommend_assortment, store_category_capacity
from models.advice.settings import AssortmentSettings

AS_OF = date(2024, 6, 30)


Sale = tuple[date, str, str, float]  # date, store_id, sku, units
Order = tuple[date, str, str, float]  # order_date, ship_postal_code, sku, units
Event = tuple[str, str, str, date, date]  # event_id, event_type, region, start_date, end_date


def make_tables(
    assortment: dict[str, list[str]],
    *,
    shelf: list[tuple[str, str, int]] | None = None,
    sales: list[Sale] | None = None,
    orders: list[Order] | None = None,
    events: list[Event] | None = None,
) -> LakeTables:
    """Stores S1, S2 (region R1, postal codes 001/002) and S3 (R2, 003); SKUs A-D, F, G in category
    X, E in category Y; facts and events as given, in the lake's schemas."""
    stores = pl.DataFrame(
        {
            "store_id": ["S1", "S2", "S3"],
            "region": ["R1", "R1", "R2"],
            "state": ["AA"] * 3,
            "postal_code": ["001", "002", "003"],
        }
    )
    products = pl.DataFrame(
        {
            "sku": list("ABCDEFG"),
            "name": [f"Item {s}" for s in "ABCDEFG"],
            "category": ["X", "X", "X", "X", "Y", "X", "X"],
            "regular_price": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 1.0],
        }
    )
    sales_df = pl.DataFrame(sales or [], schema=["date", "store_id", "sku", "units"], orient="row")
    orders_df = pl.DataFrame(
        orders or [], schema=["order_date", "ship_postal_code", "sku", "units"], orient="row"
    ).with_columns(order_id=pl.int_range(pl.len()).cast(pl.String), line_number=pl.lit(1))
    return LakeTables(
        stores=_conform(stores, CONTRACTS["stores"].schema),
        products=_conform(products, CONTRACTS["products"].schema),
        postal_regions=pl.DataFrame({"postal_code": ["001", "002", "003"], "region": ["R1", "R1", "R2"]}),
        assortment=pl.DataFrame(
            [(s, k) for s, ks in assortment.items() for k in ks],
            schema=CONTRACTS["assortment"].schema,
            orient="row",
        ),
        shelf_capacity=pl.DataFrame(shelf or [], schema=CONTRACTS["shelf_capacity"].schema, orient="row"),
        events=_conform(
            pl.DataFrame(
                events or [],
                orient="row",
                schema=["event_id", "event_type", "region", "start_date", "end_date"],
            ),
            CONTRACTS["events"].schema,
        ),
        store_sales=_conform(sales_df.with_columns(revenue=pl.col("units")), LAKE_STORE_SALES).lazy(),
        online_orders=_conform(orders_df.with_columns(revenue=pl.col("units")), LAKE_ONLINE_ORDERS).lazy(),
    )


def _conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``df`` with exactly ``schema``'s columns (missing ones null)."""
    return df.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in df.columns
    ).select([pl.col(c).cast(t) for c, t in schema.items()])


def make_forecast(daily: dict[tuple[str, str], float], days: int = 7, start: date = AS_OF) -> pl.DataFrame:
    """A flat forecast: the same units every day for `days` days after ``start``."""
    rows = [
        (s, k, start + timedelta(days=d + 1), u, u, u) for (s, k), u in daily.items() for d in range(days)
    ]
    return pl.DataFrame(
        rows,
        schema=pl.Schema(
            {
                "store_id": pl.String,
                "sku": pl.String,
                "date": pl.Date,
                "units": pl.Float64,
                "p10": pl.Float64,
                "p90": pl.Float64,
            }
        ),
        orient="row",
    )


def make_patterns(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Patterns in the contract's columns from dicts; category X, support 10, q 0.001 unless given."""
    defaults = {"category": "X", "support": 10, "q_value": 0.001, "explanation": "test"}
    return _conform(pl.DataFrame([{**defaults, **r} for r in rows]), PATTERN_COLUMNS)


def _patterns(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    """Patterns (kind, region, sku, lift)."""
    return make_patterns([dict(zip(("kind", "region", "sku", "lift"), r, strict=True)) for r in rows])


BASE = {"S1": ["A", "B", "C"], "S2": ["A", "B", "D"], "S3": ["A", "B", "E"]}
DAILY = {
    ("S1", "A"): 10.0,
    ("S1", "B"): 5.0,
    ("S1", "C"): 0.1,
    ("S2", "A"): 8.0,
    ("S2", "B"): 4.0,
    ("S2", "D"): 3.0,
    ("S3", "A"): 6.0,
    ("S3", "B"): 1.0,
    ("S3", "E"): 2.0,
}
SETTINGS = AssortmentSettings(min_gain_ratio=1.2, max_changes_share=0.25, prestock_max_lift=15.0)


def _actions(out: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {(r["store_id"], r["sku"]): r["action"] for r in out.iter_rows(named=True)}


def test_latent_demand_replaces_slow_seller_with_online_reason() -> None:
    tables = make_tables(BASE)
    patterns = _patterns([("latent_demand", "R1", "D", 0.8)])
    forecast = make_forecast({**DAILY, ("S1", "D"): 2.0})
    cands = candidate_pairs(tables, patterns)
    out = recommend_assortment(tables, cands, forecast, patterns, settings=SETTINGS)
    acts = _actions(out)
    assert acts[("S1", "D")] == "add"
    assert acts[("S1", "C")] == "drop"
    assert acts[("S1", "A")] == acts[("S1", "B")] == "keep"
    add = out.filter(pl.col("store_id") == "S1", pl.col("sku") == "D").row(0, named=True)
    assert add["reason"].startswith("Online demand from R1 for an item this store doesn't carry")
    assert "replacing Item C (C)" in add["reason"]
    assert add["expected_weekly_units"] == pytest.approx(14.0)
    assert add["expected_weekly_revenue"] == pytest.approx(56.0)
    drop = out.filter(pl.col("store_id") == "S1", pl.col("sku") == "C").row(0, named=True)
    assert "replaced by Item D (D)" in drop["reason"]
    assert out.schema == ASSORTMENT_COLUMNS


@pytest.mark.parametrize("d_daily, expected", [(0.11, "keep"), (0.13, "drop")])
def test_no_churn_for_small_gains(d_daily: float, expected: str) -> None:
    """0.11 vs 0.1 a day is a 10% gain: below min_gain_ratio 1.2, so C stays; 0.13 is a 30% gain."""
    tables = make_tables(BASE)
    patterns = _patterns([("latent_demand", "R1", "D", 0.8)])
    out = recommend_assortment(
        tables,
        candidate_pairs(tables, patterns),
        make_forecast({**DAILY, ("S1", "D"): d_daily}),
        patterns,
        settings=SETTINGS,
    )
    assert _actions(out)[("S1", "C")] == expected
    assert (("S1", "D") in _actions(out)) == (expected == "drop")


@pytest.mark.parametrize("shelf", [None, [("S1", "X", 4), ("S2", "X", 3), ("S3", "X", 1), ("S3", "Y", 1)]])
def test_capacity_never_exceeded_and_carried_pairs_once(shelf: list[tuple[str, str, int]] | None) -> None:
    tables = make_tables(BASE, shelf=shelf)
    patterns = _patterns([("latent_demand", "R1", "D", 0.8), ("local_affinity", "R2", "C", 2.0)])
    daily = {**DAILY, ("S1", "D"): 2.0, ("S3", "C"): 9.0, ("S3", "D"): 0.5}
    out = recommend_assortment(
        tables, candidate_pairs(tables, patterns), make_forecast(daily), patterns, settings=SETTINGS
    )
    cap = store_category_capacity(tables)
    used = out.filter(pl.col("action").is_in(["add", "keep"])).group_by("store_id", "category").len()
    joined = used.join(cap, on=["store_id", "category"], how="left")
    assert (joined["len"] <= joined["capacity"]).all()
    carried = out.filter(pl.col("action").is_in(["keep", "drop"])).select("store_id", "sku")
    assert_frame_equal(carried.sort("store_id", "sku"), tables.assortment.sort("store_id", "sku"))
    assert out.select("store_id", "sku").is_duplicated().sum() == 0


def test_capacity_from_shelf_file_frees_and_forces() -> None:
    """S1 gets a 4th slot (D added, C kept); S3 may hold one X SKU: B is dropped to fit, not A."""
    tables = make_tables(BASE, shelf=[("S1", "X", 4), ("S3", "X", 1)])
    patterns = _patterns([("latent_demand", "R1", "D", 0.8)])
    out = recommend_assortment(
        tables,
        candidate_pairs(tables, patterns),
        make_forecast({**DAILY, ("S1", "D"): 0.05}),
        patterns,
        settings=SETTINGS,
    )
    acts = _actions(out)
    assert acts[("S1", "D")] == "add" and acts[("S1", "C")] == "keep"
    assert acts[("S3", "A")] == "keep" and acts[("S3", "B")] == "drop" and acts[("S3", "E")] == "keep"
    reason = out.filter(pl.col("store_id") == "S3", pl.col("sku") == "B")["reason"][0]
    assert "holds only 1 SKUs" in reason


@pytest.mark.parametrize(
    "share, dropped, added", [(0.25, {"B"}, {"F"}), (0.5, {"B", "C"}, {"F", "G"}), (0.0, set(), set())]
)
def test_max_changes_share_bounds_swaps(share: float, dropped: set[str], added: set[str]) -> None:
    """Two strong adds against two slow sellers on a shelf of 4: share 0.25 allows one swap, 0.5 two."""
    tables = make_tables({"S1": ["A", "B", "C", "D"], "S3": ["A"]})
    daily = {
        ("S1", "A"): 5.0,
        ("S1", "B"): 0.1,
        ("S1", "C"): 0.2,
        ("S1", "D"): 3.0,
        ("S1", "F"): 3.0,
        ("S1", "G"): 2.5,
    }
    patterns = _patterns([("latent_demand", "R1", "F", 1.0), ("latent_demand", "R1", "G", 0.9)])
    out = recommend_assortment(
        tables,
        candidate_pairs(tables, patterns),
        make_forecast(daily),
        patterns,
        settings=AssortmentSettings(max_changes_share=share),
    )
    acts = _actions(out)
    assert {k for (s, k), a in acts.items() if s == "S1" and a == "drop"} == dropped
    assert {k for (s, k), a in acts.items() if s == "S1" and a == "add"} == added


def test_candidate_pairs_adds_pattern_and_region_skus() -> None:
    tables = make_tables(BASE, sales=[(AS_OF, "S2", "D", 5.0), (AS_OF, "S1", "A", 3.0)])
    patterns = _patterns([("latent_demand", "R2", "C", 0.5), ("local_affinity", "R2", "D", 0.5)])
    cands = candidate_pairs(tables, patterns, region_top_n=5)
    expected = pl.DataFrame(
        {
            "store_id": ["S1", "S1", "S1", "S1", "S2", "S2", "S2", "S2", "S3", "S3", "S3", "S3"],
            "sku": ["A", "B", "C", "D", "A", "B", "C", "D", "A", "B", "C", "E"],
            "carried": [True, True, True, False, True, True, False, True, True, True, False, True],
        }
    )
    assert_frame_equal(cands, expected)
