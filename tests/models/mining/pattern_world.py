"""One seeded factory for a small synthetic chain with optionally planted patterns (tests only).

Three regions of three stores, twelve SKUs in two categories, ~14 months of daily Poisson sales with a
weekday profile, online order lines shipped to each region, and two event types: ``storm`` (six events
in region R0) and ``fake`` (six chain-wide events with no effect at all). With ``plant=True``:

* event uplift: SKU S00 sells 5x in R0 during storm windows, 10x on the day before the start (peak -1);
* local affinity: S01 sells 2.5x in R1's stores, S02 0.4x in R2's stores;
* latent demand: S03 is carried nowhere in R2, yet R2 orders it online at 6x the chain's online share.

Without planting S03 is still not carried in R2, but R2 orders it online at the chain's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from data_contracts.outputs import conform
from data_contracts.schemas import CONTRACTS, LAKE_ONLINE_ORDERS, LAKE_STORE_SALES
from data_contracts.tables import LakeTables

START = date(2023, 1, 2)  # a Monday
N_DAYS = 420
REGIONS = ("R0", "R1", "R2")
SKUS = tuple(f"S{i:02d}" for i in range(12))
STORM_STARTS = (70, 130, 190, 250, 310, 370)  # day indices; each storm lasts 3 days
FAKE_STARTS = (100, 160, 220, 280, 340, 400)


@dataclass(frozen=True)
class Names:
    """Labels used in the world, so a test can rename everything and check nothing depends on them."""

    regions: tuple[str, ...] = REGIONS
    skus: tuple[str, ...] = SKUS
    storm: str = "storm"
    fake: str = "fake"


def _reference(names: Names) -> dict[str, pl.DataFrame]:
    stores = pl.DataFrame(
        {
            "store_id": [f"T{i}" for i in range(9)],
            "region": [names.regions[i // 3] for i in range(9)],
            "state": ["XX"] * 9,
            "postal_code": [f"P{i // 3}" for i in range(9)],
        }
    )
    products = pl.DataFrame(
        {
            "sku": list(names.skus),
            "name": [f"Item {s}" for s in names.skus],
            "category": ["cat_a" if i % 2 == 0 else "cat_b" for i in range(len(names.skus))],
            "regular_price": [2.0] * len(names.skus),
        }
    )
    postal = pl.DataFrame({"postal_code": ["P0", "P1", "P2"], "region": list(names.regions)})
    pairs = [(st, sk) for st in stores["store_id"] for sk in names.skus]
    # S03 is carried nowhere in the third region (stores T6..T8)
    assortment = pl.DataFrame(
        [(st, sk) for st, sk in pairs if not (sk == names.skus[3] and st in ("T6", "T7", "T8"))],
        schema={"store_id": pl.String, "sku": pl.String},
        orient="row",
    )
    events = pl.DataFrame(
        {
            "event_id": [f"E{i}" for i in range(12)],
            "event_type": [names.storm] * 6 + [names.fake] * 6,
            "region": [names.regions[0]] * 6 + ["ALL"] * 6,
            "start_date": [START + timedelta(days=d) for d in (*STORM_STARTS, *FAKE_STARTS)],
            "end_date": [START + timedelta(days=d + 2) for d in (*STORM_STARTS, *FAKE_STARTS)],
        }
    )
    return {
        "stores": stores,
        "products": products,
        "postal_regions": postal,
        "assortment": assortment,
        "events": events,
    }


def _multipliers(plant: bool) -> np.ndarray:
    """Demand multiplier per (store, sku, day)."""
    mult = np.ones((9, 12, N_DAYS))
    if not plant:
        return mult
    for s in STORM_STARTS:
        mult[0:3, 0, s - 7 : s + 3] = 5.0  # whole window: lead 7 days + 3 event days
        mult[0:3, 0, s - 1] = 10.0
    mult[3:6, 1, :] *= 2.5
    mult[6:9, 2, :] *= 0.4
    return mult


def _store_sales(rng: np.random.Generator, names: Names, plant: bool) -> pl.DataFrame:
    base = rng.uniform(2.0, 8.0, size=12)[None, :, None] * rng.uniform(0.7, 1.4, size=9)[:, None, None]
    weekday = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.25, 0.9])[(np.arange(N_DAYS) % 7)][None, None, :]
    units = rng.poisson(base * weekday * _multipliers(plant)).astype(float)
    st, sk, d = np.meshgrid(np.arange(9), np.arange(12), np.arange(N_DAYS), indexing="ij")
    keep = ~((sk == 3) & (st >= 6))  # S03 not sold in the third region
    stockout = rng.random(units.shape) < 0.01
    units[stockout] = 0.0
    return pl.DataFrame(
        {
            "date": np.datetime64(START, "D") + d[keep],
            "store_id": np.array([f"T{i}" for i in range(9)])[st[keep]],
            "sku": np.array(names.skus)[sk[keep]],
            "units": units[keep],
            "revenue": units[keep] * 2.0,
            "on_hand": np.where(stockout[keep], 0.0, 5.0),
            "promo": np.zeros(keep.sum(), dtype=bool),
        }
    ).with_columns(pl.col("date").cast(pl.Date))


def _online_orders(rng: np.random.Generator, names: Names, plant: bool) -> pl.DataFrame:
    rate = np.full((3, 12, N_DAYS), 0.6)
    if plant:
        rate[2, 3, :] *= 6.0
    counts = rng.poisson(rate)
    reg, sk, d = np.nonzero(counts)
    n = counts[reg, sk, d]
    reg, sk, d = (np.repeat(a, n) for a in (reg, sk, d))
    return pl.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(len(d))],
            "line_number": np.ones(len(d), dtype=np.int64),
            "sku": np.array(names.skus)[sk],
            "units": np.ones(len(d)),
            "revenue": np.full(len(d), 2.0),
            "ship_postal_code": np.array(["P0", "P1", "P2"])[reg],
            "order_date": np.datetime64(START, "D") + d,
        }
    ).with_columns(pl.col("order_date").cast(pl.Date))


def make_world(*, plant: bool, seed: int = 7, names: Names = Names()) -> LakeTables:
    """A synthetic chain as LakeTables; the same seed gives the same numbers whatever ``names`` are."""
    rng = np.random.default_rng(seed)
    refs = {k: _as(v, CONTRACTS[k].schema) for k, v in _reference(names).items()}
    return LakeTables(
        **refs,
        shelf_capacity=pl.DataFrame(schema=CONTRACTS["shelf_capacity"].schema),
        store_sales=_as(_store_sales(rng, names, plant), LAKE_STORE_SALES).lazy(),
        online_orders=_as(_online_orders(rng, names, plant), LAKE_ONLINE_ORDERS).lazy(),
    )


def _as(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``df`` with exactly the columns of ``schema`` (nulls where it has none), as the lake reads it."""
    return conform(df, schema).select(schema.names())


AS_OF = START + timedelta(days=N_DAYS - 1)
