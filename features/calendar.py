"""Calendar and event features: what the date and the event calendar say about a panel row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from data_contracts.schemas import CHAIN_WIDE
from features.naming import feature_name

CALENDAR_KINDS = ("dow", "day_of_month", "week_of_year", "month", "day_of_year")


def calendar_feature_names() -> list[str]:
    """Return the calendar feature columns add_calendar makes, in order."""
    return [feature_name(kind) for kind in CALENDAR_KINDS]


def add_calendar(lf: pl.LazyFrame, *, date_col: str = "date") -> pl.LazyFrame:
    """Return ``lf`` with day of week (1 = Monday), day of month, ISO week, month and day of year."""
    d = pl.col(date_col).dt
    exprs = (d.weekday(), d.day(), d.week(), d.month(), d.ordinal_day())
    return lf.with_columns(
        e.cast(pl.Int16).alias(name) for e, name in zip(exprs, calendar_feature_names(), strict=True)
    )


def event_types(events: pl.DataFrame) -> list[str]:
    """Return the distinct event types of an events table, sorted (the event features' keys)."""
    if events.height == 0:
        return []
    return sorted(events.get_column("event_type").drop_nulls().unique().to_list())


def event_feature_names(types: Sequence[str]) -> list[str]:
    """Return the event feature column of each event type, in the order given."""
    return [feature_name("event", key=t) for t in types]


def event_days(
    events: pl.DataFrame,
    *,
    regions: Sequence[str],
    types: Sequence[str],
    lead_days: int,
    as_of: date,
    planned: Sequence[str] = (),
) -> pl.LazyFrame:
    """Return region, date and one column per event type: the day's offset from the event's start
    (negative in the ``lead_days`` before it), null when no event of that type is on.

    ``ALL`` rows are spread over every region. An event counts when it started by ``as_of`` or is of a
    ``planned`` type (holidays, SNAP days: on the calendar in advance). An unplanned event (a storm)
    that starts after the forecast origin was not known then (no peeking at the future).
    """
    names = event_feature_names(types)
    schema = pl.Schema({"region": pl.String, "date": pl.Date, **dict.fromkeys(names, pl.Float64)})
    known = events.filter(
        (pl.col("start_date") <= as_of) | pl.col("event_type").is_in(list(planned)),
        pl.col("event_type").is_in(list(types)),
    )
    if known.height == 0 or not regions:
        return pl.LazyFrame(schema=schema)
    all_regions = pl.LazyFrame({"region_all": list(regions)})
    spread = (
        known.lazy()
        .join(all_regions, how="cross")
        .filter((pl.col("region") == pl.col("region_all")) | (pl.col("region") == CHAIN_WIDE))
    )
    days = (
        spread.select(
            pl.col("region_all").alias("region"),
            "event_type",
            "start_date",
            pl.date_ranges(pl.col("start_date") - timedelta(days=lead_days), "end_date").alias("date"),
        )
        .explode("date")
        .with_columns(
            (pl.col("date") - pl.col("start_date")).dt.total_days().cast(pl.Float64).alias("offset")
        )
    )
    # Overlapping events of one type: the most recent start explains the day.
    wide = days.group_by("region", "date").agg(
        pl.col("offset").filter(pl.col("event_type") == t).min().alias(n)
        for t, n in zip(types, names, strict=True)
    )
    return wide.select(list(schema)).cast(schema)


def add_event_features(
    lf: pl.LazyFrame,
    events: pl.DataFrame,
    *,
    types: Sequence[str],
    lead_days: int,
    as_of: date,
    regions: Sequence[str],
    planned: Sequence[str] = (),
) -> pl.LazyFrame:
    """Return ``lf`` with one event-offset column per event type for the row's region and date.

    Forecast rows get the events known at ``as_of`` (see event_days): the forecast is demand with the
    calendar's holidays in it. The no-event counterfactual sets these columns to null (models/demand).
    """
    if not types:
        return lf
    days = event_days(events, regions=regions, types=types, lead_days=lead_days, as_of=as_of, planned=planned)
    return lf.join(days, on=["region", "date"], how="left")
