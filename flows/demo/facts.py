"""Fact rows of a demo world: daily store sales (in store batches, memory bounded) and online order lines.

All vectorised with numpy; each stream has its own seeded generator, so a batch's rows do not depend on
how many batches came before it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from flows.demo.catalog import FOREIGN_POSTAL_PREFIXES, size_spec
from flows.demo.world import World

ONLINE_SHARE = (0.02, 0.1)  # online units as a share of the region's true demand: drawn per region
STOCK_COVER = (1.5, 4.0)  # a store's shelf holds this many days of its normal demand, plus a few units
UNITS_PER_LINE = 1.25  # mean units on an online order line (1 + Poisson(0.25))
KEEP_ZERO_DAYS = 0.15  # share of zero-sale days exported as an explicit 0 row (the rest are absent)
DEMAND_SHAPE = 4.0  # a store-day's demand: its mean x gamma(shape, 1 / shape), negative binomial of this size


def _rng(world: World, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([world.seed, *stream]))


def store_traffic(world: World) -> np.ndarray:
    """Return (N, D) float32 store-day traffic noise (mean 1), shared by every SKU of a store."""
    rng = _rng(world, 2)
    shape = (len(world.store_region), world.n_days)
    return rng.lognormal(-(0.08**2) / 2, 0.08, size=shape).astype(np.float32)


def store_batches(world: World) -> list[np.ndarray]:
    """Return the carry pairs cut into batches of whole stores of at most ~batch_cells store-SKU-days."""
    cap = size_spec(world.size).batch_cells // world.n_days
    _, counts = np.unique(world.pairs[:, 0], return_counts=True)
    batches: list[np.ndarray] = []
    start, used = 0, 0
    for n in counts:
        if used and used + n > cap:
            batches.append(world.pairs[start : start + used])
            start, used = start + used, 0
        used += int(n)
    batches.append(world.pairs[start : start + used])
    return batches


def regional_factors(world: World) -> np.ndarray:
    """Return (R, S, D) float32 regional drift: each region's own trend per SKU and a stronger or weaker
    annual season than the chain's (hot regions' summers are hotter), 1 on the last day."""
    rng = _rng(world, 5)
    n_regions, (n_skus, n_days) = len(world.regions), world.season.shape
    t = (np.arange(n_days) - (n_days - 1)) / 365.0
    growth = rng.normal(0.0, 0.04, size=(n_regions, n_skus, 1))
    doy = (world.dates - world.dates.astype("datetime64[Y]")).astype(np.int64)
    hot = np.array([1.0 if r.hot else -1.0 if r.northern else 0.0 for r in world.regions])[:, None, None]
    summer = np.cos(2 * np.pi * (doy - 196) / 365.25)[None, None, :]
    swing = 0.05 * hot + rng.normal(0.0, 0.02, size=(n_regions, n_skus, 1))
    return (np.exp(growth * t[None, None, :]) * (1 + swing * summer)).astype(np.float32)


def _demand(
    world: World, rng: np.random.Generator, pairs: np.ndarray, traffic: np.ndarray, local: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (P, D) float32 normal demand (no event, no noise: what a store stocks for) and demand
    (events and gamma noise: over-dispersed counts) of carry pairs."""
    s, k = pairs[:, 0], pairs[:, 1]
    r = world.store_region[s]
    lam = (world.sku_base[k] * world.store_scale[s] * world.taste[r, k]).astype(np.float32)[:, None]
    lam = lam * world.season[k] * local[r, k]
    lam *= np.where(world.promo[k], world.promo_lift[k, None], 1.0).astype(np.float32)
    demand = lam * world.event_mult[r, k] * traffic[s]
    return lam, demand * rng.gamma(DEMAND_SHAPE, 1 / DEMAND_SHAPE, size=lam.shape).astype(np.float32)


def _stockouts(rng: np.random.Generator, n_pairs: int, n_days: int) -> np.ndarray:
    """Return (P, D) bool: runs of 1-8 days with an empty shelf, about one run per pair and half year."""
    n_runs = rng.poisson(n_days / 180, size=n_pairs)
    pair = np.repeat(np.arange(n_pairs), n_runs)
    first = rng.integers(0, n_days, size=len(pair))
    last = np.minimum(first + 1 + np.minimum(rng.poisson(2.5, size=len(pair)), 7), n_days)
    diff = np.zeros((n_pairs, n_days + 1), dtype=np.int16)
    np.add.at(diff, (pair, first), 1)
    np.add.at(diff, (pair, last), -1)
    return np.cumsum(diff[:, :n_days], axis=1) > 0


def sales_block(world: World, batch: int, pairs: np.ndarray, traffic: np.ndarray) -> pl.DataFrame:
    """Return the store_sales rows of one batch of carry pairs, sorted by date, store and SKU.

    Each store-day starts with a few days of the pair's *normal* demand on the shelf: on an event
    peak demand outruns it, the store sells what it has and ends the day empty (``on_hand == 0``,
    units = the stock): demand-driven sell-outs. Runs of days with an empty shelf (a missed
    delivery) sell nothing at all."""
    rng = _rng(world, 3, batch)
    n_days = world.n_days
    normal, lam = _demand(world, rng, pairs, traffic, regional_factors(world))
    demand = rng.poisson(lam).astype(np.int64)
    stock = np.ceil(normal * rng.uniform(*STOCK_COVER, size=normal.shape)).astype(np.int64) + 3
    out = _stockouts(rng, len(pairs), n_days)
    units = np.minimum(demand, stock)
    returns = (rng.random(units.shape) < 0.0025) & ~out  # a return day: net units may go negative
    units -= returns * (1 + rng.poisson(0.4, size=units.shape))
    units[out] = 0
    on_hand = np.where(out, 0, np.maximum(stock - np.maximum(units, 0), 0))
    days = np.arange(n_days)
    carried = (days >= pairs[:, 2, None]) & (days < pairs[:, 3, None])
    keep = carried & ((units != 0) | out | (rng.random(units.shape) < KEEP_ZERO_DAYS))
    t_idx, p_idx = np.nonzero(keep.T)  # day-major: the export is sorted by date, then store and SKU
    s, k = pairs[p_idx, 0], pairs[p_idx, 1]
    u = units[p_idx, t_idx]
    promo = world.promo[k, t_idx]
    price = world.sku_price[k] * (1 - world.promo_discount[k] * promo)
    return pl.DataFrame(
        {
            "date": world.dates[t_idx],
            "store_id": world.stores["store_id"].gather(s),
            "sku": world.products["sku"].gather(k),
            "units": u,
            "revenue": np.round(u * price, 2),
            "on_hand": on_hand[p_idx, t_idx].astype(np.int64),
            "promo": promo,
        }
    )


def online_shares(world: World) -> np.ndarray:
    """Return (R,) each region's online units as a share of its true demand."""
    return _rng(world, 6).uniform(*ONLINE_SHARE, size=len(world.regions))


def _online_lines(world: World, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Return online order lines (region, sku, day, units), sorted by region, day and a random key."""
    n_regions = len(world.regions)
    store_weight = np.array([world.store_scale[world.store_region == r].sum() for r in range(n_regions)])
    noise = rng.lognormal(-(0.1**2) / 2, 0.1, size=(n_regions, 1, world.n_days)).astype(np.float32)
    lam = (world.sku_base[None, :] * world.taste * store_weight[:, None]).astype(np.float32)[:, :, None]
    lam = lam * world.season[None] * regional_factors(world) * world.event_mult * noise
    lam *= np.where(world.promo, world.promo_lift[:, None], 1.0).astype(np.float32)[None]
    share = online_shares(world).astype(np.float32)[:, None, None]
    n = rng.poisson(lam * (share / UNITS_PER_LINE))
    r, k, t = np.nonzero(n)
    reps = n[r, k, t]
    r, k, t = np.repeat(r, reps), np.repeat(k, reps), np.repeat(t, reps)
    order = np.lexsort((rng.random(len(r)), t, r))
    units = 1 + rng.poisson(UNITS_PER_LINE - 1, size=len(r))
    return {"region": r[order], "sku": k[order], "day": t[order], "units": units}


def _pick(rng: np.random.Generator, groups: list[np.ndarray], which: np.ndarray) -> np.ndarray:
    """Return one random element of groups[which[i]] for each i (vectorised over a ragged list)."""
    sizes = np.array([len(g) for g in groups])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(groups)
    return flat[offsets[which] + np.floor(rng.random(len(which)) * sizes[which]).astype(np.int64)]


def _orders(world: World, rng: np.random.Generator, region: np.ndarray, day: np.ndarray) -> pl.DataFrame:
    """Return one row per order (region, day, time, customer, postal code, fulfillment, order_id)."""
    n = len(region)
    # between 6:00 and 23:59 local, busiest early afternoon (and never in a DST gap)
    seconds = (6 * 3600 + rng.beta(2.2, 2.0, size=n) * 17.9 * 3600).astype(np.int64)
    pool = np.maximum(50, np.bincount(region, minlength=len(world.regions)) // 4)[region]
    customer = region * 10**7 + np.floor(pool * rng.random(n) ** 2).astype(np.int64)  # loyal few, many once
    foreign = rng.random(n) < 0.01  # shipped where the chain has no region: unmapped postal code
    foreign_codes = np.array([f"{p}{i:02d}" for p in FOREIGN_POSTAL_PREFIXES for i in range(1, 99)])
    postal = np.where(
        foreign, rng.choice(foreign_codes, size=n), _pick(rng, list(world.region_postals), region)
    )
    store_groups = [np.flatnonzero(world.store_region == r) for r in range(len(world.regions))]
    pickup = rng.random(n) < 0.3
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((seconds, day))] = np.arange(n)  # order ids follow time, like a real order counter
    return pl.DataFrame(
        {
            "order_id": pl.Series(rank + 104_000, dtype=pl.String).str.zfill(10),
            "rank": rank,
            "region": region,
            "day": day,
            "seconds": seconds,
            "customer_id": pl.Series("C" + pl.Series(customer, dtype=pl.String).str.zfill(8)),
            "guest": rng.random(n) < 0.2,
            "ship_postal_code": postal,
            "fulfillment": np.where(pickup, "pickup", "ship"),
            "pickup_store_id": world.stores["store_id"].gather(_pick(rng, store_groups, region)),
            "pickup": pickup,
        }
    )


def _returns(rng: np.random.Generator, sales: pl.DataFrame, last_day: int) -> pl.DataFrame:
    """Return ~2% of sale lines sent back 2-20 days later: negative lines numbered after the order's lines
    (those falling after the last sales date are not in the export yet)."""
    size = np.bincount(sales["order"].to_numpy())
    picked = sales.filter(pl.Series(rng.random(sales.height) < 0.02))
    return picked.with_columns(
        pl.Series("after", rng.integers(2, 21, size=picked.height)),
        (-pl.col("units")).alias("units"),
        (-pl.col("revenue")).alias("revenue"),
        (pl.Series(size[picked["order"].to_numpy()]) + pl.int_range(pl.len()).over("order") + 1).alias(
            "line_number"
        ),
    ).filter(pl.col("day") + pl.col("after") <= last_day)


def _utc_offsets(world: World) -> np.ndarray:
    """Return (R, D) UTC offsets ("-05:00") of each region on each date, DST included.

    Taken at noon: orders fall between 6:00 and 24:00 local, never across a DST switch (at 2:00)."""
    noon = pl.Series(world.dates).cast(pl.Datetime("us")).dt.offset_by("12h")
    return np.stack([noon.dt.replace_time_zone(r.tz).dt.strftime("%:z").to_numpy() for r in world.regions])


def online_orders(world: World) -> pl.DataFrame:
    """Return the online order lines as dropped, sorted by order and line: ordered_at an ISO-8601 string
    with the region's UTC offset, null customer_id for guests, returns as negative lines of the order."""
    rng = _rng(world, 4)
    lines = _online_lines(world, rng)
    region, day, k = lines["region"], lines["day"], lines["sku"]
    new = rng.random(len(region)) < 1 / 2.2  # orders of 2.2 lines on average, within one region and day
    new[0] = True
    new[1:] |= (region[1:] != region[:-1]) | (day[1:] != day[:-1])
    order = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    price = world.sku_price[k] * (1 - world.promo_discount[k] * world.promo[k, day])
    sales = pl.DataFrame(
        {
            "order": order,
            "line_number": np.arange(len(order)) - starts[order] + 1,
            "sku": world.products["sku"].gather(k),
            "units": lines["units"],
            "revenue": np.round(lines["units"] * price, 2),
            "day": day,
            "after": np.zeros(len(order), dtype=np.int64),
        }
    )
    orders = _orders(world, rng, region[starts], day[starts]).drop("region", "day").with_row_index("order")
    both = pl.concat([sales, _returns(rng, sales, world.n_days - 1)])
    del sales, lines  # the large world: keep one copy of the lines at a time
    local_day = (both["day"] + both["after"]).to_numpy()
    offset = _utc_offsets(world)[region[both["order"].to_numpy()], local_day]
    local = pl.lit(world.start).cast(pl.Datetime("us")) + pl.duration(
        days=pl.lit(pl.Series(local_day)), seconds=pl.col("seconds")
    )
    return (
        both.with_columns(pl.col("order").cast(pl.UInt32), offset=pl.Series(offset, dtype=pl.String))
        .join(orders, on="order", how="left")
        .sort("rank", "line_number")
        .select(
            "order_id",
            "line_number",
            (local.dt.strftime("%Y-%m-%dT%H:%M:%S") + pl.col("offset")).alias("ordered_at"),
            "sku",
            "units",
            "revenue",
            "ship_postal_code",
            pl.when(~pl.col("guest")).then(pl.col("customer_id")).alias("customer_id"),
            "fulfillment",
            pl.when(pl.col("pickup")).then(pl.col("pickup_store_id")).alias("pickup_store_id"),
        )
    )
