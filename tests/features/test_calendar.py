"""Calendar fields and event offsets by region."""

from __future__ import annotations

from datetime import date

import polars as pl
from polars.testing import assert_frame_equal

from features.calendar import add_calendar, add_event_features, event_types


def test_add_calendar_known_date() -> None:
    got = add_calendar(pl.LazyFrame({"date": [date(2024, 3, 3)]})).collect()
    expected = pl.DataFrame(
        {
            "date": [date(2024, 3, 3)],
            "dow": 7,
            "day_of_month": 3,
            "week_of_year": 9,
            "month": 3,
            "day_of_year": 63,
        },
        schema_overrides={
            c: pl.Int16 for c in ("dow", "day_of_month", "week_of_year", "month", "day_of_year")
        },
    )
    assert_frame_equal(got, expected)


EVENTS = pl.DataFrame(
    {
        "event_id": ["e1", "e2", "e3"],
        "event_type": ["storm", "holiday", "storm"],
        "name": None,
        "region": ["COAST", "ALL", "INLAND"],
        "start_date": [date(2024, 6, 10), date(2024, 6, 11), date(2024, 7, 1)],
        "end_date": [date(2024, 6, 12), date(2024, 6, 11), date(2024, 7, 3)],
    },
    schema_overrides={"name": pl.String},
)


def test_event_features_by_region_all_and_future() -> None:
    dates = [date(2024, 6, d) for d in (8, 9, 10, 11, 13)] + [date(2024, 6, 30)]
    lf = pl.LazyFrame(
        {
            "region": ["COAST"] * 6 + ["INLAND"] * 6,
            "date": dates * 2,
            "is_future": [False] * 5 + [True] + [False] * 5 + [True],
        }
    )
    types = event_types(EVENTS)
    assert types == ["holiday", "storm"]
    got = (
        add_event_features(
            lf, EVENTS, types=types, lead_days=1, as_of=date(2024, 6, 29), regions=["COAST", "INLAND"]
        )
        .sort("region", "date")
        .collect()
    )
    expected = lf.collect().with_columns(
        pl.Series("event_holiday", [None, None, -1.0, 0.0, None, None] * 2),
        # the storm hits only COAST, from 1 lead day before its start; e3 starts after as_of: unknown
        pl.Series("event_storm", [None, -1.0, 0.0, 1.0, None, None] + [None] * 6, dtype=pl.Float64),
    )
    assert_frame_equal(got, expected)
