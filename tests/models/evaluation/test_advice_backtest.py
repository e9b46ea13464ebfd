"""Tests for models/advice_backtest.py: exact shares and hit counts on a tiny hand-made world."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from models.evaluation.advice_backtest import assortment_backtest, event_backtest, truncate_tables
from tests.models.advice.test_assortment import Event, Order, Sale, make_patterns, make_tables

CUTOFF = date(2024, 6, 10)


def _day(d: int) -> date:
    return date(2024, 6, d)


def _assortment_world() -> LakeTables:
    """History to 10 June; held-out 11..15 June. Online orders go to R1 (001, 002: S1 and S2) or R2
    (003: S3) and are split equally among the region's stores."""
    sales: list[Sale] = [
        (_day(1), "S1", "A", 10.0),
        (_day(1), "S1", "B", 2.0),
        (_day(1), "S2", "A", 5.0),
        (_day(1), "S3", "A", 4.0),
        (_day(1), "S3", "E", 3.0),
        (_day(12), "S1", "A", 6.0),
        (_day(12), "S1", "B", 2.0),
        (_day(12), "S2", "A", 4.0),
        (_day(12), "S3", "A", 3.0),
        (_day(12), "S3", "E", 1.0),
        (_day(20), "S1", "A", 100.0),  # after the horizon: ignored
    ]
    orders: list[Order] = [
        (_day(5), "001", "C", 20.0),
        (_day(13), "002", "C", 8.0),
        (_day(14), "003", "D", 2.0),
    ]
    return make_tables({"S1": ["A", "B"], "S2": ["A"], "S3": ["A", "E"]}, sales=sales, orders=orders)


def test_assortment_backtest_exact_shares() -> None:
    """Held-out demand: S1 A6 B2 C4 (12), S2 A4 C4 (8), S3 A3 E1 D2 (6). Chain history to the cutoff:
    C 20 > A 19 > B 2 in X, so the standard shelf is S1 {C, A}, S2 {C}, S3 {C, E}."""
    seen: list[date | None] = []

    def advise(known: LakeTables, cutoff: date) -> pl.DataFrame:
        seen.append(known.store_sales.select(pl.col("date").max()).collect().item())
        return pl.DataFrame(
            {
                "store_id": ["S1", "S1", "S1", "S2", "S3", "S3", "S3"],
                "sku": ["A", "C", "B", "A", "E", "A", "D"],
                "action": ["keep", "add", "drop", "keep", "keep", "drop", "add"],
            }
        )

    out = assortment_backtest(_assortment_world(), cutoffs=[CUTOFF], horizon=5, advise=advise)
    assert seen == [_day(1)]
    shares = {
        ("ALL", "advised"): 17 / 26,
        ("ALL", "standard"): 15 / 26,
        ("ALL", "today"): 16 / 26,
        ("S1", "advised"): 10 / 12,
        ("S1", "standard"): 10 / 12,
        ("S1", "today"): 8 / 12,
        ("S2", "advised"): 0.5,
        ("S2", "standard"): 0.5,
        ("S2", "today"): 0.5,
        ("S3", "advised"): 0.5,
        ("S3", "standard"): 1 / 6,
        ("S3", "today"): 4 / 6,
    }
    expected = pl.DataFrame(
        {
            "cutoff": [CUTOFF] * 12,
            "store_id": [k[0] for k in shares],
            "strategy": [k[1] for k in shares],
            "demand_covered_share": list(shares.values()),
        }
    )
    assert_frame_equal(out, expected)


def test_truncate_tables_drops_facts_after_cutoff() -> None:
    events: list[Event] = [
        ("e1", "hurricane", "R1", _day(2), _day(3)),
        ("e2", "hurricane", "R1", _day(11), _day(12)),
    ]
    tables = make_tables(
        {"S1": ["A"]},
        sales=[(_day(1), "S1", "A", 1.0), (_day(11), "S1", "A", 1.0)],
        orders=[(_day(10), "001", "A", 1.0), (_day(11), "001", "A", 1.0)],
        events=events,
    )
    known = truncate_tables(tables, CUTOFF)
    assert known.store_sales.select("date").collect()["date"].to_list() == [_day(1)]
    assert known.online_orders.select("order_date").collect()["order_date"].to_list() == [_day(10)]
    assert known.events["event_id"].to_list() == ["e1"]
    assert_frame_equal(known.assortment, tables.assortment)


def _event_world() -> LakeTables:
    """Sales from 1 Jan. Hurricane ev1 in R1 on 10-11 Jan and heat wave ev2 in R2 on 10 Jan; with
    lead 1 and baseline 4 days their windows start 9 Jan and the baselines cover 5-8 Jan."""

    def d(n: int) -> date:
        return date(2024, 1, n)

    sales: list[Sale] = [(d(n), "S1", "A", 1.0) for n in range(1, 9)]  # A: 1/day before
    sales += [(d(n), "S1", "A", 3.0) for n in (9, 10, 11)]  # 9 >= 2 x 3 expected: rose
    sales += [(d(n), "S2", "B", 2.0) for n in range(1, 9)]
    sales += [(d(9), "S2", "B", 7.0)]  # 7 < 2 x 6 expected: did not rise
    sales += [(d(10), "S2", "D", 4.0)]  # no baseline but below min_units
    sales += [(d(n), "S3", "E", 1.0) for n in range(1, 9)] + [(d(10), "S3", "E", 10.0)]  # rose in R2
    sales += [(d(12), "S1", "A", 1.0)]
    orders: list[Order] = [(d(10), "001", "C", 6.0)]  # new online demand in R1: rose
    events: list[Event] = [
        ("ev0", "hurricane", "R1", d(3), d(3)),  # too early for a baseline
        ("ev1", "hurricane", "R1", d(10), d(11)),
        ("ev2", "heat_wave", "R2", d(10), d(10)),
        ("ev3", "hurricane", "R1", d(12), d(14)),  # ends after the data
    ]
    assortment = {"S1": ["A"], "S2": ["B", "D"], "S3": ["E"]}
    return make_tables(assortment, sales=sales, orders=orders, events=events)


@pytest.mark.parametrize("last_n, ids", [(8, ["ev1", "ev2"]), (1, ["ev2"])])
def test_event_backtest_precision_recall(last_n: int, ids: list[str]) -> None:
    calls: list[tuple[date, date | None, int]] = []

    def mine(known: LakeTables, cutoff: date) -> pl.DataFrame:
        last = known.store_sales.select(pl.col("date").max()).collect().item()
        calls.append((cutoff, last, known.events.height))
        return make_patterns(
            [
                {"kind": "event_uplift", "region": "R1", "sku": s, "event_type": "hurricane", "lift": 3.0}
                for s in ("A", "B")
            ]
            + [{"kind": "latent_demand", "region": "R2", "sku": "E", "lift": 3.0}]
        )

    out = event_backtest(
        _event_world(),
        mine=mine,
        min_lift=2.0,
        last_n=last_n,
        lead_days=1,
        baseline_days=4,
        fdr_alpha=0.05,
        min_units=5.0,
    )
    cutoff = date(2024, 1, 8)
    assert calls == [(cutoff, cutoff, 1)]  # once per cutoff, on data before the window, ev0 known
    expected = pl.DataFrame(
        {
            "event_id": ["ev1", "ev2"],
            "event_type": ["hurricane", "heat_wave"],
            "region": ["R1", "R2"],
            "start_date": [date(2024, 1, 10)] * 2,
            "cutoff": [cutoff] * 2,
            "flagged": [2, 0],
            "actual_risers": [2, 1],
            "hits": [1, 0],
            "precision": [0.5, None],
            "recall": [0.5, 0.0],
        }
    ).filter(pl.col("event_id").is_in(ids))
    assert_frame_equal(out, expected, check_dtypes=False)
    assert out.schema["precision"] == pl.Float64


def test_event_backtest_without_sales_is_empty() -> None:
    out = event_backtest(
        make_tables({"S1": ["A"]}),
        mine=lambda t, c: make_patterns([]),
        min_lift=2.0,
        lead_days=7,
        baseline_days=56,
        fdr_alpha=0.05,
    )
    assert out.height == 0 and "recall" in out.columns
