"""Tests for models/evaluation/advice_backtest.py: exact shares and risers on tiny hand-made worlds."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from models.advice.settings import AssortmentSettings
from models.evaluation.advice_backtest import (
    actual_risers,
    assortment_backtest,
    budgeted_standard,
    chain_rate_forecast,
    event_backtest,
    held_out_demand,
    localized_reset,
    standard_assortment,
    truncate_tables,
)
from tests.worlds.shelves import Event, Order, Sale, make_patterns, shelf_tables

CUTOFF = date(2024, 6, 10)


def _june(d: int) -> date:
    return date(2024, 6, d)


def _assortment_world() -> LakeTables:
    """History to 10 June (C last sold in January: no longer carried at the cutoff); held-out 11..15
    June. Today's assortment.csv (S1 also carries E) must not leak into the past."""
    sales: list[Sale] = [
        (date(2024, 1, 2), "S1", "C", 20.0),
        (_june(1), "S1", "A", 10.0), (_june(1), "S1", "B", 2.0), (_june(1), "S2", "A", 5.0),
        (_june(1), "S3", "A", 4.0), (_june(1), "S3", "E", 3.0),
        (_june(12), "S1", "A", 6.0), (_june(12), "S1", "B", 2.0), (_june(12), "S2", "A", 4.0),
        (_june(12), "S3", "A", 3.0), (_june(12), "S3", "E", 1.0),
        (_june(20), "S1", "A", 100.0),  # after the horizon: ignored
    ]  # fmt: skip
    orders: list[Order] = [(_june(13), "002", "C", 8.0), (_june(14), "003", "D", 2.0)]
    return shelf_tables({"S1": ["A", "B", "E"], "S2": ["A"], "S3": ["A", "E"]}, sales=sales, orders=orders)


def test_truncate_tables_reconstructs_the_assortment_from_sales() -> None:
    known = truncate_tables(_assortment_world(), CUTOFF)
    assert known.assortment.rows() == [("S1", "A"), ("S1", "B"), ("S2", "A"), ("S3", "A"), ("S3", "E")]
    assert known.store_sales.select(pl.col("date").max()).collect().item() == _june(1)


def test_held_out_demand_counts_every_channel() -> None:
    """R1: A sold 6 + 4 in its two stores (5 per store), B 2 in one; C only online, 8 over two stores.
    R2: A 3, E 1, D 2 online. No SKU both sold and bought online: the store-to-online ratio is 1."""
    demand = held_out_demand(_assortment_world(), _june(11), _june(15)).sort("region", "sku")
    expected = pl.DataFrame(
        {"region": ["R1", "R1", "R1", "R2", "R2", "R2"], "sku": ["A", "B", "C", "A", "D", "E"],
         "demand": [5.0, 2.0, 4.0, 3.0, 2.0, 1.0]}
    )  # fmt: skip
    assert_frame_equal(demand, expected)


def test_assortment_backtest_exact_shares() -> None:
    """On the region measure: R1 demand A 5, B 2, C 4 (11 per store); R2 A 3, D 2, E 1 (6). Today at the
    cutoff: S1 {A, B}, S2 {A}, S3 {A, E}. The chain's history: C 20 > A 19 > B 2 in X, so the standard
    shelf of the reconstructed capacity is S1 {C, A}, S2 {C}, S3 {C, E}."""
    seen: list[list[tuple[str, str]]] = []

    def advise(known: LakeTables, cutoff: date) -> pl.DataFrame:
        seen.append(known.assortment.rows())
        return pl.DataFrame({"store_id": ["S1", "S1", "S1", "S2", "S3", "S3", "S3"],
                             "sku": ["A", "C", "B", "A", "E", "A", "D"],
                             "action": ["keep", "add", "drop", "keep", "keep", "drop", "add"]})  # fmt: skip

    out = assortment_backtest(
        _assortment_world(), cutoffs=[CUTOFF], horizon=5, advise=advise, measures=["region"]
    )
    assert seen == [[("S1", "A"), ("S1", "B"), ("S2", "A"), ("S3", "A"), ("S3", "E")]]
    shares = {
        ("ALL", "advised"): 17 / 28, ("ALL", "standard"): 14 / 28, ("ALL", "today"): 16 / 28,
        ("S1", "advised"): 9 / 11, ("S1", "standard"): 9 / 11, ("S1", "today"): 7 / 11,
        ("S2", "advised"): 5 / 11, ("S2", "standard"): 4 / 11, ("S2", "today"): 5 / 11,
        ("S3", "advised"): 3 / 6, ("S3", "standard"): 1 / 6, ("S3", "today"): 4 / 6,
    }  # fmt: skip
    expected = pl.DataFrame({
        "cutoff": [CUTOFF] * 12, "store_id": [k[0] for k in shares], "strategy": [k[1] for k in shares],
        "demand_covered_share": list(shares.values()), "demand_measure": ["region"] * 12,
    })  # fmt: skip
    assert_frame_equal(out, expected)


def test_the_localized_reset_fills_every_slot_in_the_store_s_own_order() -> None:
    """Same pool and capacity as the chain-wide reset (X: C 20 > A 19 > B 2 chain-wide; capacity S1 2,
    S2 1, S3 1 in X and 1 in Y; D was never sold in a store: not in the pool), ranked by the store's own
    value: S1 values B over A (C has no value: 0), S3 values A; S2 has no value at all and gets the
    chain's order, as do ties. The chain-wide reset carries C everywhere instead."""
    world = _assortment_world()
    known = truncate_tables(world, CUTOFF)
    value = pl.DataFrame(
        {"store_id": ["S1", "S1", "S3", "S3", "S1"], "sku": ["B", "A", "A", "D", "E"],
         "value": [5.0, 1.0, 3.0, 9.0, 2.0]}
    )  # fmt: skip
    local = localized_reset(world, known, value)
    assert local.rows() == [("S1", "A"), ("S1", "B"), ("S2", "C"), ("S3", "A"), ("S3", "E")]
    chain = standard_assortment(world, known, CUTOFF).sort("store_id", "sku")
    assert chain.rows() == [("S1", "A"), ("S1", "C"), ("S2", "C"), ("S3", "C"), ("S3", "E")]
    assert localized_reset(world, known, value.clear()).rows() == chain.rows()


def test_chain_rate_forecast_gives_every_store_the_chain_rate() -> None:
    """Known at the cutoff: last sale 1 June; over the 91 days before it A sold 10 + 5 + 4 in its three
    carrying stores, E 3 in one; C sold only in January (rate 0). Every demand column, every store."""
    known = truncate_tables(_assortment_world(), CUTOFF)
    forecast = pl.DataFrame(
        {"store_id": ["S1", "S2", "S3", "S1"], "sku": ["A", "A", "E", "C"],
         "date": [_june(11)] * 4, "units": [9.0, 1.0, 7.0, 5.0], "p10": [1.0, 0.0, 2.0, 1.0],
         "p90": [20.0, 3.0, 9.0, 8.0], "units_no_event": [9.0, 1.0, 7.0, 5.0]}
    )  # fmt: skip
    got = chain_rate_forecast(known, forecast)
    rate = {"A": 19 / 3 / 91, "E": 3 / 91, "C": 0.0}
    expected = [rate[k] for k in forecast["sku"]]
    assert got.columns == forecast.columns
    for column in ("units", "p10", "p90", "units_no_event"):
        assert got[column].to_list() == pytest.approx(expected)
    assert_frame_equal(got.select("store_id", "sku", "date"), forecast.select("store_id", "sku", "date"))


@pytest.mark.parametrize(
    ("per_store", "expected"),
    [
        (8, [("S1", "A"), ("S1", "C"), ("S2", "C"), ("S3", "C"), ("S3", "E")]),
        (0, [("S1", "A"), ("S1", "B"), ("S2", "A"), ("S3", "A"), ("S3", "E")]),
    ],
)
def test_the_budgeted_standard_moves_toward_the_chain_within_the_budget(
    per_store: int, expected: list[tuple[str, str]]
) -> None:
    """Chain history in X: C 20 > A 19 > B 2. Shelves at the cutoff (capacity = today's count): S1 {A,
    B}, S2 {A}, S3 {A} + {E} in Y. One change per category (a quarter of a shelf, at least one): each
    store swaps its chain-weakest X item for C, the best one it lacks; E is Y's best already. With no
    budget the shelves stay as they are."""
    world = _assortment_world()
    known = truncate_tables(world, CUTOFF)
    settings = AssortmentSettings(max_changes_per_store=per_store)
    got = budgeted_standard(world, known, CUTOFF, settings).sort("store_id", "sku")
    assert got.rows() == expected


def _jan(d: int) -> date:
    return date(2024, 1, d)


def _event_world() -> LakeTables:
    """A hurricane hits R1 on 29-30 January; R2 is a clean control. Per day before / during:
    A 10 -> 40 in S1 only (rose); B 5 -> 15 in S1 *and* S3 (a chain-wide promotion: not the event);
    C 1 -> 3 in S2 (too few units to tell); D bought online in R1 only during the storm (20 units)."""
    sales: list[Sale] = []
    for d in range(1, 31):
        storm = d >= 29
        sales += [(_jan(d), "S1", "A", 40.0 if storm else 10.0), (_jan(d), "S3", "A", 10.0)]
        sales += [(_jan(d), s, "B", 15.0 if storm else 5.0) for s in ("S1", "S3")]
        sales += [(_jan(d), "S2", "C", 3.0 if storm else 1.0)]
    orders: list[Order] = [(_jan(29), "001", "D", 10.0), (_jan(30), "002", "D", 10.0)]
    events: list[Event] = [("ev1", "hurricane", "R1", _jan(29), _jan(30))]
    return shelf_tables(
        {"S1": ["A", "B"], "S2": ["C"], "S3": ["A", "B"]}, sales=sales, orders=orders, events=events
    )


def test_actual_risers_are_judged_against_control_regions() -> None:
    tables = _event_world()
    event = tables.events.row(0, named=True)
    risers, control = actual_risers(tables, event, min_lift=1.3, lead_days=1, pre_days=28, min_units=5.0)
    assert control == "control_regions"
    assert risers == {"A", "D"}


def test_without_a_control_the_other_skus_set_the_trend() -> None:
    """Chain-wide (ALL): no control region and no year before; the typical SKU's change is the yardstick,
    so the promotion that lifted everything (B with A) does not make a riser on its own."""
    tables = _event_world()
    event = {**tables.events.row(0, named=True), "region": "ALL"}
    risers, control = actual_risers(tables, event, min_lift=1.3, lead_days=1, pre_days=28, min_units=5.0)
    assert control == "other_skus"
    assert "B" not in risers and "C" not in risers


def test_event_backtest_precision_recall() -> None:
    calls: list[tuple[date, date | None]] = []

    def mine(known: LakeTables, cutoff: date) -> pl.DataFrame:
        calls.append((cutoff, known.store_sales.select(pl.col("date").max()).collect().item()))
        return make_patterns(
            [{"kind": "event_uplift", "region": "R1", "sku": s, "event_type": "hurricane", "lift": 3.0}
             for s in ("A", "B")]
        )  # fmt: skip

    out = event_backtest(_event_world(), mine=mine, min_lift=1.3, lead_days=1, baseline_days=4, min_units=5.0)
    assert calls == [(_jan(27), _jan(27))]
    row = out.row(0, named=True)
    assert (row["flagged"], row["actual_risers"], row["hits"]) == (2, 2, 1)
    assert row["precision"] == pytest.approx(0.5) and row["recall"] == pytest.approx(0.5)
    assert row["control"] == "control_regions"


def test_event_backtest_without_sales_is_empty() -> None:
    out = event_backtest(shelf_tables({"S1": ["A"]}), mine=lambda t, c: make_patterns([]), min_lift=2.0)
    assert out.height == 0 and "recall" in out.columns
