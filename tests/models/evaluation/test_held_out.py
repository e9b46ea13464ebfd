"""Tests for models/evaluation/held_out.py: held-out demand shared out by store volume, shares on it,
and the interval calibration table, on a hand-made world."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.tables import LakeTables
from models.evaluation.advice_backtest import assortment_backtest
from models.evaluation.held_out import (
    covered_shares,
    held_out_demand,
    held_out_store_demand,
    interval_calibration,
    store_volume,
)
from tests.worlds.shelves import Order, Sale, shelf_tables


def _june(d: int) -> date:
    return date(2024, 6, d)


def _world() -> LakeTables:
    """R1: S1 (big) sells A 8 and B 6, S2 (small) A 4 only; C is bought online in R1 only (8 units).
    R2: S3 alone sells A 3 and E 1, D is bought online (2 units). All in the window 11..15 June; before
    it (1 June) each store sells what it carries."""
    history: list[Sale] = [
        (_june(1), s, k, 1.0) for s, k in (("S1", "A"), ("S1", "B"), ("S2", "A"), ("S3", "A"), ("S3", "E"))
    ]
    sales: list[Sale] = history + [
        (_june(12), "S1", "A", 8.0), (_june(12), "S1", "B", 6.0), (_june(13), "S2", "A", 4.0),
        (_june(12), "S3", "A", 3.0), (_june(14), "S3", "E", 1.0),
        (_june(20), "S2", "B", 50.0),  # after the window: ignored
    ]  # fmt: skip
    orders: list[Order] = [(_june(13), "002", "C", 8.0), (_june(14), "003", "D", 2.0)]
    return shelf_tables({"S1": ["A", "B"], "S2": ["A"], "S3": ["A", "E"]}, sales=sales, orders=orders)


def test_store_volume_is_the_units_of_the_skus_every_store_of_the_region_sold() -> None:
    """R1: only A is sold by both stores: S1 8, S2 4, mean 6. R2: one store, weight 1."""
    sales = _world()
    from models.evaluation.held_out import _store_units

    weights = store_volume(sales, _store_units(sales, _june(11), _june(15))).sort("store_id")
    assert weights["weight"].to_list() == pytest.approx([8 / 6, 4 / 6, 1.0])


def test_a_small_store_is_credited_its_fair_share_not_the_big_stores_sales() -> None:
    """B: the region figure credits S2 with S1's 6 units; by volume S2 would sell 6 / (4/3) x 2/3 = 3.
    Own sales count where the store sold the SKU; online units (C: 4 per store) go by volume."""
    tables = _world()
    store = held_out_store_demand(tables, _june(11), _june(15))
    expected = pl.DataFrame(
        {
            "store_id": ["S1", "S1", "S1", "S2", "S2", "S2", "S3", "S3", "S3"],
            "region": ["R1", "R1", "R1", "R1", "R1", "R1", "R2", "R2", "R2"],
            "sku": ["A", "B", "C", "A", "B", "C", "A", "D", "E"],
            "demand": [8.0, 6.0, 4 * 8 / 6, 4.0, 3.0, 4 * 4 / 6, 3.0, 2.0, 1.0],
        }
    )
    assert_frame_equal(store, expected)
    region = held_out_demand(tables, _june(11), _june(15)).sort("region", "sku")
    assert region.filter(pl.col("sku") == "B")["demand"].to_list() == [6.0]


def test_shares_on_store_demand() -> None:
    """S2 carrying A and B: (4 + 3) of its 4 + 3 + 8/3; S1 carrying A only: 8 of 8 + 6 + 16/3."""
    demand = held_out_store_demand(_world(), _june(11), _june(15))
    stores = _world().stores
    shelf = pl.DataFrame({"store_id": ["S1", "S2", "S2"], "sku": ["A", "A", "B"]})
    covered = covered_shares(demand, stores, {"x": shelf})
    shares = dict(covered.select("store_id", "demand_covered_share").rows())
    assert shares["S1"] == pytest.approx(8 / (14 + 16 / 3))
    assert shares["S2"] == pytest.approx(7 / (7 + 8 / 3))
    assert shares["S3"] == pytest.approx(0.0)
    assert shares["ALL"] == pytest.approx(15 / (14 + 16 / 3 + 7 + 8 / 3 + 6))


def test_interval_calibration_counts_held_out_demand_against_the_interval() -> None:
    """Weekly demand over 1 week: S1 A 8 (interval 5-7-9: inside, above the mean), S2 A 4 (5-6-7:
    below p10), S2 B 3 (a chain add at 1-2-3: above the mean, not above p90), S3 E 1 (a region add at
    2-3-4: below p10) and S3 G (no held-out demand: 0, below p10)."""
    rows = pl.DataFrame(
        {
            "store_id": ["S1", "S2", "S2", "S3", "S3"],
            "sku": ["A", "A", "B", "E", "G"],
            "carried": [True, True, False, False, False],
            "evidence": [None, None, "chain", "region", "region"],
            "weekly_low": [5.0, 5.0, 1.0, 2.0, 1.0],
            "weekly_units": [7.0, 6.0, 2.0, 3.0, 2.0],
            "weekly_high": [9.0, 7.0, 3.0, 4.0, 3.0],
        }
    )
    table = interval_calibration(rows, held_out_store_demand(_world(), _june(11), _june(15)), weeks=1.0)
    got = {r["kind"]: r for r in table.iter_rows(named=True)}
    assert set(got) == {"add: chain", "add: region", "kept"}
    assert (got["kept"]["n"], got["kept"]["below_p10"], got["kept"]["above_p90"]) == (2, 0.5, 0.0)
    assert got["kept"]["below_mean"] == 0.5
    assert (got["add: chain"]["below_p10"], got["add: chain"]["below_mean"]) == (0.0, 0.0)
    assert got["add: chain"]["ratio"] == pytest.approx(1.5)
    assert (got["add: region"]["n"], got["add: region"]["below_p10"]) == (2, 1.0)


def test_the_backtest_scores_each_store_on_its_own_demand_by_default() -> None:
    """Store demand: S1 A 8, B 6, C 16/3; S2 A 4, B 3, C 8/3; S3 A 3, D 2, E 1 (35 in all). Advised
    S1 {A}, S2 {A, B}, S3 {A, E}; today (rebuilt from 1 June) S1 {A, B}, S2 {A}, S3 {A, E}. The small
    store S2 lacks B: the store measure credits it 3 for B, the region measure 6 (S1's sales; and A 6,
    the mean of 8 and 4, C 4): S2's advised shelf carries 21/29 of its demand, not 12/16. Both measures
    are written, the store one first and labelled."""

    def advise(known: LakeTables, cutoff: date) -> pl.DataFrame:
        return pl.DataFrame({"store_id": ["S1", "S1", "S2", "S2", "S3", "S3"],
                             "sku": ["A", "B", "A", "B", "A", "E"],
                             "action": ["keep", "drop", "keep", "add", "keep", "keep"]})  # fmt: skip

    out = assortment_backtest(_world(), cutoffs=[_june(10)], horizon=5, advise=advise)
    assert out["demand_measure"].unique(maintain_order=True).to_list() == ["store", "region"]
    rows = out.select("demand_measure", "store_id", "strategy", "demand_covered_share").rows()
    got = {(r[0], r[1], r[2]): r[3] for r in rows}
    expected = {
        ("store", "ALL", "advised"): 19 / 35, ("store", "S1", "advised"): 24 / 58,
        ("store", "S2", "advised"): 21 / 29, ("store", "S3", "advised"): 4 / 6,
        ("store", "ALL", "today"): 22 / 35, ("store", "S1", "today"): 42 / 58,
        ("store", "S2", "today"): 12 / 29, ("store", "S3", "today"): 4 / 6,
        ("region", "S2", "advised"): 12 / 16, ("region", "S2", "today"): 6 / 16,
    }  # fmt: skip
    assert {k: got[k] for k in expected} == pytest.approx(expected)
    only_store = assortment_backtest(
        _world(), cutoffs=[_june(10)], horizon=5, advise=advise, measures=["store"]
    )
    assert_frame_equal(only_store, out.filter(pl.col("demand_measure") == "store"))
    with pytest.raises(ValueError, match="unknown demand measure"):
        assortment_backtest(_world(), cutoffs=[_june(10)], horizon=5, advise=advise, measures=["chain"])
