"""Tests for models/advice/prestock.py and advise.plan_event: order-ready quantities on hand-made data."""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl
import pytest

from data_contracts.outputs import PRESTOCK_COLUMNS
from models.advice.advise import UnknownEventError, check_event, plan_event
from models.advice.prestock import hypothetical_event, latest_on_hand, plan_events, upcoming_events
from models.advice.settings import AssortmentSettings
from tests.worlds.shelves import AS_OF, make_forecast, make_patterns, shelf_tables

PATTERNS = make_patterns(
    [
        {
            "kind": "event_uplift",
            "region": "R1",
            "sku": "A",
            "event_type": "hurricane",
            "lift": 3.0,
            "ci_low": 2.0,
            "ci_high": 4.5,
            "support": 4,
            "peak_offset_days": -1,
            "window_start_offset_days": -2,
        },
        {
            "kind": "event_uplift",
            "region": "R1",
            "sku": "B",
            "event_type": "hurricane",
            "lift": 20.0,
            "ci_low": 20.0,
            "ci_high": 20.0,
            "support": 3,
            "peak_offset_days": 0,
            "window_start_offset_days": 0,
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
        {
            "kind": "event_uplift",
            "region": "ALL",
            "sku": "E",
            "event_type": "holiday",
            "lift": 2.0,
            "ci_low": 2.0,
            "ci_high": 2.0,
            "support": 9,
            "window_start_offset_days": 0,
        },
    ]
).with_columns(pl.col("window_start_offset_days").cast(pl.Int64))
PAIRS = pl.DataFrame(
    {"store_id": ["S1", "S1", "S2", "S3", "S3"], "region": ["R1", "R1", "R1", "R2", "R2"],
     "sku": ["A", "B", "A", "A", "E"]}
)  # fmt: skip
DAILY = {("S1", "A"): 2.0, ("S1", "B"): 1.0, ("S2", "A"): 4.0, ("S3", "A"): 3.0, ("S3", "E"): 1.0}
START, END = AS_OF + timedelta(days=10), AS_OF + timedelta(days=12)
SETTINGS = AssortmentSettings(service_level=0.9, lead_time_days=2, prestock_max_lift=15.0)


def _plan(event_type: str = "hurricane", region: str = "R1", **kw) -> pl.DataFrame:
    tables = shelf_tables({}, case_pack=kw.pop("case_pack", None))
    event = hypothetical_event(event_type, region, START, END, kw.pop("name", None))
    forecast = make_forecast(DAILY)
    return plan_events(
        event, PATTERNS, forecast, PAIRS, tables.products, as_of=AS_OF, settings=SETTINGS, **kw
    )


def test_a_plan_is_order_ready() -> None:
    plan = _plan()
    assert plan.columns[: len(PRESTOCK_COLUMNS)] == PRESTOCK_COLUMNS.names()
    rows = {(r["store_id"], r["sku"]): r for r in plan.iter_rows(named=True)}
    assert set(rows) == {("S1", "A"), ("S1", "B"), ("S2", "A")}  # R2's pattern is not significant
    a = rows[("S2", "A")]
    # A's lift was measured from 2 days before the start: a 5-day window of 4 a day
    assert (a["window_start"], a["window_end"]) == (START - timedelta(days=2), END)
    assert a["baseline_units"] == pytest.approx(20.0) and a["extra_units"] == pytest.approx(40.0)
    # buffer: the lift's 90% quantile from its 95% CI (log-normal), over the same baseline
    sigma = (math.log(4.5) - math.log(2.0)) / (2 * 1.959964)
    buffer = 20.0 * (3.0 * math.exp(1.281552 * sigma) - 3.0)
    assert a["order_units"] == math.ceil(40.0 + buffer)
    # stock by: the earlier of window start and peak, less the 2-day lead time
    assert a["stock_by"] == START - timedelta(days=4)
    b = rows[("S1", "B")]
    assert b["extra_units"] == pytest.approx(3.0 * 14.0)  # lift 20 capped at 15, 3 days of 1
    assert plan["stock_by"].is_sorted()
    assert plan["event_name"].unique().to_list() == ["hurricane"]
    assert "order 44 by" in a["reason"] or f"order {a['order_units']} by {a['stock_by']}" in a["reason"]


def test_the_baseline_is_demand_without_the_event() -> None:
    """A forecast whose units already carry the event's uplift must not be lifted again."""
    tables = shelf_tables({})
    event = hypothetical_event("hurricane", "R1", START, END, None)
    forecast = make_forecast(DAILY)
    with_event = forecast.with_columns(units_no_event=pl.col("units"), units=pl.col("units") * 3.0)
    plan = plan_events(event, PATTERNS, with_event, PAIRS, tables.products, as_of=AS_OF, settings=SETTINGS)
    a = plan.filter((pl.col("store_id") == "S2") & (pl.col("sku") == "A")).row(0, named=True)
    assert a["baseline_units"] == pytest.approx(20.0) and a["extra_units"] == pytest.approx(40.0)


def test_orders_round_up_to_case_packs() -> None:
    plan = _plan(case_pack={"A": 12})
    orders = dict(plan.select(pl.format("{}-{}", "store_id", "sku"), "order_units").iter_rows())
    assert orders["S2-A"] % 12 == 0 and orders["S1-A"] % 12 == 0
    assert orders["S1-B"] == 42  # no case pack: whole units (42.0 exactly, not 43)
    assert plan.schema["order_units"] == pl.Int64


def test_orders_are_net_of_stock_on_hand() -> None:
    """S2 counted 100 of A on hand at as_of; until the window opens (7 days at 4) it sells 28, leaving 72,
    of which 52 exceed the window's baseline of 20: the 40 extra + buffer shrink by 52."""
    on_hand = pl.DataFrame({"store_id": ["S2"], "sku": ["A"], "on_hand": [100.0], "on_hand_date": [AS_OF]})
    without = _plan().filter(pl.col("store_id") == "S2")["order_units"][0]
    netted = _plan(on_hand=on_hand).filter(pl.col("store_id") == "S2").row(0, named=True)
    assert netted["expected_on_hand"] == pytest.approx(72.0)
    assert netted["order_units"] == max(0, without - 52)
    assert "less 52.0 on hand beyond normal needs" in netted["reason"]


def test_latest_on_hand_takes_the_last_count() -> None:
    sales = [(AS_OF - timedelta(days=d), "S1", "A", 1.0) for d in range(3)]
    tables = shelf_tables({"S1": ["A"]}, sales=sales)
    lake = tables.store_sales.with_columns(on_hand=pl.col("date").dt.day().cast(pl.Float64))
    assert latest_on_hand(lake, as_of=AS_OF).row(0) == ("S1", "A", 30.0, AS_OF)


def test_chain_wide_patterns_reach_every_region() -> None:
    plan = _plan("holiday", "ALL", name="Labor Day")
    assert plan.select("store_id", "sku").rows() == [("S3", "E")]
    assert plan["event_name"][0] == "Labor Day" and plan["stock_by"][0] < START


def test_upcoming_events_start_after_as_of() -> None:
    tables = shelf_tables(
        {}, events=[("e1", "hurricane", "R1", AS_OF, AS_OF), ("e2", "hurricane", "R1", START, END)]
    )
    assert upcoming_events(tables.events, as_of=AS_OF)["event_id"].to_list() == ["e2"]


def test_unknown_event_type_or_region_lists_the_known_ones() -> None:
    with pytest.raises(UnknownEventError, match="Known event types: heat_wave, hurricane"):
        check_event("tornado", "R1", known_types={"hurricane", "heat_wave"}, known_regions={"R1"})
    with pytest.raises(UnknownEventError, match="Known regions: R1, R2"):
        check_event("hurricane", "R9", known_types={"hurricane"}, known_regions={"R1", "R2"})
    check_event("hurricane", "ALL", known_types={"hurricane"}, known_regions={"R1"})


@pytest.mark.parametrize(
    ("event_type", "region", "why"),
    [
        ("hurricane", "R2", "no significant hurricane pattern in R2 (it has patterns in R1)"),
        ("heat_wave", "R1", "no significant heat_wave pattern in R1"),
    ],
)
def test_an_empty_plan_says_why(event_type: str, region: str, why: str) -> None:
    answer = plan_event(
        PATTERNS, make_forecast(DAILY), PAIRS, shelf_tables({}).products,
        event=hypothetical_event(event_type, region, START, END, None), as_of=AS_OF, settings=SETTINGS,
    )  # fmt: skip
    assert answer.plan.height == 0
    assert why in answer.message


def test_a_plan_names_its_lines() -> None:
    answer = plan_event(
        PATTERNS, make_forecast(DAILY), PAIRS, shelf_tables({}).products,
        event=hypothetical_event("hurricane", "R1", START, END, "Hurricane Zoe"),
        as_of=AS_OF, settings=SETTINGS,
    )  # fmt: skip
    assert answer.message.startswith("3 order lines for 2 stores and 2 SKUs")
    assert set(answer.plan["name"]) == {"Item A", "Item B"}
    assert answer.plan["reason"][0].startswith("Hurricane Zoe (hurricane) in R1")
    assert date(2000, 1, 1) < answer.plan["stock_by"].min() <= START
