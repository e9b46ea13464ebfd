"""Hand-made shelves for the advice tests (not seeded): a three-store chain whose every row a test
writes itself, plus flat forecasts and patterns in the output contract's columns."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from data_contracts.outputs import FORECAST_COLUMNS, PATTERN_COLUMNS, conform
from data_contracts.tables import LakeTables
from tests.worlds.lake import lake_tables

AS_OF = date(2024, 6, 30)

Sale = tuple[date, str, str, float]  # date, store_id, sku, units
Order = tuple[date, str, str, float]  # order_date, ship_postal_code, sku, units
Event = tuple[str, str, str, date, date]  # event_id, event_type, region, start_date, end_date
# sku -> (category, subcategory, brand, price)
Product = tuple[str, str | None, str | None, float]

PRODUCTS: dict[str, Product] = {
    "A": ("X", "s1", "b1", 1.0), "B": ("X", "s1", "b2", 1.0), "C": ("X", "s2", "b1", 1.0),
    "D": ("X", "s1", "b2", 1.0), "E": ("Y", None, None, 5.0), "F": ("X", "s2", "b2", 1.0),
    "G": ("X", "s1", "b1", 1.0),
}  # fmt: skip


def shelf_tables(
    assortment: dict[str, list[str]],
    *,
    products: dict[str, Product] | None = None,
    shelf: list[tuple[str, str, int]] | None = None,
    sales: list[Sale] | None = None,
    orders: list[Order] | None = None,
    events: list[Event] | None = None,
    must_carry: list[tuple[str, str]] | None = None,
    case_pack: dict[str, int] | None = None,
) -> LakeTables:
    """Stores S1, S2 (region R1, postal codes 001/002) and S3 (R2, 003); products as given (default
    ``PRODUCTS``); the assortment (store -> SKUs), shelf capacity, facts (revenue = units), events and
    must-carry as given, in the lake's schemas."""
    catalog = products or PRODUCTS
    stores = pl.DataFrame({"store_id": ["S1", "S2", "S3"], "region": ["R1", "R1", "R2"],
                           "state": ["AA"] * 3, "postal_code": ["001", "002", "003"]})  # fmt: skip
    product_df = pl.DataFrame(
        [(k, f"Item {k}", c, sub, brand, price, (case_pack or {}).get(k))
         for k, (c, sub, brand, price) in catalog.items()],
        schema=["sku", "name", "category", "subcategory", "brand", "regular_price", "case_pack"],
        orient="row",
    )  # fmt: skip
    sales_df = pl.DataFrame(sales or [], schema=["date", "store_id", "sku", "units"], orient="row")
    orders_df = pl.DataFrame(
        orders or [], schema=["order_date", "ship_postal_code", "sku", "units"], orient="row"
    ).with_columns(order_id=pl.int_range(pl.len()).cast(pl.String), line_number=pl.lit(1))
    return lake_tables(
        stores=stores,
        products=product_df,
        postal_regions=pl.DataFrame({"postal_code": ["001", "002", "003"], "region": ["R1", "R1", "R2"]}),
        assortment=pl.DataFrame(
            [(s, k) for s, ks in assortment.items() for k in ks], schema=["store_id", "sku"], orient="row"
        ),
        shelf_capacity=pl.DataFrame(shelf or [], schema=["store_id", "category", "max_skus"], orient="row"),
        events=pl.DataFrame(
            events or [], schema=["event_id", "event_type", "region", "start_date", "end_date"], orient="row"
        ),
        must_carry=pl.DataFrame(must_carry or [], schema=["store_id", "sku"], orient="row"),
        store_sales=sales_df.with_columns(revenue=pl.col("units")),
        online_orders=orders_df.with_columns(revenue=pl.col("units")),
    )


def make_forecast(
    daily: dict[tuple[str, str], float], *, days: int = 28, start: date = AS_OF, spread: float = 0.0
) -> pl.DataFrame:
    """A flat forecast: the same units every day for ``days`` days after ``start``; p10/p90 at
    units -/+ ``spread`` (p10 never below 0)."""
    rows = [
        (s, k, start + timedelta(days=d + 1), u, max(u - spread, 0.0), u + spread)
        for (s, k), u in daily.items()
        for d in range(days)
    ]
    return pl.DataFrame(rows, schema=FORECAST_COLUMNS, orient="row")


def make_patterns(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Patterns in the contract's columns from dicts (extra keys kept after them, as the miner's extra
    columns are); category X, support 10, q 0.001 unless given."""
    defaults = {"category": "X", "support": 10, "q_value": 0.001, "explanation": "test"}
    return conform(pl.DataFrame([{**defaults, **r} for r in rows]), PATTERN_COLUMNS)
