"""The demo world built from a seed: reference tables, demand components and the planted truth.

Demand of SKU k in store s (region r) on day t is

    base[k] * scale[s] * season[k, t] * taste[r, k] * event_mult[r, k, t] * promo factor * noise

`demo_facts` turns it into store sales (only where and when the store carries the SKU) and online orders
(the region's demand whatever its stores carry). Everything planted is written to the truth dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from data_contracts.schemas import ASSORTMENT, MUST_CARRY, PRODUCTS, SHELF_CAPACITY, STORES
from flows.demo.catalog import CATEGORIES, REGIONS, CategorySpec, RegionSpec, SizeSpec, size_spec
from flows.demo.events import apply_events, events_frame, schedule
from flows.demo.unlabeled import plant_unlabeled, unlabeled_truth

AS_OF = date(2025, 6, 30)  # last sales date of every demo world
HISTORY_DAYS = 731  # two years: 2023-07-01 .. 2025-06-30 (SizeSpec.days: `m5` has more)
FORMATS = (("supercenter", 1.7, 0.95), ("standard", 1.0, 0.8), ("neighborhood", 0.55, 0.6))
FORMAT_P = (0.3, 0.45, 0.25)


@dataclass(frozen=True)
class World:
    """One demo world: reference tables (contract schemas) plus the arrays demand is drawn from."""

    size: str
    seed: int
    start: date
    as_of: date
    regions: tuple[RegionSpec, ...]
    stores: pl.DataFrame
    products: pl.DataFrame
    postal_regions: pl.DataFrame
    assortment: pl.DataFrame
    shelf_capacity: pl.DataFrame
    events: pl.DataFrame
    store_region: np.ndarray  # (N,) region index per store (row order of `stores`)
    store_scale: np.ndarray  # (N,) traffic scale per store
    region_postals: tuple[np.ndarray, ...]  # postal codes per region
    sku_base: np.ndarray  # (S,) units per day in a scale-1 store (row order of `products`)
    sku_price: np.ndarray  # (S,)
    promo_discount: np.ndarray  # (S,) price cut on promo days
    promo_lift: np.ndarray  # (S,) demand multiplier on promo days
    promo: np.ndarray  # (S, D) bool
    season: np.ndarray  # (S, D) float32: weekly x yearly x trend
    taste: np.ndarray  # (R, S) regional taste multipliers
    event_mult: np.ndarray  # (R, S, D) float32 event multipliers
    pairs: np.ndarray  # (M, 4) int64: store, sku, first day, end day (exclusive) the store carries it
    truth: dict[str, Any]
    must_carry: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MUST_CARRY.schema))

    @property
    def n_days(self) -> int:
        return self.season.shape[1]

    @property
    def dates(self) -> np.ndarray:
        """(D,) datetime64[D] business dates."""
        return np.arange(np.datetime64(self.start), np.datetime64(self.as_of) + 1)


def _postal_codes(rng: np.random.Generator, region: RegionSpec, n: int) -> dict[str, list[str]]:
    """Return state -> unique 5-digit postal codes (strings, leading zeros kept)."""
    out: dict[str, list[str]] = {}
    per_state = max(4, n // len(region.states))
    for state, prefix in region.states:
        width = 5 - len(prefix)
        picks = rng.choice(10**width, size=per_state, replace=False)
        out[state] = [f"{prefix}{int(x):0{width}d}" for x in np.sort(picks)]
    return out


def _build_stores(
    rng: np.random.Generator, regions: tuple[RegionSpec, ...], spec: SizeSpec
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, tuple[np.ndarray, ...], pl.DataFrame, np.ndarray]:
    """Return stores, store region index, store scale, postal codes per region, postal_regions and the
    store's inclusion probability for regional SKUs (bigger formats carry more)."""
    counts = rng.integers(spec.stores_per_region[0], spec.stores_per_region[1] + 1, size=len(regions))
    ids = rng.permutation(np.sort(rng.choice(np.arange(1, 1500), size=int(counts.sum()), replace=False)))
    rows: list[dict[str, Any]] = []
    postal_rows: list[tuple[str, str]] = []
    region_postals: list[np.ndarray] = []
    region_idx, scale, carry_p = [], [], []
    for r, region in enumerate(regions):
        codes = _postal_codes(rng, region, spec.postal_per_region)
        region_postals.append(np.array([c for cs in codes.values() for c in cs]))
        postal_rows += [(c, region.name) for cs in codes.values() for c in cs]
        for _ in range(int(counts[r])):
            state = region.states[int(rng.integers(len(region.states)))][0]
            fmt, fmt_scale, p = FORMATS[int(rng.choice(len(FORMATS), p=FORMAT_P))]
            rows.append(
                {
                    "store_id": f"{int(ids[len(rows)]):04d}",
                    "region": region.name,
                    "state": state,
                    "postal_code": str(rng.choice(codes[state])),
                    "latitude": round(region.lat + float(rng.normal(0, 0.8)), 5),
                    "longitude": round(region.lon + float(rng.normal(0, 1.0)), 5),
                    "format": fmt,
                }
            )
            region_idx.append(r)
            scale.append(fmt_scale * float(rng.lognormal(0, 0.2)))
            carry_p.append(p)
    stores = pl.DataFrame(rows, schema=STORES.schema)
    postal = pl.DataFrame(postal_rows, schema=["postal_code", "region"], orient="row").sort("postal_code")
    return (stores, np.array(region_idx), np.array(scale), tuple(region_postals), postal, np.array(carry_p))


def _category_counts(n_skus: int) -> list[int]:
    """Return how many SKUs each category gets (weights of the catalogue, anchors always fit)."""
    w = np.array([c.weight for c in CATEGORIES])
    raw = n_skus * w / w.sum()
    counts = np.maximum(np.floor(raw).astype(int), [len(c.anchors) + 3 for c in CATEGORIES])
    order = np.argsort(-(raw - np.floor(raw)))
    i = 0
    while counts.sum() < n_skus:  # hand out the remainder by largest fractional part
        counts[order[i % len(order)]] += 1
        i += 1
    return [int(c) for c in counts]


def _category_items(rng: np.random.Generator, cat: CategorySpec, n: int) -> list[tuple[str, ...]]:
    """Return n (brand, subcategory, noun, variant, size) tuples: the anchors first, then a random draw."""
    combos: list[tuple[str, ...]] = [
        (b, sub, noun, v, s)
        for b in cat.brands
        for sub, noun, variants in cat.items
        for v in variants
        for s, _ in cat.sizes
    ]
    anchors = [next(c for c in combos if (c[0], c[2], c[3], c[4]) == a) for _, a in cat.anchors]
    rest = [c for c in combos if c not in anchors]
    picks = rng.permutation(len(rest))[: max(0, n - len(anchors))]
    return anchors + [rest[int(i)] for i in picks]


def _case_pack(size: str) -> int:
    """Units per case when a store orders: bulky packs come in sixes, the rest in twelves."""
    return 6 if any(big in size for big in ("24pk", "gal", "family")) else 12


def _must_carry(stores: pl.DataFrame, products: pl.DataFrame, roles: dict[str, int]) -> pl.DataFrame:
    """Return must_carry: two staples every store carries (ALL) and one store's own water."""
    sku = products["sku"]
    rows = [
        ("ALL", sku[roles["milk1"]]),
        ("ALL", sku[roles["bread1"]]),
        (stores["store_id"][0], sku[roles["water1"]]),
    ]
    return pl.DataFrame(rows, schema=MUST_CARRY.schema, orient="row")


def _build_products(
    rng: np.random.Generator, n_skus: int
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Return products, category index per SKU, base units per store-day, price, and role -> SKU row."""
    rows: list[dict[str, Any]] = []
    cat_idx, base, price = [], [], []
    roles: dict[str, int] = {}
    drawn = rng.integers(10**9, 10**11, size=2 * n_skus)  # 12-digit UPC-like ids with a leading zero
    _, first = np.unique(drawn, return_index=True)
    codes = drawn[np.sort(first)]
    for c, (cat, n) in enumerate(zip(CATEGORIES, _category_counts(n_skus), strict=True)):
        items = _category_items(rng, cat, n)
        for j, (brand, sub, noun, variant, size) in enumerate(items):
            if j < len(cat.anchors):
                roles[cat.anchors[j][0]] = len(rows)
                # planted SKUs sell steadily enough for their effect to be measurable
                b = float(np.exp(cat.popularity) * rng.uniform(1.5, 2.5))
            else:  # heavy tail: a few best sellers, many slow movers
                b = float(np.clip(np.exp(cat.popularity + rng.normal(0, 1.0)), 0.03, 40.0))
            p = cat.price * dict(cat.sizes)[size] * rng.uniform(0.85, 1.2)
            rows.append(
                {
                    "sku": f"0{int(codes[len(rows)]):011d}",
                    "name": f"{brand} {noun} {variant} {size}",
                    "category": cat.name,
                    "subcategory": sub,
                    "brand": brand,
                    "regular_price": round(max(0.49, round(p * 2) / 2 - 0.01), 2),
                    "case_pack": _case_pack(size),
                }
            )
            cat_idx.append(c)
            base.append(b)
            price.append(rows[-1]["regular_price"])
    products = pl.DataFrame(rows, schema=PRODUCTS.schema)
    return products, np.array(cat_idx), np.array(base), np.array(price), roles


def _season(rng: np.random.Generator, cat_idx: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Return (S, D) float32 weekly x yearly x payday x trend factors (trend is 1 on the last day).

    The confounders of real data: each SKU has its own annual season (its category's cycle with its
    own amplitude and peak day), a month-start payday bump (days 1-3, stronger in some categories)
    and its own trend. Drawn from a child stream, so the rest of the world keeps its draws.
    """
    days = dates.astype(np.int64)
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    dom = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    week = np.array([0.92, 0.88, 0.9, 0.95, 1.08, 1.22, 1.05])
    own = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])  # type: ignore[attr-defined]
    amp = own.lognormal(0.0, 0.35, size=len(cat_idx))
    shift = own.normal(0.0, 20.0, size=len(cat_idx))
    payday = 1 + own.uniform(0.08, 0.2, size=len(CATEGORIES))[cat_idx]
    rows = np.empty((len(cat_idx), len(dates)))
    for c, cat in enumerate(CATEGORIES):
        w = week.copy()
        w[4:6] *= cat.weekend
        w /= w.mean()
        ks = np.flatnonzero(cat_idx == c)
        phase = 2 * np.pi * (doy[None, :] - cat.peak_doy - shift[ks, None]) / 365.25
        yearly = 1 + np.minimum(cat.yearly_amp * amp[ks, None], 0.8) * np.cos(phase)
        rows[ks] = w[dow][None, :] * yearly
    paydays = np.where(dom[None, :] <= 3, payday[:, None], 1.0)
    growth = rng.normal(0.0, 0.08, size=len(cat_idx)) * 2  # yearly growth or decline per SKU
    trend = np.exp(growth[:, None] * (days - days[-1])[None, :] / 365.0)
    return (rows * paydays * trend).astype(np.float32)


def _promos(rng: np.random.Generator, n_skus: int, dates: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return promo (S, D) bool in whole Monday-to-Sunday weeks, promo lift (S,) and discount (S,)."""
    days = dates.astype(np.int64)
    week = (days - days[0] + (days[0] + 3) % 7) // 7
    rate = rng.uniform(0.0, 0.06, size=n_skus)
    weeks = rng.random((n_skus, int(week[-1]) + 1)) < rate[:, None]
    lift = rng.uniform(1.3, 2.0, size=n_skus)
    discount = np.round(rng.uniform(0.1, 0.3, size=n_skus), 2)
    return weeks[:, week], lift, discount


def _plant_tastes(
    rng: np.random.Generator,
    n_regions: int,
    cat_idx: np.ndarray,
    base: np.ndarray,
    roles: dict[str, int],
    spec: SizeSpec,
) -> tuple[np.ndarray, list[dict[str, Any]], list[tuple[int, int]]]:
    """Return taste (R, S), planted local affinities, and latent (region, SKU) pairs (taste set high)."""
    taste = np.exp(rng.normal(0.0, 0.05, size=(n_regions, len(base))))  # mild, below any threshold
    median = np.array([np.median(base[cat_idx == c]) for c in cat_idx])
    eligible = [k for k in range(len(base)) if base[k] >= median[k] and k not in roles.values()]
    picks = rng.permutation(eligible)[: spec.affinity_skus + spec.latent]
    affinity: list[dict[str, Any]] = []
    for k in picks[: spec.affinity_skus]:
        hi, lo = rng.choice(n_regions, size=2, replace=False)
        taste[hi, k], taste[lo, k] = round(rng.uniform(2.2, 3.0), 2), round(rng.uniform(0.25, 0.4), 2)
        affinity += [
            {"region": int(hi), "sku": int(k), "lift": float(taste[hi, k])},
            {"region": int(lo), "sku": int(k), "lift": float(taste[lo, k])},
        ]
    latent: list[tuple[int, int]] = []
    for i, k in enumerate(picks[spec.affinity_skus :]):
        r = i % n_regions
        taste[r, k] = round(rng.uniform(2.0, 3.0), 2)  # the region wants it, its stores lack it
        latent.append((r, int(k)))
    return taste, affinity, latent


def _build_assortment(
    rng: np.random.Generator,
    store_region: np.ndarray,
    carry_p: np.ndarray,
    cat_idx: np.ndarray,
    base: np.ndarray,
    forced: np.ndarray,
    latent: list[tuple[int, int]],
    n_days: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return carry intervals (M, 4): store, SKU, first day, end day (exclusive) and today's carried (N, S).

    Core SKUs (each category's best quarter and the `forced` ones) are carried everywhere; the rest follow
    a regional planogram thinned by store format. A few pairs were introduced during the history and a few
    discontinued (history but not in today's assortment). Latent SKUs are never carried in their region.
    """
    n_stores, n_skus = len(store_region), len(cat_idx)
    core = forced.copy()
    for c in np.unique(cat_idx):
        ks = np.flatnonzero(cat_idx == c)
        core[ks[np.argsort(-base[ks])][: max(1, len(ks) // 4)]] = True
    planogram = rng.random((int(store_region.max()) + 1, n_skus)) < 0.55
    carried = core[None, :] | (planogram[store_region] & (rng.random((n_stores, n_skus)) < carry_p[:, None]))
    never = np.zeros_like(carried)
    for r, k in latent:
        never[store_region == r, k] = True
    carried &= ~never
    first = np.zeros((n_stores, n_skus), dtype=np.int64)
    end = np.full((n_stores, n_skus), n_days, dtype=np.int64)
    introduced = carried & ~core[None, :] & (rng.random(carried.shape) < 0.06)
    first[introduced] = rng.integers(60, n_days - 120, size=int(introduced.sum()))
    dropped = ~carried & ~never & (rng.random(carried.shape) < 0.04)
    end[dropped] = rng.integers(120, n_days - 60, size=int(dropped.sum()))
    s_idx, k_idx = np.nonzero(carried | dropped)  # row-major: sorted by store, then SKU
    pairs = np.stack([s_idx, k_idx, first[s_idx, k_idx], end[s_idx, k_idx]], axis=1).astype(np.int64)
    return pairs, carried


def _shelf_capacity(
    rng: np.random.Generator, stores: pl.DataFrame, carried: np.ndarray, cat_idx: np.ndarray
) -> pl.DataFrame:
    """Return shelf_capacity: today's count per store and category plus 0-3 free slots (0 about 1 in 3)."""
    counts = np.zeros((carried.shape[0], len(CATEGORIES)), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        counts[:, c] = carried[:, cat_idx == c].sum(axis=1)
    extra = np.where(rng.random(counts.shape) < 0.35, 0, rng.integers(1, 4, size=counts.shape))
    return pl.DataFrame(
        {
            "store_id": np.repeat(stores["store_id"].to_numpy(), len(CATEGORIES)),
            "category": np.tile([c.name for c in CATEGORIES], carried.shape[0]),
            "max_skus": np.maximum(1, counts + extra).ravel(),
        },
        schema=SHELF_CAPACITY.schema,
    )


def _latent_weekly_units(w: World, r: int, k: int) -> float:
    """Return the mean units per store per week region r's stores would sell of SKU k over the last year."""
    last = slice(w.n_days - 364, w.n_days)
    promo = 1 + (w.promo_lift[k] - 1) * w.promo[k, last]
    daily = w.sku_base[k] * w.taste[r, k] * np.mean(w.season[k, last] * w.event_mult[r, k, last] * promo)
    return round(float(7 * daily * w.store_scale[w.store_region == r].mean()), 2)


def _truth(
    w: World,
    events: list[dict[str, Any]],
    affinity: list[dict[str, Any]],
    latent: list[tuple[int, int]],
    null_types: list[str],
) -> dict[str, Any]:
    """Return the planted truth with region names and SKU ids (counts are added when files are cut)."""
    region = [r.name for r in w.regions]
    sku = w.products["sku"].to_list()
    return {
        "as_of": w.as_of.isoformat(),
        "size": w.size,
        "seed": w.seed,
        "notes": {
            "event_uplift.lift": "mean demand multiplier over start_date..end_date (no effect before start)",
            "event_uplift.peak_offset_days": "days from start_date to the peak day (the day before end_date)",
            "local_affinity.lift": "planted regional taste multiplier (chain-wide baseline 1)",
            "latent_demand.weekly_units": "mean store units/week the region's stores would sell if carried",
            "online_orders": "about 5% of each region's true store demand, carried there or not",
        },
        "event_uplift": [{**e, "region": region[e["region"]], "sku": sku[e["sku"]]} for e in events],
        "local_affinity": [{**a, "region": region[a["region"]], "sku": sku[a["sku"]]} for a in affinity],
        "latent_demand": [
            {"region": region[r], "sku": sku[k], "weekly_units": _latent_weekly_units(w, r, k)}
            for r, k in latent
        ],
        "null_event_types": null_types,
        "counts": {},
    }


def build_world(size: str = "small", seed: int = 42, *, unlabeled: bool = True) -> World:
    """Return the demo world of `size` for `seed` (same seed, same world); ``unlabeled=False`` leaves
    out the unlabeled events (flows.demo.unlabeled), the rest of the world unchanged."""
    spec = size_spec(size)  # raises ValueError on an unknown size
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    regions = REGIONS[: spec.regions]
    start = AS_OF - timedelta(days=spec.days - 1)
    dates = np.arange(np.datetime64(start), np.datetime64(AS_OF) + 1)
    stores, store_region, scale, postals, postal_df, carry_p = _build_stores(rng, regions, spec)
    products, cat_idx, base, price, roles = _build_products(rng, spec.skus)
    promo, promo_lift, discount = _promos(rng, spec.skus, dates)
    taste, affinity, latent = _plant_tastes(rng, len(regions), cat_idx, base, roles, spec)
    instances = schedule(rng, regions, start, AS_OF)
    event_mult, event_truth = apply_events(rng, instances, roles, (len(regions), spec.skus, len(dates)))
    forced = np.zeros(spec.skus, dtype=bool)
    forced[list(roles.values()) + [a["sku"] for a in affinity]] = True
    pairs, carried = _build_assortment(rng, store_region, carry_p, cat_idx, base, forced, latent, len(dates))
    hidden = (
        plant_unlabeled(seed, instances, event_mult, base, promo, roles, carried, store_region)
        if unlabeled
        else []
    )
    s_idx, k_idx = np.nonzero(carried)
    assortment = pl.DataFrame(
        {"store_id": stores["store_id"].to_numpy()[s_idx], "sku": products["sku"].to_numpy()[k_idx]},
        schema=ASSORTMENT.schema,
    )
    world = World(
        size=size,
        seed=seed,
        start=start,
        as_of=AS_OF,
        regions=regions,
        stores=stores,
        products=products,
        postal_regions=postal_df,
        assortment=assortment,
        shelf_capacity=_shelf_capacity(rng, stores, carried, cat_idx),
        events=events_frame(instances, regions, start),
        store_region=store_region,
        store_scale=scale,
        region_postals=postals,
        sku_base=base,
        sku_price=price,
        promo_discount=discount,
        promo_lift=promo_lift,
        promo=promo,
        season=_season(rng, cat_idx, dates),
        taste=taste,
        event_mult=event_mult,
        pairs=pairs,
        truth={},
        must_carry=_must_carry(stores, products, roles),
    )
    null_types = sorted({e.spec.name for e in instances if not e.spec.lifts})
    truth = _truth(world, event_truth, affinity, latent, null_types)
    truth["discovered_event"] = unlabeled_truth(
        hidden, [r.name for r in regions], products["sku"].to_list(), start
    )
    return replace(world, truth=truth)
