"""The planted chain: a seeded chain with known patterns planted in it, for the pattern-mining tests.

Three regions of three stores (T0..T8), twelve SKUs in two categories, 420 days of daily Poisson sales
with a weekday profile (every carried pair reported every day), 1% empty-shelf days, online order lines
shipped to each region, and two event types: ``storm`` (six events in region R0) and ``fake`` (six
chain-wide events with no effect at all). With ``plant=True``:

* event uplift: SKU S00 sells 5x in R0's stores from 7 days before each storm to its end, 10x on the day
  before it starts (peak -1);
* local affinity: S01 sells 2.5x in R1's stores, S02 0.4x in R2's stores;
* latent demand: S03 is carried nowhere in R2, yet R2 orders it online at 6x the chain's online rate.

Without planting S03 is still not carried in R2, but R2 orders it online at the chain's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from data_contracts.schemas import CHAIN_WIDE
from data_contracts.tables import LakeTables
from tests.worlds.chains import ChainSpec, Lift, seeded_chain

START = date(2023, 1, 2)  # a Monday
N_DAYS = 420
AS_OF = START + timedelta(days=N_DAYS - 1)
REGIONS = ("R0", "R1", "R2")
SKUS = tuple(f"S{i:02d}" for i in range(12))
STORES = tuple(f"T{i}" for i in range(9))  # three per region, in region order
STORM_STARTS = (70, 130, 190, 250, 310, 370)  # day indices; each storm lasts 3 days
FAKE_STARTS = (100, 160, 220, 280, 340, 400)
STORM_LEAD = 7  # the storm uplift starts this many days before the event


@dataclass(frozen=True)
class Names:
    """Labels used in the world, so a test can rename everything and check nothing depends on them."""

    regions: tuple[str, ...] = REGIONS
    skus: tuple[str, ...] = SKUS
    storm: str = "storm"
    fake: str = "fake"


def _events(names: Names) -> pl.DataFrame:
    starts = (*STORM_STARTS, *FAKE_STARTS)
    return pl.DataFrame(
        {
            "event_id": [f"E{i}" for i in range(12)],
            "event_type": [names.storm] * 6 + [names.fake] * 6,
            "region": [names.regions[0]] * 6 + [CHAIN_WIDE] * 6,
            "start_date": [START + timedelta(days=d) for d in starts],
            "end_date": [START + timedelta(days=d + 2) for d in starts],
        }
    )


def _lifts(names: Names) -> tuple[Lift, ...]:
    storm, r0, r1, r2 = names.skus[0], *names.regions
    windows = [Lift(storm, 5.0, r0, (s - STORM_LEAD, s + 3)) for s in STORM_STARTS]
    peaks = [Lift(storm, 2.0, r0, (s - 1, s)) for s in STORM_STARTS]  # 5x2: 10x the day before
    return (*windows, *peaks, Lift(names.skus[1], 2.5, r1), Lift(names.skus[2], 0.4, r2))


def planted_spec(*, plant: bool, names: Names = Names()) -> ChainSpec:
    """The planted chain's spec (see the module docstring). Store scales run evenly from 0.7 to 1.4;
    SKU levels from 8 units a day (S00, the storm SKU: a planted lift needs volume to be seen) down to 2."""
    store_regions = tuple(names.regions[i // 3] for i in range(9))
    return ChainSpec(
        start=START,
        days=N_DAYS,
        stores=STORES,
        store_regions=store_regions,
        store_scale=tuple(np.linspace(0.7, 1.4, 9).tolist()),
        skus=names.skus,
        categories=tuple("cat_a" if i % 2 == 0 else "cat_b" for i in range(len(names.skus))),
        sku_level=tuple(np.linspace(8.0, 2.0, len(names.skus)).tolist()),
        prices=(2.0,) * len(names.skus),
        weekday=(0.9, 0.9, 0.95, 1.0, 1.1, 1.25, 0.9),
        lifts=_lifts(names) if plant else (),
        # S03 is carried nowhere in the third region
        not_carried=tuple((s, names.skus[3]) for s in STORES[6:]),
        stockout_share=0.01,
        on_hand=5.0,
        zero_days=True,
        online_rate=0.6,
        online_lifts=(Lift(names.skus[3], 6.0, names.regions[2]),) if plant else (),
        events=_events(names),
    )


def planted_chain(*, plant: bool, seed: int = 7, names: Names = Names()) -> LakeTables:
    """The planted chain as LakeTables; the same seed gives the same numbers whatever ``names`` are."""
    return seeded_chain(planted_spec(plant=plant, names=names), seed)
