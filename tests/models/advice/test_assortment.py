"""Tests for models/advice/assortment.py: hand-made cases and seeded random shelves."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from data_contracts.outputs import ASSORTMENT_COLUMNS
from models.advice.assortment import recommend_assortment
from models.advice.inputs import candidate_pairs, region_sellers
from models.advice.settings import AssortmentSettings
from tests.worlds.shelves import AS_OF, Product, make_forecast, make_patterns, shelf_tables

SETTINGS = AssortmentSettings()


def _affinity(*skus: str, region: str = "R1") -> pl.DataFrame:
    return make_patterns(
        [{"kind": "local_affinity", "region": region, "sku": s, "lift": 2.0, "ci_low": 1.5, "ci_high": 2.6}
         for s in skus]
    )  # fmt: skip


def _advise(
    tables, weekly: dict[tuple[str, str], float], patterns: pl.DataFrame, settings=SETTINGS, spread=0.0
):
    forecast = make_forecast({k: v / 7 for k, v in weekly.items()}, spread=spread)
    candidates = candidate_pairs(tables, patterns)
    return recommend_assortment(tables, candidates, forecast, patterns, as_of=AS_OF, settings=settings)


def _actions(advice: pl.DataFrame, store: str = "S1") -> dict[str, str]:
    return dict(advice.filter(pl.col("store_id") == store).select("sku", "action").iter_rows())


SWAP_PRODUCTS: dict[str, Product] = {"A": ("X", "s1", "b1", 1.0), "B": ("X", "s1", "b2", 5.0),
                                     "C": ("X", "s1", "b2", 1.0)}  # fmt: skip


@pytest.mark.parametrize(("share", "swapped"), [(0.0, True), (0.45, False)])
def test_transference_changes_a_decision(share: float, swapped: bool) -> None:
    """C (5 a week at 1.00) could replace A (2 a week). Counting units alone that is a gain. But C is a
    brand-b2 sibling of B (10 a week at 5.00): with transference, 45% of C's buyers bought B until now,
    so adding C costs B more revenue than it brings."""
    tables = shelf_tables({"S1": ["A", "B"]}, products=SWAP_PRODUCTS, shelf=[("S1", "X", 2)])
    weekly = {("S1", "A"): 2.0, ("S1", "B"): 10.0, ("S1", "C"): 5.0}
    advice = _advise(tables, weekly, _affinity("C"), settings=AssortmentSettings(transference_share=share))
    expected = {"A": "drop", "B": "keep", "C": "add"} if swapped else {"A": "keep", "B": "keep"}
    assert _actions(advice) == expected


@pytest.mark.parametrize("store", ["S1", "ALL"])
def test_must_carry_is_never_dropped(store: str) -> None:
    """A shelf of 2 holds 3 SKUs: the slowest goes, unless it is must-carry (for the store or ALL)."""
    tables = shelf_tables({"S1": ["A", "B", "D"]}, shelf=[("S1", "X", 2)], must_carry=[(store, "A")])
    weekly = {("S1", "A"): 1.0, ("S1", "B"): 3.0, ("S1", "D"): 5.0, ("S1", "G"): 50.0}
    advice = _advise(tables, weekly, _affinity("G"))
    actions = _actions(advice)
    assert actions["A"] == "keep"
    assert actions["B"] == "drop"  # the forced drop falls on the next slowest
    assert "G" not in actions or actions["G"] == "add" and actions["D"] == "drop"
    assert "must-carry" in advice.filter(pl.col("sku") == "A")["reason"][0]


def test_a_forced_drop_never_empties_a_subcategory() -> None:
    """C is the slowest but the only s2 item: B, the slower of the two s1 items, goes instead."""
    tables = shelf_tables({"S1": ["A", "B", "C"]}, shelf=[("S1", "X", 2)])
    advice = _advise(tables, {("S1", "A"): 5.0, ("S1", "B"): 3.0, ("S1", "C"): 1.0}, _affinity())
    assert _actions(advice) == {"A": "keep", "B": "drop", "C": "keep"}


def test_a_swap_stays_in_its_subcategory() -> None:
    """F (s2) beats every SKU; the weakest is A (s1), but F may only replace C, the s2 item."""
    tables = shelf_tables({"S1": ["A", "B", "C"]}, shelf=[("S1", "X", 3)])
    weekly = {("S1", "A"): 1.0, ("S1", "B"): 4.0, ("S1", "C"): 2.0, ("S1", "F"): 20.0}
    advice = _advise(tables, weekly, _affinity("F"))
    assert _actions(advice) == {"A": "keep", "B": "keep", "C": "drop", "F": "add"}
    add = advice.filter(pl.col("sku") == "F").row(0, named=True)
    drop = advice.filter(pl.col("sku") == "C").row(0, named=True)
    assert add["replaces"] == "C" and drop["replaces"] == "F"
    assert "replacing Item C (C," in add["reason"]


@pytest.mark.parametrize(
    ("spread", "bar", "added"),
    [(0.0, "weakest_kept", True), (1.5, "weakest_kept", False), (1.5, "positive", True)],
)
def test_an_add_needs_the_lower_bound_of_its_interval(spread: float, bar: str, added: bool) -> None:
    """A free slot; the weakest kept SKU sells 5 a week. D's expected 7 a week clear it, but with a
    daily p10 of 0 (1.0 - 1.5, floored) its weekly p10 is 7 - sqrt(7) x 1.0 = 4.4: not enough, unless
    the free-slot bar is only zero."""
    tables = shelf_tables({"S1": ["A", "B"]}, shelf=[("S1", "X", 3)])
    weekly = {("S1", "A"): 5.0, ("S1", "B"): 6.0, ("S1", "D"): 7.0}
    settings = AssortmentSettings(free_slot_bar=bar)  # type: ignore[arg-type]
    advice = _advise(tables, weekly, _affinity("D"), settings=settings, spread=spread)
    assert ("D" in _actions(advice)) is added
    assert _actions(advice)["A"] == "keep"  # a free slot: nothing is dropped for D


def test_recent_sales_that_contradict_the_forecast_protect_a_sku() -> None:
    """A's forecast says 1 a week but it sold 14 a week over the last 4 weeks: D replaces B instead."""
    sales = [(AS_OF - timedelta(days=d), "S1", "A", 2.0) for d in range(28)]
    tables = shelf_tables({"S1": ["A", "B"]}, shelf=[("S1", "X", 2)], sales=sales)
    weekly = {("S1", "A"): 1.0, ("S1", "B"): 2.0, ("S1", "D"): 30.0}
    advice = _advise(tables, weekly, _affinity("D"))
    assert _actions(advice) == {"A": "keep", "B": "drop", "D": "add"}
    assert "recent sales (14.0 units/week)" in advice.filter(pl.col("sku") == "A")["reason"][0]


def test_latent_adds_are_valued_with_the_latent_estimate() -> None:
    """The add's expected units are the miner's estimate (one number), not a cold-start forecast."""
    tables = shelf_tables({"S1": ["A", "B"], "S2": ["A"]}, shelf=[("S1", "X", 3), ("S2", "X", 2)])
    patterns = make_patterns(
        [{"kind": "latent_demand", "region": "R1", "sku": "D", "lift": 4.0, "ci_low": 3.0, "ci_high": 5.0}]
    ).with_columns(est_store_weekly=pl.lit(20.0))
    weekly = {("S1", "A"): 3.0, ("S1", "B"): 5.0, ("S2", "A"): 4.0, ("S1", "D"): 2.0, ("S2", "D"): 2.0}
    advice = _advise(tables, weekly, patterns)
    adds = advice.filter(pl.col("action") == "add")
    assert adds["store_id"].to_list() == ["S1", "S2"]
    assert adds["expected_weekly_units"].to_list() == [20.0, 20.0]
    assert "an estimated 20.0 units/week per store (95% CI 15.0-25.0)" in adds["reason"][0]


def test_changes_per_store_are_capped() -> None:
    tables = shelf_tables({"S1": ["A", "B", "C", "E"]}, shelf=[("S1", "X", 5), ("S1", "Y", 2)])
    weekly = {("S1", k): 1.0 for k in "ABCE"} | {("S1", "D"): 9.0, ("S1", "F"): 8.0, ("S1", "G"): 7.0}
    few = AssortmentSettings(max_changes_per_store=2, max_changes_share=1.0)
    advice = _advise(tables, weekly, _affinity("D", "F", "G"), settings=few)
    assert advice.filter(pl.col("action") != "keep").height == 2
    assert set(advice.filter(pl.col("action") == "add")["sku"]) == {"D", "F"}  # the two best


def _random_world(seed: int):
    """Four subcategories of one category in three stores, random shelves, sales and candidates."""
    rng = np.random.default_rng(seed)
    skus = [f"K{i:02d}" for i in range(24)]
    products = {
        k: ("X", f"s{i % 4}", f"b{i % 3}", float(rng.choice([1.0, 2.5, 4.0]))) for i, k in enumerate(skus)
    }
    carried = {
        s: sorted(rng.choice(skus[:18], size=int(rng.integers(6, 12)), replace=False)) for s in ("S1", "S2")
    }
    shelf = [(s, "X", len(ks) + int(rng.integers(-2, 2))) for s, ks in carried.items()]
    must = [("ALL", carried["S1"][0])]
    tables = shelf_tables(carried, products=products, shelf=shelf, must_carry=must)
    weekly = {(s, k): float(rng.gamma(1.0, 6.0)) for s in carried for k in skus}
    return tables, weekly, _affinity(*skus[14:]), shelf, must


@pytest.mark.parametrize("seed", range(8))
def test_random_shelves_keep_every_rule(seed: int) -> None:
    tables, weekly, patterns, shelf, must = _random_world(seed)
    advice = _advise(tables, weekly, patterns)
    assert advice.columns[: len(ASSORTMENT_COLUMNS)] == ASSORTMENT_COLUMNS.names()
    kept = advice.filter(pl.col("action").is_in(["add", "keep"]))
    for store, _, cap in shelf:
        assert kept.filter(pl.col("store_id") == store).height <= cap
    assert advice.filter((pl.col("sku") == must[0][1]) & (pl.col("action") == "drop")).height == 0
    # every add names the SKU it replaces (when it replaces one), of the same subcategory
    swaps = advice.filter((pl.col("action") == "add") & pl.col("replaces").is_not_null()).join(
        advice.select("store_id", replaces="sku", replaced_sub="subcategory"), on=["store_id", "replaces"]
    )
    assert (swaps["subcategory"] == swaps["replaced_sub"]).all()
    # no subcategory the store sells is emptied by a swap (forced drops are the only exception)
    before = tables.assortment.join(tables.products, on="sku").select("store_id", "subcategory").unique()
    after = kept.select("store_id", "subcategory").unique()
    lost = before.join(after, on=["store_id", "subcategory"], how="anti")
    forced = advice.filter(pl.col("reason").str.contains("dropped to fit"))
    assert lost.height == 0 or forced.height > 0


@pytest.mark.parametrize("seed", range(8))
def test_reasons_never_call_a_sku_a_top_seller_below_the_store_median(seed: int) -> None:
    tables, weekly, patterns, _, _ = _random_world(seed)
    advice = _advise(tables, weekly, patterns)
    median = (
        advice.filter(pl.col("action") == "keep")
        .group_by("store_id")
        .agg(median=pl.col("expected_weekly_units").median())
    )
    rows = advice.join(median, on="store_id")
    top = rows.filter(pl.col("reason").str.contains("top seller"))
    slow = rows.filter(pl.col("reason").str.contains("slow seller"))
    assert (top["expected_weekly_units"] > top["median"]).all()
    assert (slow["expected_weekly_units"] < slow["median"]).all()
    assert top.height + slow.height > 0  # the words are used, where true


@pytest.mark.parametrize(("shelf", "expected"), [(6, ["G", "F"]), (9, ["G", "F", "D", "C", "B"])])
def test_free_slots_widen_the_region_sellers_to_fill_them(shelf: int, expected: list[str]) -> None:
    """S1 and S2 (R1) both carry A..G of category X; with top_n 2 the region's two best sellers are
    candidates, plus one more per free slot of the region's emptiest shelf (S1: 9 - 6 = 3 free), so
    free shelf space is not left empty for want of a candidate."""
    skus = ["A", "B", "C", "D", "F", "G"]
    rate = dict(zip(skus, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], strict=True))
    sales = [
        (AS_OF - timedelta(days=d), s, k, rate[k]) for d in range(28) for s in ("S1", "S2") for k in skus
    ]
    tables = shelf_tables({"S1": skus, "S2": skus}, shelf=[("S1", "X", shelf)], sales=sales)
    got = region_sellers(tables, top_n=2).filter(pl.col("region") == "R1")
    assert got["sku"].to_list() == expected
