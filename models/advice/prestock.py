"""Event pre-stock plans: how many extra units each store should hold before an event.

For every significant event_uplift pattern (event type x region x SKU) and every store of the region
that carries or is advised to carry the SKU:

    baseline_units = forecast daily mean x window days
    extra_units    = baseline_units x (min(lift, prestock_max_lift) - 1)

The window is ``lead_days`` before the event plus its length. An upcoming event in ``tables.events``
(start_date > as_of) gets plan rows for its own dates (forecast days inside its window where the
forecast reaches them); otherwise the plan is for a hypothetical next event of the typical length of
past events of that type in that region.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from data_contracts.outputs import PRESTOCK_COLUMNS, conform
from data_contracts.schemas import CHAIN_WIDE
from data_contracts.tables import LakeTables
from models.advice.settings import AssortmentSettings


def significant_event_patterns(patterns: pl.DataFrame, *, fdr_alpha: float = 0.05) -> pl.DataFrame:
    """Return (event_type, region, sku, lift, support, peak_offset_days): the event_uplift patterns
    that raise demand (lift > 1) and pass the false-discovery filter (q_value <= fdr_alpha; a null
    q_value counts as passed, as patterns.parquet only holds patterns that passed), plus the miner's
    window_start_offset_days where it wrote one."""
    extra = [c for c in ("window_start_offset_days",) if c in patterns.columns]
    return patterns.filter(
        (pl.col("kind") == "event_uplift")
        & pl.col("event_type").is_not_null()
        & (pl.col("lift") > 1.0)
        & (pl.col("q_value").is_null() | (pl.col("q_value") <= fdr_alpha))
    ).select("event_type", "region", "sku", "lift", "support", "peak_offset_days", *extra)


def expand_regions(frame: pl.DataFrame, regions: pl.Series) -> pl.DataFrame:
    """Return ``frame`` with each row of region ALL repeated once for every region in ``regions``."""
    chain_wide = pl.col("region") == CHAIN_WIDE
    every = pl.DataFrame({"_region": regions.unique().sort()})
    spread = frame.filter(chain_wide).join(every, how="cross").with_columns(region=pl.col("_region"))
    return pl.concat([frame.filter(~chain_wide), spread.drop("_region")]).unique(maintain_order=True)


def typical_window_days(
    events: pl.DataFrame, keys: pl.DataFrame, regions: pl.Series, *, as_of: date, lead_days: int
) -> pl.DataFrame:
    """Return ``keys`` (event_type, region) with window_days: lead_days + the mean length in days of
    past events (start_date <= as_of) of that type in that region, else of that type chain-wide, else
    of one day (an event type the events table no longer lists)."""
    past = events.filter(pl.col("start_date") <= as_of)
    length = ((pl.col("end_date") - pl.col("start_date")).dt.total_days() + 1).mean().cast(pl.Float64)
    by_region = expand_regions(past, regions).group_by("event_type", "region").agg(region_days=length)
    by_type = past.group_by("event_type").agg(type_days=length)
    return (
        keys.join(by_region, on=["event_type", "region"], how="left")
        .join(by_type, on="event_type", how="left")
        .with_columns(window_days=pl.coalesce("region_days", "type_days", pl.lit(1.0)) + lead_days)
        .drop("region_days", "type_days")
    )


def _store_pairs(tables: LakeTables, assortment: pl.DataFrame, forecast: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, region, sku, daily_units) for pairs the store will carry (add or keep)."""
    daily = forecast.group_by("store_id", "sku").agg(
        daily_units=pl.col("units").mean().clip(lower_bound=0.0).cast(pl.Float64)
    )
    return (
        assortment.filter(pl.col("action").is_in(["add", "keep"]))
        .select("store_id", "sku")
        .unique()
        .join(tables.stores.select("store_id", "region"), on="store_id")
        .join(daily, on=["store_id", "sku"], how="left")
        .with_columns(pl.col("daily_units").fill_null(0.0))
    )


def _upcoming(tables: LakeTables, base: pl.DataFrame, forecast: pl.DataFrame, *, as_of: date) -> pl.DataFrame:
    """Return ``base`` rows (with their pattern's ``lead`` days) joined to each upcoming event of their
    event type and region, with event_id, window_start, window_end, window_days and baseline_units:
    the forecast's mean over the window's days where the forecast reaches them, else its overall
    daily mean, times the window's length."""
    regions = tables.stores["region"]
    events = expand_regions(tables.events.filter(pl.col("start_date") > as_of), regions).select(
        "event_id", "event_type", "region", "start_date", "end_date"
    )
    rows = (
        events.join(base, on=["event_type", "region"])
        .with_columns(
            window_start=pl.col("start_date") - pl.duration(days=pl.col("lead")),
            window_end=pl.col("end_date"),
        )
        .with_columns(window_days=((pl.col("window_end") - pl.col("window_start")).dt.total_days() + 1))
        .drop("start_date", "end_date")
    )
    in_window = (
        rows.select("event_id", "region", "store_id", "sku", "window_start", "window_end")
        .join(forecast.select("store_id", "sku", "date", "units"), on=["store_id", "sku"])
        .filter(pl.col("date").is_between(pl.col("window_start"), pl.col("window_end")))
        .group_by("event_id", "region", "store_id", "sku")
        .agg(window_daily=pl.col("units").clip(lower_bound=0.0).mean())
    )
    return (
        rows.join(in_window, on=["event_id", "region", "store_id", "sku"], how="left")
        .with_columns(
            window_days=pl.col("window_days").cast(pl.Float64),
            baseline_units=pl.coalesce("window_daily", "daily_units") * pl.col("window_days"),
        )
        .drop("window_daily", "daily_units")
    )


def _reason() -> pl.Expr:
    """One plain sentence: the evidence behind the lift and what to stock by when."""
    words = pl.col("event_type").str.replace_all("_", " ")
    peak = (
        pl.when(pl.col("peak_offset_days") < 0)
        .then(
            pl.concat_str(
                pl.lit(", peaking "),
                (-pl.col("peak_offset_days")).cast(pl.String),
                pl.lit(" days before the start"),
            )
        )
        .otherwise(pl.lit(""))
    )
    evidence = pl.concat_str(
        pl.lit("Around "),
        words,
        pl.lit(" events in "),
        pl.col("region"),
        pl.lit(" this item sold "),
        pl.col("lift").round(1).cast(pl.String),
        pl.lit("x normal ("),
        pl.col("support").cast(pl.String).fill_null("several"),
        pl.lit(" events"),
        peak,
        pl.lit("); stock "),
        pl.col("extra_units").round(0).cast(pl.Int64).cast(pl.String),
        pl.lit(" extra units by "),
    )
    when = (
        pl.when(pl.col("event_id").is_not_null())
        .then(
            pl.concat_str(
                pl.col("_stock_by").cast(pl.String),
                pl.lit(" for event "),
                pl.col("event_id"),
                pl.lit(" ("),
                pl.col("window_days").cast(pl.Int64).cast(pl.String),
                pl.lit("-day window)."),
            )
        )
        .when(pl.col("lead") > 0)
        .then(pl.concat_str(pl.col("lead").cast(pl.String), pl.lit(" days before the next one starts.")))
        .otherwise(pl.lit("the day the next one is announced."))
    )
    return pl.concat_str(evidence, when)


def _hypothetical(
    base: pl.DataFrame,
    upcoming: pl.DataFrame,
    events: pl.DataFrame,
    regions: pl.Series,
    *,
    as_of: date,
    lead_days: int,
) -> pl.DataFrame:
    """Return the ``base`` rows of event type x region pairs with no upcoming event, planned for a
    next event of the typical window length (event_id and window dates null)."""
    planned = upcoming.select("event_type", "region").unique()
    rows = base.join(planned, on=["event_type", "region"], how="anti")
    keys = rows.select("event_type", "region").unique()
    # event lengths only; each pattern adds its own lead (0 when its lift was measured from the start)
    windows = typical_window_days(events, keys, regions, as_of=as_of, lead_days=0)
    return (
        rows.join(windows, on=["event_type", "region"], how="left")
        .with_columns(
            window_days=pl.col("window_days") + pl.col("lead"),
        )
        .with_columns(
            baseline_units=pl.col("daily_units") * pl.col("window_days"),
            event_id=pl.lit(None, dtype=pl.String),
            window_start=pl.lit(None, dtype=pl.Date),
            window_end=pl.lit(None, dtype=pl.Date),
        )
    )


def plan_prestock(
    tables: LakeTables,
    patterns: pl.DataFrame,
    forecast: pl.DataFrame,
    assortment: pl.DataFrame,
    *,
    as_of: date,
    settings: AssortmentSettings,
    lead_days: int = 7,
    fdr_alpha: float = 0.05,
) -> pl.DataFrame:
    """Return the pre-stock plan (outputs.PRESTOCK_COLUMNS, then event_id, window_start, window_end,
    window_days): one row per event type x region x store x SKU with a significant event_uplift
    pattern in the store's region and the SKU carried or advised there, per upcoming event where one
    is listed (event_id set) and per hypothetical next event otherwise. Sorted by event_type, region,
    extra_units descending. ``lead_days`` should be the miner's event_lead_days."""
    regions = tables.stores["region"]
    sig = (
        expand_regions(significant_event_patterns(patterns, fdr_alpha=fdr_alpha), regions)
        .sort("lift", descending=True)
        .unique(["event_type", "region", "sku"], keep="first")
    )
    # The miner says from which day before the start each lift was measured; the window to stock for
    # is the one the lift describes (stocking a during-event lift over lead days would overstock).
    offset = (
        pl.col("window_start_offset_days")
        if "window_start_offset_days" in sig.columns
        else pl.lit(None, pl.Int64)
    )
    sig = sig.with_columns(lead=(-offset).fill_null(lead_days).cast(pl.Int64))
    pairs = _store_pairs(tables, assortment, forecast)
    base = sig.join(pairs, on=["region", "sku"])
    keys = ["event_type", "region", "store_id", "sku"]
    upcoming = _upcoming(tables, base, forecast, as_of=as_of)
    hypothetical = _hypothetical(base, upcoming, tables.events, regions, as_of=as_of, lead_days=lead_days)
    cols = [
        *keys,
        "lift",
        "support",
        "peak_offset_days",
        "baseline_units",
        "event_id",
        "window_start",
        "window_end",
        "window_days",
        "lead",
    ]
    capped_lift = pl.col("lift").clip(upper_bound=settings.prestock_max_lift)
    plan = (
        pl.concat([upcoming.select(cols), hypothetical.select(cols)], how="vertical_relaxed")
        .filter(pl.col("baseline_units") > 0)
        .with_columns(extra_units=pl.col("baseline_units") * (capped_lift - 1))
        # a window that opens before tomorrow can only be stocked from tomorrow
        .with_columns(_stock_by=pl.max_horizontal("window_start", pl.lit(as_of + timedelta(days=1))))
        .with_columns(reason=_reason())
        .drop("_stock_by", "lead")
        .sort(
            ["event_type", "region", "extra_units", "store_id", "sku"],
            descending=[False, False, True, False, False],
        )
    )
    return conform(plan.drop("support", "peak_offset_days"), PRESTOCK_COLUMNS)
