"""Each table's schema, declared once.

Readers cast with these schemas, row rules and Great Expectations suites are generated from them, and
every later stage reads the lake through them. A column is renamed here and nowhere else.

``DROP_*`` schemas describe a table as the retailer drops it (input contract); ``LAKE_*`` schemas
describe it as stored in the lake (customer_id replaced by its keyed hash, timestamps in UTC, the local
business date added, lineage columns added).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


def _schema(columns: Mapping[str, PolarsDataType]) -> pl.Schema:
    """``pl.Schema(columns)``, typed so that mypy accepts a literal mixing dtype classes and instances."""
    return pl.Schema(columns)


@dataclass(frozen=True)
class TableContract:
    """What the input contract says about one table."""

    name: str
    schema: pl.Schema  # the typed columns as the lake keeps them (before lineage columns)
    required: tuple[str, ...]
    key: tuple[str, ...]  # natural key: unique per table
    kind: str  # "reference" or "fact"
    file_stem: str  # file name in the drop (reference) or folder name (fact)
    # identifier columns are read as strings whatever the file says (leading zeros kept)
    identifiers: tuple[str, ...] = ()
    # column -> allowed values (lower case strings)
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # column -> (min, max) inclusive; None for an open side
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # column -> (reference table, reference column)
    references: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c for c in self.schema.names() if c not in self.required)


STORES = TableContract(
    name="stores",
    schema=pl.Schema(
        {
            "store_id": pl.String,
            "region": pl.String,
            "state": pl.String,
            "postal_code": pl.String,
            "latitude": pl.Float64,
            "longitude": pl.Float64,
            "format": pl.String,
        }
    ),
    required=("store_id", "region", "state", "postal_code"),
    key=("store_id",),
    kind="reference",
    file_stem="stores",
    identifiers=("store_id", "postal_code"),
    ranges={"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)},
)

PRODUCTS = TableContract(
    name="products",
    schema=pl.Schema(
        {
            "sku": pl.String,
            "name": pl.String,
            "category": pl.String,
            "subcategory": pl.String,
            "brand": pl.String,
            "regular_price": pl.Float64,
            "case_pack": pl.Int64,  # optional: units per case when ordering
        }
    ),
    required=("sku", "name", "category", "regular_price"),
    key=("sku",),
    kind="reference",
    file_stem="products",
    identifiers=("sku",),
    ranges={"regular_price": (0.0, None), "case_pack": (1, None)},
)

POSTAL_REGIONS = TableContract(
    name="postal_regions",
    schema=pl.Schema({"postal_code": pl.String, "region": pl.String}),
    required=("postal_code", "region"),
    key=("postal_code",),
    kind="reference",
    file_stem="postal_regions",
    identifiers=("postal_code",),
)

ASSORTMENT = TableContract(
    name="assortment",
    schema=pl.Schema({"store_id": pl.String, "sku": pl.String}),
    required=("store_id", "sku"),
    key=("store_id", "sku"),
    kind="reference",
    file_stem="assortment",
    identifiers=("store_id", "sku"),
    references={"store_id": ("stores", "store_id"), "sku": ("products", "sku")},
)

SHELF_CAPACITY = TableContract(
    name="shelf_capacity",
    schema=pl.Schema({"store_id": pl.String, "category": pl.String, "max_skus": pl.Int64}),
    required=("store_id", "category", "max_skus"),
    key=("store_id", "category"),
    kind="reference",
    file_stem="shelf_capacity",
    identifiers=("store_id",),
    ranges={"max_skus": (1, None)},
    references={"store_id": ("stores", "store_id")},
)

EVENTS = TableContract(
    name="events",
    schema=pl.Schema(
        {
            "event_id": pl.String,
            "event_type": pl.String,
            "name": pl.String,
            "region": pl.String,
            "start_date": pl.Date,
            "end_date": pl.Date,
        }
    ),
    required=("event_id", "event_type", "region", "start_date", "end_date"),
    # one row per affected region, same event_id
    key=("event_id", "region"),
    kind="reference",
    file_stem="events",
    identifiers=("event_id",),
)

STORE_SALES = TableContract(
    name="store_sales",
    schema=pl.Schema(
        {
            "date": pl.Date,
            "store_id": pl.String,
            "sku": pl.String,
            "units": pl.Float64,
            "revenue": pl.Float64,
            "on_hand": pl.Float64,
            "promo": pl.Boolean,
        }
    ),
    required=("date", "store_id", "sku", "units", "revenue"),
    key=("date", "store_id", "sku"),
    kind="fact",
    file_stem="store_sales",
    identifiers=("store_id", "sku"),
    ranges={"on_hand": (0.0, None)},
    references={"store_id": ("stores", "store_id"), "sku": ("products", "sku")},
)

ONLINE_ORDERS = TableContract(
    name="online_orders",
    # as dropped: customer_id in clear, ordered_at as an ISO string with offset
    schema=_schema(
        {
            "order_id": pl.String,
            "line_number": pl.Int64,
            "ordered_at": pl.Datetime("us", "UTC"),
            "sku": pl.String,
            "units": pl.Float64,
            "revenue": pl.Float64,
            "ship_postal_code": pl.String,
            "customer_id": pl.String,
            "fulfillment": pl.String,
            "pickup_store_id": pl.String,
        }
    ),
    required=("order_id", "line_number", "ordered_at", "sku", "units", "revenue", "ship_postal_code"),
    key=("order_id", "line_number"),
    kind="fact",
    file_stem="online_orders",
    identifiers=("order_id", "sku", "ship_postal_code", "customer_id", "pickup_store_id"),
    allowed={"fulfillment": ("ship", "pickup")},
    ranges={"line_number": (1, None)},
    references={"sku": ("products", "sku"), "pickup_store_id": ("stores", "store_id")},
)

# SKUs a store (or ALL stores) must carry: the assortment advice never drops them. store_id is not a
# reference to stores: ALL is allowed.
MUST_CARRY = TableContract(
    name="must_carry",
    schema=pl.Schema({"store_id": pl.String, "sku": pl.String}),
    required=("store_id", "sku"),
    key=("store_id", "sku"),
    kind="reference",
    file_stem="must_carry",
    identifiers=("store_id", "sku"),
    references={"sku": ("products", "sku")},
)

REFERENCE_TABLES: tuple[TableContract, ...] = (
    STORES,
    PRODUCTS,
    POSTAL_REGIONS,
    ASSORTMENT,
    SHELF_CAPACITY,
    MUST_CARRY,
    EVENTS,
)
FACT_TABLES: tuple[TableContract, ...] = (STORE_SALES, ONLINE_ORDERS)
CONTRACTS: dict[str, TableContract] = {c.name: c for c in (*REFERENCE_TABLES, *FACT_TABLES)}

# Columns the lake adds to fact tables.
LINEAGE = _schema(
    {"_source_file": pl.String, "_source_row": pl.Int64, "_loaded_at": pl.Datetime("us", "UTC")}
)

# Online orders as the lake keeps them: no customer_id in clear, the local business date added.
LAKE_ONLINE_ORDERS = _schema(
    {
        **{k: v for k, v in ONLINE_ORDERS.schema.items() if k != "customer_id"},
        "customer_key": pl.String,  # HMAC-SHA256 of customer_id, hex; null for guests
        "order_date": pl.Date,  # local business date of ordered_at (its own UTC offset)
        **LINEAGE,
    }
)
LAKE_STORE_SALES = pl.Schema({**STORE_SALES.schema, **LINEAGE})

QUARANTINE = _schema(
    {
        "table": pl.String,
        "file": pl.String,  # path relative to the drop
        "row_number": pl.Int64,  # 1-based data row number in the file (header not counted)
        "rule": pl.String,  # the rule broken, e.g. "unknown store_id"
        "column": pl.String,  # the column it concerns, when one does
        "raw": pl.String,  # the row's raw values as JSON (customer_id masked)
        "quarantined_at": pl.Datetime("us", "UTC"),
    }
)

FACT_SCHEMAS: dict[str, pl.Schema] = {
    "store_sales": LAKE_STORE_SALES,
    "online_orders": LAKE_ONLINE_ORDERS,
    "quarantine": QUARANTINE,
}

# The date column whose year and month name a fact row's partition.
PARTITION_DATE: dict[str, str] = {"store_sales": "date", "online_orders": "order_date"}

# The region value of events.csv (and of chain-wide rows) that means "every region". Matched exactly.
CHAIN_WIDE = "ALL"
