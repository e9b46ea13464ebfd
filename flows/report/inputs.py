"""What the report reads: the run's output tables and, for the charts over time, the lake.

Columns other engineers add to the outputs (product name, region, replaces, event windows, order units,
discovered events) are used when present; when absent the report fills what it can from the lake's
reference tables (names, regions) and leaves the rest out. Nothing here knows a path: the output folder
comes as OutPaths and the lake as LakePaths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.outputs import ASSORTMENT_COLUMNS, PATTERN_COLUMNS, PRESTOCK_COLUMNS
from data_contracts.tables import LakeTables
from flows.lake.outputs import OutPaths
from flows.lake.paths import LakePaths, load_tables
from flows.report.common import read_table

FORECAST_BACKTEST_FILE = "forecasts.parquet"  # backtest/: long-format predictions beside actuals


@dataclass(frozen=True)
class ReportInputs:
    """The run's tables, each conformed to its contract (empty when the file is missing)."""

    patterns: pl.DataFrame
    assortment: pl.DataFrame
    prestock: pl.DataFrame
    store_regions: pl.DataFrame  # store_id, region
    forecast: Path | None  # scanned lazily: stores x SKUs x days
    as_of: date | None
    lake: LakeTables | None
    missing: list[str] = field(default_factory=list)


def _as_of(run_info: dict[str, Any]) -> date | None:
    try:
        return date.fromisoformat(str(run_info.get("as_of")))
    except ValueError:
        return None


def open_lake(lake: LakePaths | None, run_info: dict[str, Any]) -> LakeTables | None:
    """Return the lake's tables (facts lazily) from ``lake``, else the lake run.json names; None when
    there is none: the report then draws no chart over time."""
    if lake is None:
        named = (run_info.get("inputs") or {}).get("lake")
        lake = LakePaths(named) if named else None
    if lake is None or (lake.url is None and not lake.root.exists()):
        return None
    try:
        return load_tables(lake)
    except (OSError, pl.exceptions.PolarsError):
        return None


def store_regions(lake: LakeTables | None, *frames: pl.DataFrame) -> pl.DataFrame:
    """Return store_id -> region: from the lake's stores table, else from any output that carries both."""
    if lake is not None and lake.stores.height:
        return lake.stores.select("store_id", "region").unique("store_id").sort("store_id")
    found = [f.select("store_id", "region") for f in frames if {"store_id", "region"} <= set(f.columns)]
    if not found:
        return pl.DataFrame(schema={"store_id": pl.String, "region": pl.String})
    return pl.concat(found).drop_nulls().unique("store_id", keep="first").sort("store_id")


def with_names(df: pl.DataFrame, lake: LakeTables | None) -> pl.DataFrame:
    """Return ``df`` with a ``name`` column (and ``subcategory``): kept when the output has it,
    else from the lake's products, else null."""
    products = lake.products if lake is not None else pl.DataFrame(schema={"sku": pl.String})
    for col in ("name", "subcategory"):
        if col in df.columns and df[col].null_count() < df.height:
            continue
        df = df.drop(col, strict=False)
        if col in products.columns:
            df = df.join(products.select("sku", col).unique("sku"), on="sku", how="left")
        else:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    return df


def with_regions(df: pl.DataFrame, regions: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with the store's ``region`` (kept when the output has it)."""
    if "region" in df.columns and df["region"].null_count() < df.height:
        return df
    return df.drop("region", strict=False).join(regions, on="store_id", how="left")


def _or_empty(df: pl.DataFrame | None, schema: pl.Schema) -> pl.DataFrame:
    return df if df is not None else pl.DataFrame(schema=schema)


def read_inputs(out: OutPaths, run_info: dict[str, Any], lake: LakePaths | None = None) -> ReportInputs:
    """Read the output tables of ``out`` (a missing one counts as empty and is named in ``missing``)
    and open the lake; products get names and stores their region."""
    tables = {
        "patterns": (out.patterns, PATTERN_COLUMNS),
        "assortment": (out.assortment, ASSORTMENT_COLUMNS),
        "prestock": (out.prestock, PRESTOCK_COLUMNS),
    }
    frames = {name: read_table(path, schema) for name, (path, schema) in tables.items()}
    missing = [path.name for name, (path, _) in tables.items() if frames[name] is None]
    missing += [] if out.forecast.exists() else [out.forecast.name]
    patterns, assortment, prestock = (_or_empty(frames[n], tables[n][1]) for n in tables)
    tables_ = open_lake(lake, run_info)
    regions = store_regions(tables_, assortment, prestock)
    return ReportInputs(
        patterns=with_names(patterns, tables_),
        assortment=with_names(with_regions(assortment, regions), tables_),
        prestock=with_names(prestock, tables_),
        store_regions=regions,
        forecast=out.forecast if out.forecast.exists() else None,
        as_of=_as_of(run_info),
        lake=tables_,
        missing=missing,
    )
