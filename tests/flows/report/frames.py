"""Small hand-made outputs and a tiny lake for the report tests.

The lake: three stores in two regions, four products, two storms on the coast (A1 sells 4x on the first
three days of each) and one chain-wide holiday with no effect; HILLS buys twice as many drinks."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.outputs import (
    ASSORTMENT_COLUMNS,
    FORECAST_COLUMNS,
    PATTERN_COLUMNS,
    PRESTOCK_COLUMNS,
    conform,
)
from data_contracts.schemas import CONTRACTS, LAKE_STORE_SALES
from flows.lake.outputs import OutPaths, write_table
from flows.lake.paths import LakePaths, partition_file, reference_file

AS_OF = date(2025, 6, 30)
# The columns the outputs have had from the start; later ones (name, region, replaces, event windows,
# order units, discovered events) come null from conform(), as in a run from before they existed.
ASSORTMENT_BASE = [
    "store_id",
    "sku",
    "category",
    "action",
    "expected_weekly_units",
    "expected_weekly_revenue",
    "reason",
]
PATTERN_BASE = [
    "kind",
    "region",
    "sku",
    "category",
    "event_type",
    "lift",
    "ci_low",
    "ci_high",
    "support",
    "q_value",
    "peak_offset_days",
    "explanation",
]
PRESTOCK_BASE = ["event_type", "region", "store_id", "sku", "baseline_units", "extra_units", "lift", "reason"]
DANGEROUS_REASON = "Online demand <b>high</b> & rising"
STORMS = (date(2025, 5, 1), date(2025, 6, 1))
HOLIDAY = date(2025, 6, 10)
STORES = {"S01": "COAST", "S02": "COAST", "S03": "HILLS"}
PRODUCTS = {
    "A1": ("Strawberry tarts", "snacks"),
    "A2": ("Salted crisps", "snacks"),
    "A3": ("Lemon soda", "drinks"),
    "A4": ("Spring water", "drinks"),
}


def assortment() -> pl.DataFrame:
    rows = [
        ("S01", "A1", "snacks", "add", 12.3456, 36.789, DANGEROUS_REASON),
        ("S01", "A2", "snacks", "drop", 0.5, 1.5, "Slow seller: half a unit a week."),
        ("S01", "A3", "drinks", "keep", 8.0, 24123.456, "Sells 8 units a week."),
        ("S02", "A4", "drinks", "add", 5.0, 10.0, "Region orders it online weekly."),
        ("S02", "A3", "drinks", "keep", 4.0, 12.0, "Sells 4 units a week."),
    ]
    df = pl.DataFrame(rows, schema=ASSORTMENT_BASE, orient="row")
    return conform(df, ASSORTMENT_COLUMNS)


def patterns() -> pl.DataFrame:
    rows = [
        (
            "event_uplift",
            "COAST",
            "A1",
            "snacks",
            "storm",
            6.5,
            4.0,
            9.0,
            5,
            0.001,
            -2,
            "Storms lift A1 6.5x (95% CI 4.0-9.0x, 5 events), about 104.6 units a week.",
        ),
        ("local_affinity", "HILLS", "A3", "drinks", None, 2.0, 1.5, 2.6, 40, 0.01, None, "HILLS loves A3."),
        ("local_affinity", "COAST", "A2", "snacks", None, 0.4, 0.3, 0.55, 40, 0.02, None, "COAST shuns A2."),
        ("latent_demand", "COAST", "A4", "drinks", None, 0.8, 0.5, 1.1, 12, 0.03, None, "COAST wants A4."),
    ]
    return conform(pl.DataFrame(rows, schema=PATTERN_BASE, orient="row"), PATTERN_COLUMNS)


def prestock() -> pl.DataFrame:
    rows = [
        ("storm", "COAST", "S01", "A1", 10.0, 55.0, 6.5, "Stock 55 extra A1 before storms."),
        ("storm", "COAST", "S02", "A1", 4.0, 22.0, 6.5, "Stock 22 extra A1 before storms."),
    ]
    return conform(pl.DataFrame(rows, schema=PRESTOCK_BASE, orient="row"), PRESTOCK_COLUMNS)


def forecast() -> pl.DataFrame:
    days = [AS_OF + timedelta(days=d) for d in range(1, 6)]
    rows = [
        (s, k, d, 1.0 + i, 0.5 + i, 2.0 + i)
        for i, d in enumerate(days)
        for s, k in (("S01", "A1"), ("S01", "A3"))
    ]
    df = pl.DataFrame(rows, schema=["store_id", "sku", "date", "units", "p10", "p90"], orient="row")
    return conform(df, FORECAST_COLUMNS)


def run_info(**extra: Any) -> dict[str, Any]:
    return {
        "as_of": AS_OF.isoformat(),
        "horizon": 28,
        "versions": {"localshelf": "0.1.0", "polars": "2.1.0"},
        "tables": {
            "store_sales": {
                "rows_read": 12345,
                "rows_loaded": 12000,
                "rows_quarantined": 300,
                "rows_duplicate": 45,
            },
            "online_orders": {"rows_read": 10, "rows_loaded": 9, "rows_quarantined": 0, "rows_duplicate": 0},
        },
        "files": [{"path": "store_sales/pos.csv", "rows_read": 12345, "rows_loaded": 12000}],
        "quarantine_reasons": {"unknown store_id": 299, "unparseable date": 1},
        "warnings": [{"table": "online_orders", "message": "many postal codes without region"}],
        "validation": {"success": True, "tables": {"store_sales": {"success": True, "failed": []}}},
        "model": {"valid_wape": 0.6292931735647641, "train_rows": 123456.0},
        "timings_s": {"ingest": 1.5, "train": 2.25},
        **extra,
    }


def write_outputs(root: Path, *, skip: tuple[str, ...] = (), empty: tuple[str, ...] = ()) -> OutPaths:
    """Write the hand-made outputs into ``root``: tables in ``skip`` are left out, those in ``empty``
    written without rows."""
    out = OutPaths(root)
    tables = {
        "assortment": (assortment(), out.assortment),
        "patterns": (patterns(), out.patterns),
        "prestock": (prestock(), out.prestock),
        "forecast": (forecast(), out.forecast),
    }
    for name, (df, path) in tables.items():
        if name not in skip:
            write_table(df.clear() if name in empty else df, path)
    return out


# --------------------------------------------------------------------------------------------- the lake
def stores() -> pl.DataFrame:
    return pl.DataFrame({"store_id": list(STORES), "region": list(STORES.values())})


def products() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sku": list(PRODUCTS),
            "name": [n for n, _ in PRODUCTS.values()],
            "category": [c for _, c in PRODUCTS.values()],
        }
    )


def events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ["E1", "E2", "H1"],
            "event_type": ["storm", "storm", "holiday"],
            "name": ["Storm Ann", "Storm Bob", "Midsummer"],
            "region": ["COAST", "COAST", "ALL"],
            "start_date": [*STORMS, HOLIDAY],
            "end_date": [s + timedelta(days=2) for s in (*STORMS, HOLIDAY)],
        }
    )


def sales(first: date = date(2025, 2, 1)) -> pl.DataFrame:
    """Daily units: 10 of everything, 20 of drinks in HILLS, and A1 at 4x on the coast on each storm's
    first three days."""
    days = pl.date_range(first, AS_OF, eager=True).to_list()
    storm_days = {s + timedelta(days=k) for s in STORMS for k in range(3)}
    rows = []
    for d in days:
        for store, region in STORES.items():
            for sku, (_, category) in PRODUCTS.items():
                units = 20.0 if (region == "HILLS" and category == "drinks") else 10.0
                if sku == "A1" and region == "COAST" and d in storm_days:
                    units *= 4
                rows.append((d, store, sku, units, units * 2.5))
    return pl.DataFrame(rows, schema=["date", "store_id", "sku", "units", "revenue"], orient="row")


def write_lake(root: Path) -> LakePaths:
    """Write the tiny lake (reference tables and one store_sales partition per month) under ``root``."""
    lake = LakePaths(root)
    for name, df in {"stores": stores(), "products": products(), "events": events()}.items():
        path = reference_file(lake, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        conform(df, CONTRACTS[name].schema).write_parquet(path)
    facts = conform(sales(), LAKE_STORE_SALES)
    for (year, month), part in facts.group_by(
        pl.col("date").dt.year().alias("y"), pl.col("date").dt.month().alias("m")
    ):
        path = partition_file(lake, "store_sales", int(year), int(month))
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path)
    return lake
