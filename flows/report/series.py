"""The small frames the report's charts draw, computed from the lake's sales and the run's outputs.

Frames in, frames out (the lake's sales come lazily and are filtered before anything is collected):
demand around each event type, each region's category index, and sales history next to the forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from data_contracts.schemas import CHAIN_WIDE

T_95 = 1.96  # normal quantile; intervals over fewer than 2 events are left out


def _by_region(events: pl.DataFrame, regions: Sequence[str]) -> pl.DataFrame:
    """Return ``events`` with chain-wide events repeated for every region."""
    return events.with_columns(
        pl.when(pl.col("region") == CHAIN_WIDE)
        .then(pl.lit(list(regions), dtype=pl.List(pl.String)))
        .otherwise(pl.concat_list(pl.col("region")))
        .alias("region")
    ).explode("region")


def _busy_days(events: pl.DataFrame, regions: Sequence[str]) -> pl.DataFrame:
    """Return region, date for every day some event was on in a region (kept out of the usual level)."""
    return (
        _by_region(events, regions)
        .select(
            "region",
            pl.date_ranges(
                "start_date",
                pl.max_horizontal("start_date", pl.col("end_date").fill_null(pl.col("start_date"))),
            ).alias("date"),
        )
        .explode("date")
        .unique()
    )


def _event_days(
    events: pl.DataFrame, regions: Sequence[str], *, as_of: date, before: int, after: int, baseline: int
) -> pl.DataFrame:
    """Return one row per event, region and day from ``baseline`` days before its start to ``after``
    days after (cut at ``as_of``), with ``offset`` = days from the start; chain-wide events are
    expanded to every region."""
    past = events.filter(pl.col("start_date") <= as_of - timedelta(days=min(after, 7)))
    expanded = _by_region(past, regions)
    last = pl.min_horizontal(pl.col("start_date") + timedelta(days=after), pl.lit(as_of))
    return (
        expanded.select(
            "event_id",
            "event_type",
            "region",
            "start_date",
            pl.date_ranges(pl.col("start_date") - timedelta(days=baseline), last).alias("date"),
        )
        .explode("date")
        .with_columns((pl.col("date") - pl.col("start_date")).dt.total_days().alias("offset"))
    )


EVENT_DAY = ("event_id", "event_type", "region", "offset", "date")


def _per_event_day(
    sales: pl.LazyFrame, stores: pl.DataFrame, days: pl.DataFrame, flagged: pl.DataFrame
) -> pl.DataFrame:
    """Return event_id, event_type, region, offset, date, units, skus: units sold on each event day in
    the event's region, of the type's flagged products (``flagged``: event_type, region, sku) where it
    has some, else of every product (skus then null). Only the days and products needed are read."""
    store_region = stores.lazy().select("store_id", "region")
    typed = days.filter(pl.col("event_type").is_in(flagged["event_type"].unique().implode()))
    rest = days.filter(~pl.col("event_type").is_in(flagged["event_type"].unique().implode()))
    parts = []
    if typed.height:
        sold = (
            sales.select("date", "store_id", "sku", "units")
            .filter(
                pl.col("sku").is_in(flagged["sku"].unique().implode())
                & pl.col("date").is_in(typed["date"].unique().implode())
            )
            .join(store_region, on="store_id")
            .group_by("region", "sku", "date")
            .agg(pl.col("units").sum())
            .collect()
        )
        parts.append(
            typed.join(flagged, on=["event_type", "region"])
            .join(sold, on=["region", "sku", "date"], how="left")
            .group_by(EVENT_DAY)
            .agg(pl.col("units").fill_null(0).sum(), pl.col("sku").n_unique().cast(pl.UInt32).alias("skus"))
        )
    if rest.height:
        sold = (
            sales.select("date", "store_id", "units")
            .filter(pl.col("date").is_in(rest["date"].unique().implode()))
            .join(store_region, on="store_id")
            .group_by("region", "date")
            .agg(pl.col("units").sum())
            .collect()
        )
        parts.append(
            rest.join(sold, on=["region", "date"], how="left")
            .group_by(EVENT_DAY)
            .agg(pl.col("units").fill_null(0).sum(), pl.lit(None, dtype=pl.UInt32).alias("skus"))
        )
    return pl.concat(parts, how="vertical_relaxed")


def event_curves(
    sales: pl.LazyFrame,
    stores: pl.DataFrame,
    events: pl.DataFrame,
    patterns: pl.DataFrame,
    *,
    as_of: date,
    before: int = 14,
    after: int = 21,
    baseline: tuple[int, int] = (56, 15),
) -> pl.DataFrame:
    """Return event_type, offset, lift, ci_low, ci_high, events, skus, flagged: demand on each day
    around an event's start relative to the usual demand (the mean day ``baseline[0]`` to
    ``baseline[1]`` days before it, leaving out days of any event in the region), averaged over the
    past events of each type with a 95% interval across events. Demand is that of the products with an
    event uplift of that type in the event's region (all products when the type has none: ``flagged``
    is then false and ``skus`` null), summed over the region's stores."""
    empty = pl.DataFrame(
        schema={
            "event_type": pl.String,
            "offset": pl.Int64,
            "lift": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "events": pl.UInt32,
            "skus": pl.UInt32,
            "flagged": pl.Boolean,
        }
    )
    regions = stores["region"].drop_nulls().unique().sort().to_list()
    days = _event_days(events, regions, as_of=as_of, before=before, after=after, baseline=baseline[0])
    days = days.filter(pl.col("offset") <= after)
    days = days.filter((pl.col("offset") >= -before) | (pl.col("offset") <= -baseline[1]))
    if days.height == 0:
        return empty
    flagged = patterns.filter(pl.col("kind") == "event_uplift").select("event_type", "region", "sku").unique()
    with_flags = flagged["event_type"].unique().to_list()
    per_day = _per_event_day(sales, stores, days, flagged)
    usual = (
        per_day.filter(pl.col("offset") <= -baseline[1])
        .join(_busy_days(events, regions), on=["region", "date"], how="anti")  # other events' days
        .group_by("event_id", "region")
        .agg(pl.col("units").mean().alias("usual"))
        .filter(pl.col("usual") > 0)
    )
    ratios = (
        per_day.filter(pl.col("offset") >= -before)
        .join(usual, on=["event_id", "region"])
        .with_columns((pl.col("units") / pl.col("usual")).alias("ratio"))
    )
    if ratios.height == 0:
        return empty
    n = pl.col("ratio").count()
    half = T_95 * pl.col("ratio").std() / n.sqrt()
    return (
        ratios.group_by("event_type", "offset")
        .agg(
            pl.col("ratio").mean().alias("lift"),
            pl.when(n >= 2).then(half).alias("half"),
            pl.col("event_id").n_unique().cast(pl.UInt32).alias("events"),
            pl.col("skus").max().cast(pl.UInt32).alias("skus"),
            pl.col("event_type").is_in(with_flags).first().alias("flagged"),
        )
        .with_columns(
            (pl.col("lift") - pl.col("half")).clip(lower_bound=0).alias("ci_low"),
            (pl.col("lift") + pl.col("half")).alias("ci_high"),
        )
        .select(empty.columns)
        .cast(empty.schema)
        .sort("event_type", "offset")
    )


def region_index(
    sales: pl.LazyFrame, stores: pl.DataFrame, products: pl.DataFrame, *, as_of: date, days: int = 91
) -> pl.DataFrame:
    """Return region, category, units, index: each category's share of a region's units over the
    ``days`` before ``as_of``, relative to its share chain-wide (100 = as the chain; 150 = the region
    buys half as much again of it)."""
    recent = (
        sales.select("date", "store_id", "sku", "units")
        .filter(pl.col("date").is_between(as_of - timedelta(days=days - 1), as_of))
        .join(stores.lazy().select("store_id", "region"), on="store_id")
        .join(products.lazy().select("sku", "category"), on="sku")
        .group_by("region", "category")
        .agg(pl.col("units").sum())
        .collect()
    )
    chain = recent.group_by("category").agg(pl.col("units").sum().alias("chain"))
    total = recent["units"].sum()
    return (
        recent.join(chain, on="category")
        .with_columns(
            (
                100 * (pl.col("units") / pl.col("units").sum().over("region")) / (pl.col("chain") / total)
            ).alias("index")
        )
        .filter(pl.col("index").is_finite())
        .select("region", "category", "units", "index")
        .sort("region", "category")
    )


def history(sales: pl.LazyFrame, pairs: pl.DataFrame | None, *, as_of: date, days: int) -> pl.DataFrame:
    """Return date, store_id, sku, units: daily units sold over the ``days`` up to ``as_of`` for the
    store x SKU ``pairs`` (every pair when None), days without a sale as 0."""
    lf = sales.select("date", "store_id", "sku", "units").filter(
        pl.col("date").is_between(as_of - timedelta(days=days - 1), as_of)
    )
    if pairs is not None:
        lf = lf.join(pairs.lazy().select("store_id", "sku"), on=["store_id", "sku"], how="semi")
    sold = lf.group_by("store_id", "sku", "date").agg(pl.col("units").sum()).collect()
    keys = pairs if pairs is not None else sold.select("store_id", "sku").unique()
    grid = keys.select("store_id", "sku").join(
        pl.DataFrame({"date": pl.date_range(as_of - timedelta(days=days - 1), as_of, eager=True)}),
        how="cross",
    )
    return (
        grid.join(sold, on=["store_id", "sku", "date"], how="left")
        .with_columns(pl.col("units").fill_null(0.0))
        .select("date", "store_id", "sku", "units")
        .sort("store_id", "sku", "date")
    )


def chain_history(sales: pl.LazyFrame, forecast: pl.LazyFrame, *, as_of: date, days: int) -> pl.DataFrame:
    """Return date, units: units sold per day over the ``days`` up to ``as_of`` by the store x SKU
    pairs the forecast covers (so history and forecast count the same shelves)."""
    pairs = forecast.select("store_id", "sku").unique()
    return (
        sales.select("date", "store_id", "sku", "units")
        .filter(pl.col("date").is_between(as_of - timedelta(days=days - 1), as_of))
        .join(pairs, on=["store_id", "sku"], how="semi")
        .group_by("date")
        .agg(pl.col("units").sum())
        .sort("date")
        .collect()
    )


def example_pairs(
    assortment: pl.DataFrame, forecast: pl.LazyFrame, *, store: str | None, sku: str | None, top: int
) -> pl.DataFrame:
    """Return store_id, sku, region, name of the history-and-forecast examples: the chosen pair, else
    the best-selling kept product of the ``top`` largest regions' stores (one per region)."""
    cols = ["store_id", "sku", "region", "name"]
    if store and sku:
        chosen = assortment.filter((pl.col("store_id") == store) & (pl.col("sku") == sku)).select(cols)
        return (
            chosen
            if chosen.height
            else pl.DataFrame({"store_id": [store], "sku": [sku]}).with_columns(
                pl.lit(None, dtype=pl.String).alias("region"), pl.lit(None, dtype=pl.String).alias("name")
            )
        )
    volume = forecast.group_by("store_id", "sku").agg(pl.col("units").sum().alias("volume")).collect()
    kept = (
        assortment.filter(pl.col("action") == "keep")
        .select(cols)
        .join(volume, on=["store_id", "sku"])
        .sort("volume", "store_id", "sku", descending=[True, False, False])
    )
    return kept.unique("region", keep="first", maintain_order=True).head(top).select(cols)
