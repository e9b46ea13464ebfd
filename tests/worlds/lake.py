"""The one builder of lake tables for tests: plain frames in, a LakeTables in the lake's schemas out."""

from __future__ import annotations

import polars as pl

from data_contracts.outputs import conform
from data_contracts.schemas import CONTRACTS, FACT_SCHEMAS
from data_contracts.tables import LakeTables


def as_lake(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``df`` with exactly ``schema``'s columns, in order and cast (nulls where it has none), as the
    lake reads it back."""
    return conform(df, schema).select(schema.names())


def lake_tables(
    *,
    stores: pl.DataFrame | None = None,
    products: pl.DataFrame | None = None,
    postal_regions: pl.DataFrame | None = None,
    assortment: pl.DataFrame | None = None,
    shelf_capacity: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    must_carry: pl.DataFrame | None = None,
    store_sales: pl.DataFrame | None = None,
    online_orders: pl.DataFrame | None = None,
) -> LakeTables:
    """A LakeTables from the frames given, each brought to its contract's schema (reference tables) or
    its lake schema (facts, made lazy); a table not given is an empty frame of its schema, as a lake
    without that file holds it."""
    given = {
        "stores": stores,
        "products": products,
        "postal_regions": postal_regions,
        "assortment": assortment,
        "shelf_capacity": shelf_capacity,
        "events": events,
        "must_carry": must_carry,
    }
    refs = {name: _table(df, CONTRACTS[name].schema) for name, df in given.items()}
    facts = {
        name: _table(df, FACT_SCHEMAS[name]).lazy()
        for name, df in (("store_sales", store_sales), ("online_orders", online_orders))
    }
    return LakeTables(**refs, **facts)


def _table(df: pl.DataFrame | None, schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema) if df is None else as_lake(df, schema)
