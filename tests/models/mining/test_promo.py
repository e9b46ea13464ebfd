"""Promotions in the event miner's counterfactual: a promotion that overlaps an event is not the event.

A seeded chain (four regions of three stores, six SKUs, two years of daily sales with seasons, a
weekday profile, month-start paydays, over-dispersed counts and online orders) whose promotions
(the ``promo`` flag of store sales) raise demand 1.4-1.8x, in random chain-wide weeks and:

* ``fair`` (R2, 4 events, no effect): P0 on a chain-wide promotion over 7 days of each fair's window
  (the lead days and the first fair day), as the medium demo's seed-7 toaster pastry in
  DESERT_SOUTHWEST;
* ``parade`` (R0, 5 events, no effect): P1 on a promotion in R0's stores only, over each parade;
* ``market`` (R3, 5 events): P2 x2.5 over the 3 market days, and on a chain-wide promotion then too.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from features.signals import clean_store_sales
from models.mining.event_uplift import event_uplift_hypotheses
from models.mining.patterns import apply_fdr
from models.mining.settings import MiningSettings

START = date(2023, 1, 2)
N_DAYS = 730
AS_OF = START + timedelta(days=N_DAYS - 1)
REGIONS = ("R0", "R1", "R2", "R3")
N_SKUS = 6
SKUS = tuple(f"P{i}" for i in range(N_SKUS))
MARKET_LIFT = 2.5
SETTINGS = MiningSettings(min_lift=1.0)


def _events() -> list[tuple[str, str, date, int]]:
    """(type, region, start, days)."""
    out = []
    for y in (2023, 2024):
        out += [("fair", "R2", date(y, m, d), 3) for m, d in ((6, 14), (8, 9))]
        out += [("parade", "R0", date(y, m, d), 2) for m, d in ((3, 11), (5, 20), (10, 7))][
            : 3 if y == 2023 else 2
        ]
        out += [("market", "R3", date(y, m, d), 3) for m, d in ((4, 5), (7, 19), (11, 2))][
            : 3 if y == 2023 else 2
        ]
    return out


def _world(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Store sales (date, store_id, sku, units, revenue, on_hand, promo) and online units per region."""
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64(START), np.datetime64(START) + N_DAYS)
    t = np.arange(N_DAYS)
    doy = (days - days.astype("datetime64[Y]")).astype(int)
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    peak = rng.uniform(0, 365, size=(1, N_SKUS, 1))
    season = 1 + 0.3 * np.cos(2 * np.pi * (doy[None, None, :] - peak) / 365.25)
    weekday = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.85])[(days.astype(int) + 3) % 7]
    payday = np.where(dom <= 3, 1.2, 1.0)
    trend = np.exp(rng.uniform(-0.1, 0.1, size=(4, N_SKUS, 1)) * (t - N_DAYS) / 365.0)
    base = season * trend * (weekday * payday)[None, None, :]
    # promotions: random chain-wide weeks, then the ones that overlap events
    week = (t + 0) // 7
    promo = np.repeat(rng.random((N_SKUS, week[-1] + 1)) < 0.05, 7, axis=1)[:, :N_DAYS]
    promo = np.broadcast_to(promo[None], (4, N_SKUS, N_DAYS)).copy()
    lift = rng.uniform(1.4, 1.8, size=N_SKUS)
    effect = np.ones_like(base)
    for etype, region, start, n in _events():
        t0, r = (start - START).days, REGIONS.index(region)
        if etype == "fair":
            promo[:, 0, t0 - 6 : t0 + 1] = True
        if etype == "parade":
            promo[r, 1, t0 : t0 + n] = True
        if etype == "market":
            promo[:, 2, t0 : t0 + n] = True
            effect[r, 2, t0 : t0 + n] = MARKET_LIFT
    base = base * np.where(promo, lift[None, :, None], 1.0)
    rate = rng.uniform(6.0, 12.0, size=(1, N_SKUS, 1))
    scale = rng.uniform(0.6, 1.5, size=12)
    frames = []
    for s in range(12):
        r = s // 3
        mean = rate[0] * scale[s] * base[r] * effect[r]
        units = rng.poisson(mean * rng.gamma(20.0, 1 / 20.0, size=mean.shape)).astype(float)
        frames.append(
            pl.DataFrame(
                {
                    "date": np.tile(days, N_SKUS),
                    "store_id": f"T{s:02d}",
                    "sku": np.repeat(np.array(SKUS), N_DAYS),
                    "units": units.ravel(),
                    "revenue": units.ravel() * 3.0,
                    "on_hand": np.full(units.size, 50.0),
                    "promo": promo[r].ravel(),
                }
            )
        )
    sales = pl.concat(frames).with_columns(pl.col("date").cast(pl.Date))
    share = np.array([0.05, 0.08, 0.1, 0.06])[:, None, None]
    online = rng.poisson(rate * scale.reshape(4, 3).sum(axis=1)[:, None, None] * base * effect * share)
    r, k, d = np.meshgrid(np.arange(4), np.arange(N_SKUS), np.arange(N_DAYS), indexing="ij")
    orders = pl.DataFrame(
        {
            "region": np.array(REGIONS)[r.ravel()],
            "sku": np.array(SKUS)[k.ravel()],
            "date": days[d.ravel()],
            "units": online.ravel().astype(float),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    return sales, orders.filter(pl.col("units") > 0)


def _events_frame() -> pl.DataFrame:
    rows = [(f"E{i:03d}", t, r, s, s + timedelta(days=n - 1)) for i, (t, r, s, n) in enumerate(_events())]
    return pl.DataFrame(
        rows, schema=["event_id", "event_type", "region", "start_date", "end_date"], orient="row"
    )


def _mine(seed: int, *, with_promo: bool) -> pl.DataFrame:
    sales, orders = _world(seed)
    stores = pl.LazyFrame(
        {"store_id": [f"T{s:02d}" for s in range(12)], "region": [REGIONS[s // 3] for s in range(12)]}
    )
    clean = clean_store_sales(sales.lazy(), stores, as_of=AS_OF)
    hyp = event_uplift_hypotheses(
        clean,
        orders.lazy(),
        _events_frame().lazy(),
        pl.LazyFrame({"region": list(REGIONS)}),
        as_of=AS_OF,
        settings=SETTINGS,
        promo=sales.lazy() if with_promo else None,
    )
    return apply_fdr(hyp.with_columns(pl.lit("event_uplift").alias("kind")), SETTINGS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_promotion_overlapping_a_no_effect_event_gives_no_pattern(seed: int) -> None:
    found = _mine(seed, with_promo=True)
    null = found.filter(pl.col("event_type").is_in(["fair", "parade"]))
    assert null.height == 0, null.select("event_type", "region", "sku", "lift", "q_value")
    market = found.filter((pl.col("event_type") == "market") & (pl.col("sku") == "P2"))
    assert market["region"].to_list() == ["R3"], found
    assert abs(market["lift"].item() / MARKET_LIFT - 1) < 0.25, market
    assert found.filter(pl.col("event_type") == "market").height == 1, found


def test_without_the_promo_flag_the_promotions_read_as_event_effects() -> None:
    found = _mine(1, with_promo=False)
    null = found.filter(pl.col("event_type").is_in(["fair", "parade"]))
    assert null.height > 0
