"""Pure polars pipes behind pattern mining: cleaned daily sales, weekly totals, online demand by region,
event instances with their windows and baselines.

Every function takes and returns LazyFrames (reference tables are passed as LazyFrames too, call
``.lazy()`` on a DataFrame); nothing here reads files or collects. Weeks start on Monday
(``date.dt.truncate("1w")``).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from data_contracts.schemas import CHAIN_WIDE

WEEK = "1w"


def week_of(col: str = "date") -> pl.Expr:
    """Monday of the week of date column ``col``."""
    return pl.col(col).dt.truncate(WEEK)


def clean_store_sales(sales: pl.LazyFrame, stores: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Store sales up to ``as_of`` with the store's region.

    Returns columns date, week, dow (1 = Monday), store_id, region, sku, units (float), stockout (bool).
    ``stockout`` marks censored days (on_hand == 0 with units <= 0): demand there is unknown, so callers
    leave those days out of both observed and expected demand.
    """
    on_hand = pl.col("on_hand") if "on_hand" in sales.collect_schema().names() else pl.lit(None)
    return (
        sales.filter(pl.col("date") <= as_of)
        .join(stores.select("store_id", "region"), on="store_id", how="inner")
        .select(
            "date",
            week_of("date").alias("week"),
            pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"),
            "store_id",
            "region",
            "sku",
            pl.col("units").cast(pl.Float64).fill_null(0.0),
            ((on_hand.cast(pl.Float64) == 0) & (pl.col("units") <= 0)).fill_null(False).alias("stockout"),
        )
    )


def full_weeks(lf: pl.LazyFrame, *, first: date, as_of: date) -> pl.LazyFrame:
    """Rows of ``lf`` (with a ``week`` column) whose whole week lies in [first, as_of].

    Partial weeks at either end would understate weekly rates, so they are dropped.
    """
    return lf.filter((pl.col("week") >= first) & (pl.col("week") + timedelta(days=6) <= as_of))


def weekly_store_units(clean_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Units per store, region, SKU and week (stockout days contribute nothing).

    Returns columns store_id, region, sku, week, units.
    """
    return (
        clean_sales.filter(~pl.col("stockout"))
        .group_by("store_id", "region", "sku", "week")
        .agg(pl.col("units").sum())
    )


def carried_weeks(clean_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Every week a store carried a SKU: from the first to the last week the pair shows up in sales.

    A week with no sale inside that span is a zero-demand week, not a week off the shelf. Returns
    columns store_id, region, sku, week.
    """
    return (
        clean_sales.group_by("store_id", "region", "sku")
        .agg(pl.col("week").min().alias("first"), pl.col("week").max().alias("last"))
        .with_columns(pl.date_ranges("first", "last", WEEK).alias("week"))
        .explode("week")
        .select("store_id", "region", "sku", "week")
    )


def online_region_units(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online units per ship-to region, SKU and week, up to ``as_of`` (returns net of return lines).

    Lines whose postal code maps to no region are left out. Returns columns region, sku, week, units.
    """
    return (
        orders.filter(pl.col("order_date") <= as_of)
        .join(
            postal_regions.select(pl.col("postal_code").alias("ship_postal_code"), "region"),
            on="ship_postal_code",
            how="inner",
        )
        .with_columns(week_of("order_date").alias("week"))
        .group_by("region", "sku", "week")
        .agg(pl.col("units").cast(pl.Float64).sum())
    )


def sku_dow_factors(clean_sales: pl.LazyFrame, *, prior_units: float = 20.0) -> pl.LazyFrame:
    """Chain-wide day-of-week index per SKU: mean units on that weekday / mean units over all weekdays.

    Shrunk toward 1 by ``prior_units`` pseudo-units so slow sellers get a flat profile instead of noise.
    Returns columns sku, dow, dow_factor (averaging ~1 over the week).
    """
    days_per_dow = clean_sales.select("date", "dow").unique().group_by("dow").agg(pl.len().alias("n_days"))
    per_dow = (
        clean_sales.filter(~pl.col("stockout"))
        .group_by("sku", "dow")
        .agg(pl.col("units").sum().clip(lower_bound=0))
        .join(days_per_dow, on="dow")
        .with_columns((pl.col("units") / pl.col("n_days")).alias("rate"))
    )
    mean_rate = pl.col("rate").mean().over("sku")
    prior = prior_units / pl.col("n_days").sum().over("sku")
    return per_dow.select("sku", "dow", ((pl.col("rate") + prior) / (mean_rate + prior)).alias("dow_factor"))


def event_instances(events: pl.LazyFrame, regions: pl.LazyFrame, *, lead_days: int) -> pl.LazyFrame:
    """One row per (event_id, region) hit, with ``ALL`` expanded to every region in ``regions``.

    Returns columns event_id, event_type, region, start_date, end_date, window_start
    (start_date - lead_days).
    """
    everywhere = (
        events.filter(pl.col("region") == CHAIN_WIDE)
        .drop("region")
        .join(regions.select("region").unique(), how="cross")
    )
    named = events.filter(pl.col("region") != CHAIN_WIDE)
    cols = ["event_id", "event_type", "region", "start_date", "end_date"]
    return (
        pl.concat([named.select(cols), everywhere.select(cols)])
        .unique(["event_id", "region"], keep="first", maintain_order=True)
        .with_columns((pl.col("start_date") - timedelta(days=lead_days)).alias("window_start"))
    )


def event_window_days(instances: pl.LazyFrame) -> pl.LazyFrame:
    """Every day of every instance's window [window_start, end_date].

    Returns columns event_id, event_type, region, date, dow, offset (days from start_date; negative =
    before the event starts).
    """
    return (
        instances.with_columns(pl.date_ranges("window_start", "end_date", "1d").alias("date"))
        .explode("date")
        .select(
            "event_id",
            "event_type",
            "region",
            "date",
            pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"),
            (pl.col("date") - pl.col("start_date")).dt.total_days().cast(pl.Int64).alias("offset"),
        )
    )


def event_baseline_days(instances: pl.LazyFrame, *, baseline_days: int) -> pl.LazyFrame:
    """The baseline days of each instance: the ``baseline_days`` days before its window, minus any day
    inside any event window of the same region (so one event does not inflate another's baseline).

    Returns columns event_id, region, date, dow.
    """
    busy = event_window_days(instances).select("region", "date").unique()
    return (
        instances.with_columns(
            pl.date_ranges(
                pl.col("window_start") - timedelta(days=baseline_days),
                pl.col("window_start") - timedelta(days=1),
                "1d",
            ).alias("date")
        )
        .explode("date")
        .join(busy, on=["region", "date"], how="anti")
        .select("event_id", "region", "date", pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"))
    )
