"""Tests for models/prestock.py on a tiny hand-made world."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.outputs import PRESTOCK_COLUMNS
from models.advice.prestock import expand_regions, plan_prestock
from models.advice.settings import AssortmentSettings
from tests.models.advice.test_assortment import AS_OF, Event, make_forecast, make_patterns, make_tables

PAST: list[Event] = [
    ("e1", "hurricane", "R1", date(2024, 1, 10), date(2024, 1, 12)),  # 3 days
    ("e2", "hurricane", "R1", date(2024, 3, 1), date(2024, 3, 5)),  # 5 days -> mean 4, window 4 + 7 = 11
]
PATTERNS = make_patterns(
    [
        {
            "kind": "event_uplift",
            "region": "R1",
            "sku": "A",
            "event_type": "hurricane",
            "lift": 3.0,
            "support": 2,
            "peak_offset_days": -2,
        },
        {
            "kind": "event_uplift",
            "region": "R1",
            "sku": "B",
            "event_type": "hurricane",
            "lift": 20.0,
            "support": 2,
        },
        # not significant: never planned
        {
            "kind": "event_uplift",
            "region": "R2",
            "sku": "A",
            "event_type": "hurricane",
            "lift": 2.0,
            "q_value": 0.2,
        },
        {"kind": "local_affinity", "region": "R1", "sku": "C", "lift": 4.0},
    ]
)
ADVICE = pl.DataFrame(
    {
        "store_id": ["S1", "S1", "S2", "S2", "S3"],
        "sku": ["A", "B", "A", "B", "A"],
        "action": ["keep", "add", "keep", "drop", "keep"],
    }
)
DAILY = {("S1", "A"): 2.0, ("S1", "B"): 1.0, ("S2", "A"): 4.0, ("S2", "B"): 5.0, ("S3", "A"): 3.0}
SETTINGS = AssortmentSettings(prestock_max_lift=15.0)


def _plan(events: list[Event], forecast: pl.DataFrame) -> pl.DataFrame:
    tables = make_tables({"S1": ["A"], "S2": ["A", "B"], "S3": ["A"]}, events=events)
    return plan_prestock(tables, PATTERNS, forecast, ADVICE, as_of=AS_OF, settings=SETTINGS, lead_days=7)


def test_hypothetical_plan_extra_is_baseline_times_lift_minus_one() -> None:
    plan = _plan(PAST, make_forecast(DAILY))
    expected = pl.DataFrame(
        {
            "event_type": ["hurricane"] * 3,
            "region": ["R1"] * 3,
            "store_id": ["S1", "S2", "S1"],
            "sku": ["B", "A", "A"],
            "baseline_units": [11.0, 44.0, 22.0],
            # B's lift 20 is capped at prestock_max_lift 15
            "extra_units": [11.0 * 14, 44.0 * 2, 22.0 * 2],
            "lift": [20.0, 3.0, 3.0],
        }
    )
    assert_frame_equal(plan.select(expected.columns), expected)
    assert plan.select(PRESTOCK_COLUMNS.names()).schema == PRESTOCK_COLUMNS
    assert plan["event_id"].is_null().all()
    reason = plan.filter(pl.col("store_id") == "S1", pl.col("sku") == "A")["reason"][0]
    assert reason.startswith("Around hurricane events in R1 this item sold 3.0x normal (2 events")
    assert "stock 44 extra units by 7 days before" in reason and "peaking 2 days before" in reason


def test_upcoming_event_uses_its_own_window() -> None:
    """Event e3 runs 3..4 July, window 26 June..4 July = 9 days; the forecast covers 1..7 July and is
    higher after the event, so the window's own days (mean 2.0 for S1/A) make the baseline."""
    upcoming: Event = ("e3", "hurricane", "R1", date(2024, 7, 3), date(2024, 7, 4))
    forecast = make_forecast(DAILY).with_columns(
        units=pl.when(pl.col("date") > date(2024, 7, 4)).then(pl.col("units") * 10).otherwise(pl.col("units"))
    )
    plan = _plan([*PAST, upcoming], forecast)
    assert plan["event_id"].to_list() == ["e3"] * 3
    row = plan.filter(pl.col("store_id") == "S1", pl.col("sku") == "A").row(0, named=True)
    assert row["baseline_units"] == pytest.approx(18.0)
    assert row["extra_units"] == pytest.approx(36.0)
    assert row["window_start"] == date(2024, 7, 3) - timedelta(days=7)
    assert "extra units by 2024-07-01 for event e3 (9-day window)" in row["reason"]


@pytest.mark.parametrize("q_value, planned", [(0.2, False), (0.01, True)])
def test_only_significant_patterns_of_the_stores_region(q_value: float, planned: bool) -> None:
    """S3 (region R2) gets a row only when R2's pattern passes the FDR level; R1's never reach it."""
    patterns = PATTERNS.with_columns(
        q_value=pl.when(pl.col("region") == "R2").then(q_value).otherwise(pl.col("q_value"))
    )
    tables = make_tables({"S3": ["A"]}, events=PAST)
    plan = plan_prestock(tables, patterns, make_forecast(DAILY), ADVICE, as_of=AS_OF, settings=SETTINGS)
    s3 = plan.filter(pl.col("store_id") == "S3")
    assert s3.height == int(planned)
    assert (s3["region"] == "R2").all()
    # R2 has no past hurricane: the chain-wide mean length (4 days) + 7 lead days is its window
    assert s3["baseline_units"].to_list() == ([3.0 * 11] if planned else [])


def test_expand_regions_spreads_chain_wide_rows() -> None:
    frame = pl.DataFrame({"region": ["ALL", "R1"], "x": [1, 2]})
    out = expand_regions(frame, pl.Series(["R2", "R1", "R1"])).sort("region", "x")
    assert_frame_equal(out, pl.DataFrame({"region": ["R1", "R1", "R2"], "x": [1, 2, 1]}))


def test_a_lift_measured_from_the_start_is_stocked_over_the_event_only() -> None:
    """A pattern whose lift covers [start, end] (window_start_offset_days 0) plans the event's mean
    length (4 days), not length + lead: stocking a during-event lift over lead days would overstock."""
    patterns = PATTERNS.with_columns(window_start_offset_days=pl.lit(0, dtype=pl.Int64))
    tables = make_tables({"S1": ["A"], "S2": ["A", "B"], "S3": ["A"]}, events=PAST)
    plan = plan_prestock(tables, patterns, make_forecast(DAILY), ADVICE, as_of=AS_OF, settings=SETTINGS)
    row = plan.filter(pl.col("store_id") == "S1", pl.col("sku") == "A").row(0, named=True)
    assert row["baseline_units"] == pytest.approx(2.0 * 4)
    assert row["reason"].endswith("the day the next one is announced.")
