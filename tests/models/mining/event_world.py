"""A seeded chain whose sales carry the confounders of real data, for the event miner's tests.

Four regions of three stores, eight SKUs, two years of daily Poisson sales with:

* SKU-specific annual seasons (S00-S03 peak in summer, S04-S07 in winter), stronger in R2;
* month-start paydays (+25% on days 1-3 of every month, everywhere);
* trends (each SKU grows or shrinks up to 35% a year, with a regional twist);
* a weekday profile and online orders (a region-specific share of the region's demand, never sold
  out).

Event types (``events`` frame):

* ``storm`` (R0, R1; 6 events each, in summer): S00's demand x4 over the 3 event days. Stores stock
  1.5-4 days of their normal demand, so most sell out on storm days (``on_hand == 0``, units = stock).
* ``holiday`` (chain-wide, 8 events): S05 x2 over its 2 days.
* three no-effect types: ``heatwatch`` (R2, in summer, on the seasonal SKUs' rising slope),
  ``flyer`` (R3, on days 1-3 of the month: paydays) and ``expo`` (R1, all in the last five months,
  when the trends have gone furthest).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

START = date(2023, 1, 2)
N_DAYS = 730
AS_OF = START + timedelta(days=N_DAYS - 1)
REGIONS = ("R0", "R1", "R2", "R3")
SKUS = tuple(f"S{i:02d}" for i in range(8))
STORM_LIFT, HOLIDAY_LIFT = 4.0, 2.0
PAYDAY = 1.25
NULL_TYPES = ("heatwatch", "flyer", "expo")


def _days() -> np.ndarray:
    return np.arange(np.datetime64(START), np.datetime64(START) + N_DAYS)


def _events() -> list[tuple[str, str, date, int]]:
    """(type, region, start, days) of every event."""
    out = []
    for y in (2023, 2024):
        for m, d in ((6, 10), (7, 8), (8, 12)):
            out += [("storm", "R0", date(y, m, d), 3), ("storm", "R1", date(y, m, d + 9), 3)]
        for m, d in ((4, 20), (5, 18), (6, 22)):
            out.append(("heatwatch", "R2", date(y, m, d), 4))
        for m, d in ((2, 14), (5, 27), (9, 2), (11, 23)):
            out.append(("holiday", "ALL", date(y, m, d), 2))
    for m in (1, 3, 4, 6, 7, 9, 10, 12):
        out.append(("flyer", "R3", date(2024, m, 1), 3))
    for m, d in ((8, 5), (9, 9), (10, 14), (11, 11), (12, 9)):
        out.append(("expo", "R1", date(2024, m, d), 3))
    return out


def events_frame() -> pl.DataFrame:
    rows = [(f"E{i:03d}", t, r, s, s + timedelta(days=n - 1)) for i, (t, r, s, n) in enumerate(_events())]
    return pl.DataFrame(
        rows, schema=["event_id", "event_type", "region", "start_date", "end_date"], orient="row"
    )


def _multipliers(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Demand without events (R, S, D) and the event multipliers (R, S, D)."""
    days = _days()
    t = np.arange(N_DAYS)
    doy = (days - days.astype("datetime64[Y]")).astype(int)
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    peak = np.where(np.arange(8) < 4, 190, 15)[None, :, None]
    amp = np.array([0.35, 0.35, 0.5, 0.35])[:, None, None]
    season = 1 + amp * np.cos(2 * np.pi * (doy[None, None, :] - peak) / 365.25)
    growth = rng.uniform(-0.35, 0.35, size=(1, 8, 1)) + rng.normal(0, 0.1, size=(4, 8, 1))
    trend = np.exp(growth * (t - N_DAYS) / 365.0)
    weekday = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.85])[(days.astype(int) + 3) % 7]
    payday = np.where(dom <= 3, PAYDAY, 1.0)
    base = season * trend * (weekday * payday)[None, None, :]
    effect = np.ones_like(base)
    r_index = {r: i for i, r in enumerate(REGIONS)}
    for etype, region, start, n in _events():
        t0 = (start - START).days
        rs = range(4) if region == "ALL" else [r_index[region]]
        for r in rs:
            if etype == "storm":
                effect[r, 0, t0 : t0 + n] = STORM_LIFT
            if etype == "holiday":
                effect[r, 5, t0 : t0 + n] = HOLIDAY_LIFT
    return base, effect


def make_sales(
    *, seed: int = 3, online: bool = True, sell_outs: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Store sales (date, store_id, sku, units, on_hand) and online units per region (region, sku,
    date, units) of the world; the same seed gives the same numbers."""
    rng = np.random.default_rng(seed)
    base, effect = _multipliers(rng)
    rate = rng.uniform(3.0, 9.0, size=(1, 8, 1))
    store_scale = rng.uniform(0.6, 1.5, size=12)
    days = _days()
    frames = []
    for s in range(12):
        r = s // 3
        normal = rate[0] * store_scale[s] * base[r]
        demand = rng.poisson(normal * effect[r] * rng.gamma(8.0, 1 / 8.0, size=normal.shape))
        stock = np.ceil(normal * rng.uniform(1.5, 4.0, size=normal.shape)) + 2
        stock = stock if sell_outs else stock + 10**6
        units = np.minimum(demand, stock)
        frames.append(
            pl.DataFrame(
                {
                    "date": np.tile(days, 8),
                    "store_id": f"T{s:02d}",
                    "sku": np.repeat(np.array(SKUS), N_DAYS),
                    "units": units.ravel().astype(float),
                    "on_hand": (stock - units).ravel().astype(float),
                }
            )
        )
    sales = pl.concat(frames).with_columns(pl.col("date").cast(pl.Date))
    share = np.array([0.04, 0.08, 0.12, 0.06])[:, None, None] if online else np.zeros((4, 1, 1))
    region_rate = rate * store_scale.reshape(4, 3).sum(axis=1)[:, None, None] * base * effect * share
    units = rng.poisson(region_rate)
    r, k, t = np.meshgrid(np.arange(4), np.arange(8), np.arange(N_DAYS), indexing="ij")
    orders = pl.DataFrame(
        {
            "region": np.array(REGIONS)[r.ravel()],
            "sku": np.array(SKUS)[k.ravel()],
            "date": days[t.ravel()],
            "units": units.ravel().astype(float),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    return sales, orders.filter(pl.col("units") > 0)


def stores_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"store_id": [f"T{s:02d}" for s in range(12)], "region": [REGIONS[s // 3] for s in range(12)]}
    )
