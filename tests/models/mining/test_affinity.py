"""Local affinity: shares among carrying stores, availability-normalised, against the rest of the chain."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from models.mining.affinity import affinity_hypotheses, shrink, store_cells
from models.mining.settings import MiningSettings

MONDAY = date(2024, 1, 1)
WEEKS = 24
LAST = MONDAY + timedelta(days=7 * WEEKS - 1)
NO_EVENTS = pl.LazyFrame(
    schema={
        "event_id": pl.String,
        "event_type": pl.String,
        "region": pl.String,
        "start_date": pl.Date,
        "end_date": pl.Date,
        "window_start": pl.Date,
        "chain_wide": pl.Boolean,
    }
)


def _sales(
    rates: dict[tuple[str, str, str], float], *, seed: int = 1, empty: set[str] = frozenset()
) -> pl.LazyFrame:
    """Clean daily Poisson sales: {(store, region, sku): units per day}; stores in ``empty`` have an
    empty shelf (nothing sold, on_hand 0) on Mondays to Wednesdays."""
    rng = np.random.default_rng(seed)
    rows = []
    for (store, region, sku), rate in rates.items():
        for d in range(7 * WEEKS):
            day = MONDAY + timedelta(days=d)
            out = store in empty and day.weekday() < 3
            rows.append((day, store, region, sku, 0.0 if out else float(rng.poisson(rate)), out))
    return pl.LazyFrame(
        rows, schema=["date", "store_id", "region", "sku", "units", "stockout"], orient="row"
    ).with_columns(pl.col("date").dt.truncate("1w").alias("week"), pl.col("stockout").alias("censored"))


def _chain(favourite: float = 1.0, *, empty: set[str] = frozenset()) -> pl.LazyFrame:
    """Four regions of two stores (sizes 1 and 2) selling SKUs v..z at 6/day; region S sells x at
    ``favourite`` times its usual rate; region N carries only v, w, x (a narrower assortment)."""
    rates = {}
    for region in ("N", "S", "E", "W"):
        for i, size in enumerate((1.0, 2.0)):
            for sku in "vwx" if region == "N" else "vwxyz":
                boost = favourite if (region, sku) == ("S", "x") else 1.0
                rates[(f"{region}{i}", region, sku)] = 6.0 * size * boost
    return _sales(rates, empty=empty)


def _mine(sales: pl.LazyFrame, events: pl.LazyFrame = NO_EVENTS) -> pl.DataFrame:
    return affinity_hypotheses(sales, events, first=MONDAY, as_of=LAST, settings=MiningSettings())


def _lift(out: pl.DataFrame, region: str, sku: str) -> float:
    return out.filter((pl.col("region") == region) & (pl.col("sku") == sku))["lift"].item()


def test_a_regional_favourite_is_found_with_its_lift_and_no_mirrors() -> None:
    out = _mine(_chain(2.5))
    assert _lift(out, "S", "x") == pytest.approx(2.5, rel=0.1)
    row = out.filter((pl.col("region") == "S") & (pl.col("sku") == "x")).row(0, named=True)
    assert row["p_value"] < 1e-6 and row["ci_low"] < row["lift"] < row["ci_high"]
    others = out.filter(~((pl.col("region") == "S") & (pl.col("sku") == "x")))
    assert (others["lift"].log().abs() < np.log(1.1)).all()  # the rest of the chain is not a mirror


def test_a_narrower_assortment_and_store_size_are_not_tastes() -> None:
    out = _mine(_chain())
    assert (out["lift"].log().abs() < np.log(1.1)).all()
    assert (out["p_value"] > 0.001).all()


def test_days_with_an_empty_shelf_are_not_low_demand() -> None:
    out = _mine(_chain(empty={"S0", "S1"}))
    assert (out.filter(pl.col("region") == "S")["lift"].log().abs() < np.log(1.1)).all()
    cells = store_cells(_chain(empty={"S0"}), first=MONDAY, as_of=LAST).collect()
    assert cells.filter(pl.col("channel") == "S0")["exposure"].unique().to_list() == [4 / 7]


def test_event_weeks_are_left_out_for_their_region() -> None:
    # S's favourite only shows in weeks an event covers: left out, no affinity
    sales = _chain(3.0).filter((pl.col("region") != "S") | (pl.col("sku") != "x") | (pl.col("week") < MONDAY))
    calm = _chain().filter((pl.col("region") == "S") & (pl.col("sku") == "x") & (pl.col("week") > MONDAY))
    spiky = _chain(3.0).filter(
        (pl.col("region") == "S") & (pl.col("sku") == "x") & (pl.col("week") == MONDAY)
    )
    events = pl.LazyFrame(
        {
            "event_id": ["e"],
            "event_type": ["fair"],
            "region": ["S"],
            "start_date": [MONDAY],
            "end_date": [MONDAY + timedelta(days=2)],
            "window_start": [MONDAY],
            "chain_wide": [False],
        }
    )
    out = _mine(pl.concat([sales, calm, spiky]), events)
    assert _lift(out, "S", "x") == pytest.approx(1.0, abs=0.1)
    assert out.filter(pl.col("region") == "S")["support"].max() == WEEKS - 1


def test_shrinkage_pulls_noisy_lifts_toward_one() -> None:
    log_lift = np.array([0.8, 0.8, 0.0, 0.05, -0.05])
    post, post_var = shrink(log_lift, np.array([0.01, 1.0, 0.01, 0.01, 0.01]))
    assert 0 < post[1] < post[0] < 0.8
    assert (post_var < np.array([0.01, 1.0, 0.01, 0.01, 0.01])).all()
