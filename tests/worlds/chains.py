"""The one seeded generator of synthetic chains as lake tables: a spec says what the chain looks like,
the seed draws its noise (daily Poisson store sales, empty shelves, online order lines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from data_contracts.tables import LakeTables
from tests.worlds.lake import lake_tables


@dataclass(frozen=True)
class Lift:
    """Demand x ``factor`` for ``sku`` in ``region`` (every region when None), on the day indices from
    ``days[0]`` up to but not including ``days[1]`` (every day when None). Lifts multiply."""

    sku: str
    factor: float
    region: str | None = None
    days: tuple[int, int] | None = None


@dataclass(frozen=True)
class Wholesale:
    """One online customer in ``region`` whose order holds ``units`` of each of ``skus``, every
    ``every`` days from the chain's first day (``irregular``: on each day with chance 1 / ``every``):
    a business reordering by the case, as real web shops have them."""

    skus: tuple[str, ...]
    region: str
    units: float
    every: int = 7
    irregular: bool = False


@dataclass(frozen=True)
class ChainSpec:
    """What a chain looks like; the seed decides nothing here.

    A carried pair's expected units on a day are store scale x SKU level x the weekday's factor x the
    lifts that cover it. Region ``r`` (in the order the stores name them) has postal code ``P{r}``.
    """

    start: date
    days: int
    stores: tuple[str, ...]
    store_regions: tuple[str, ...]  # each store's region
    store_scale: tuple[float, ...]  # each store's demand multiplier
    skus: tuple[str, ...]
    categories: tuple[str, ...]  # each SKU's category
    sku_level: tuple[float, ...]  # each SKU's mean daily units in a store of scale 1
    prices: tuple[float, ...]  # each SKU's regular price; every unit sells at it
    weekday: tuple[float, ...] = (1.0,) * 7  # demand factor, Monday .. Sunday
    lifts: tuple[Lift, ...] = ()  # planted effects on store demand
    not_carried: tuple[tuple[str, str], ...] = ()  # (store, sku) pairs out of the assortment, never sold
    stockout_share: float = 0.0  # share of a carried pair's days with an empty shelf: no sale, on_hand 0
    on_hand: float = 20.0  # the stock figure on the other days
    zero_days: bool = False  # the till reports every carried pair every day (units 0 when nothing sold)
    online_rate: float = 0.0  # expected one-unit order lines per region, SKU and day
    online_lifts: tuple[Lift, ...] = ()  # planted effects on online demand
    wholesale: tuple[Wholesale, ...] = ()  # online customers reordering by the case
    events: pl.DataFrame | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        per_store = {len(self.stores), len(self.store_regions), len(self.store_scale)}
        per_sku = {len(self.skus), len(self.categories), len(self.sku_level), len(self.prices)}
        if len(per_store) != 1 or len(per_sku) != 1 or len(self.weekday) != 7:
            raise ValueError("one region and scale per store, one category, level and price per SKU")

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.store_regions))


def seeded_chain(spec: ChainSpec, seed: int) -> LakeTables:
    """The chain ``spec`` describes as LakeTables; the same spec and seed give the same tables.

    Draws, in this order: for each carried (store, sku) pair (stores outer) the daily units, then which
    days its shelf is empty; then the online order lines of every region, SKU and day at once."""
    rng = np.random.default_rng(seed)
    dates = pl.Series("date", [spec.start + timedelta(days=t) for t in range(spec.days)], pl.Date)
    weekday = np.asarray(spec.weekday)[[d.weekday() for d in dates]]
    lift = _lift(spec.lifts, spec.store_regions, spec.skus, spec.days)
    skip = set(spec.not_carried)
    frames = []
    for i, store in enumerate(spec.stores):
        for j, sku in enumerate(spec.skus):
            if (store, sku) in skip:
                continue
            units = rng.poisson(spec.store_scale[i] * spec.sku_level[j] * weekday * lift[i, j]).astype(float)
            empty = rng.random(spec.days) < spec.stockout_share
            units[empty] = 0.0
            frames.append(
                pl.DataFrame(
                    {
                        "date": dates,
                        "store_id": store,
                        "sku": sku,
                        "units": units,
                        "revenue": units * spec.prices[j],
                        "on_hand": np.where(empty, 0.0, spec.on_hand),
                        "promo": False,
                    }
                )
            )
    sales = pl.concat(frames) if frames else None
    if sales is not None and not spec.zero_days:
        sales = sales.filter((pl.col("units") != 0) | (pl.col("on_hand") == 0))
    region_index = {r: k for k, r in enumerate(spec.regions)}
    stores = pl.DataFrame(
        {
            "store_id": spec.stores,
            "region": spec.store_regions,
            "state": "XX",
            "postal_code": [f"P{region_index[r]}" for r in spec.store_regions],
        }
    )
    products = pl.DataFrame(
        {
            "sku": spec.skus,
            "name": [f"Item {k}" for k in spec.skus],
            "category": spec.categories,
            "regular_price": spec.prices,
        }
    )
    carried = [(s, k) for s in spec.stores for k in spec.skus if (s, k) not in skip]
    return lake_tables(
        stores=stores,
        products=products,
        postal_regions=pl.DataFrame(
            {"postal_code": [f"P{k}" for k in range(len(spec.regions))], "region": spec.regions}
        ),
        assortment=pl.DataFrame(carried, schema=["store_id", "sku"], orient="row"),
        events=spec.events,
        store_sales=sales,
        online_orders=_online_orders(rng, spec),
    )


def _lift(
    lifts: tuple[Lift, ...], row_regions: tuple[str, ...], skus: tuple[str, ...], days: int
) -> np.ndarray:
    """The product of ``lifts`` per (row, sku, day), each row (a store or a region) in its region."""
    out = np.ones((len(row_regions), len(skus), days))
    for lift in lifts:
        rows = [i for i, r in enumerate(row_regions) if lift.region in (None, r)]
        first, stop = lift.days or (0, days)
        out[np.ix_(rows, [skus.index(lift.sku)], np.arange(first, stop))] *= lift.factor
    return out


def _online_orders(rng: np.random.Generator, spec: ChainSpec) -> pl.DataFrame:
    """One-unit order lines, each its own guest order, then the wholesale customers' orders (a customer
    key each), shipped to the region's postal code at midnight UTC."""
    rate = spec.online_rate * _lift(spec.online_lifts, spec.regions, spec.skus, spec.days)
    counts = rng.poisson(rate)
    reg, sku, day = np.nonzero(counts)
    reg, sku, day = (np.repeat(a, counts[reg, sku, day]) for a in (reg, sku, day))
    units = np.ones(len(day))
    customer: list[str | None] = [None] * len(day)
    order = np.arange(len(day))  # each shopper's line its own order
    for w in spec.wholesale:
        if w.irregular:
            days = np.flatnonzero(rng.random(spec.days) < 1 / w.every)
        else:
            days = np.arange(0, spec.days, w.every)
        reg = np.concatenate([reg, np.full(len(days) * len(w.skus), spec.regions.index(w.region))])
        sku = np.concatenate([sku, np.tile([spec.skus.index(k) for k in w.skus], len(days))])
        day = np.concatenate([day, np.repeat(days, len(w.skus))])
        units = np.concatenate([units, np.full(len(days) * len(w.skus), w.units)])
        order = np.concatenate([order, order.size + np.repeat(np.arange(len(days)), len(w.skus))])
        customer += [f"wholesale-{w.region}-{w.skus[0]}"] * (len(days) * len(w.skus))
    return pl.DataFrame(
        {
            "order_id": [f"O{i}" for i in order],
            "line_number": _line_numbers(order),
            "sku": np.array(spec.skus)[sku],
            "units": units,
            "revenue": units * np.asarray(spec.prices)[sku],
            "ship_postal_code": np.array([f"P{k}" for k in range(len(spec.regions))])[reg],
            "order_date": np.datetime64(spec.start, "D") + day,
            "customer_key": pl.Series(customer, dtype=pl.String),
        }
    ).with_columns(
        pl.col("order_date").cast(pl.Date),
        pl.col("order_date").cast(pl.Datetime("us", "UTC")).alias("ordered_at"),
    )


def _line_numbers(order: np.ndarray) -> np.ndarray:
    """1, 2, ... within each order (an order's rows are consecutive)."""
    _, first, which = np.unique(order, return_index=True, return_inverse=True)
    return (np.arange(len(order)) - first[which] + 1).astype(np.int64)
