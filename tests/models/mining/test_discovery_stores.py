"""The store-by-store check of discovered windows (models.mining.discovery_stores): one store's spike
summed into its region is not a regional event, a region-wide rise is, and a one-store region keeps
the regional test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl

from models.mining.discovery import DiscoverySettings
from models.mining.discovery_rows import NO_PATTERNS, discovered_event_rows
from models.mining.discovery_stores import part_units, store_consistent
from tests.worlds.planted import AS_OF, START, planted_chain

FIRST = date(2024, 3, 1)
DAYS = 60
WINDOW = (30, 2)  # first day, days
SKUS = ("S0", "S1", "S2", "S3")
NORMAL = 10.0  # units per store, SKU and day
ALPHA = 0.05  # the model's overdispersion of a region's window sum
SETTINGS = DiscoverySettings()


def _parts(seed: int) -> pl.DataFrame:
    """Store units around the window: R_ONE (one store of five at 8x on S0-S2), R_ALL (every store at
    2.5x), R_SOLO (its only store at 8x); each region also has a trickle of online orders."""
    rng = np.random.default_rng(seed)
    plans = {"R_ONE": (5, 1, 8.0), "R_ALL": (5, 5, 2.5), "R_SOLO": (1, 1, 8.0)}
    rows = []
    for region, (n_stores, n_hit, lift) in plans.items():
        parts = [f"{region}-{j}" for j in range(n_stores)] + [f"online:{region}"]
        for j, part in enumerate(parts):
            for k, sku in enumerate(SKUS):
                rate = np.full(DAYS, NORMAL if j < n_stores else 1.0)
                if j < n_hit and k < 3:
                    rate[WINDOW[0] : WINDOW[0] + WINDOW[1]] *= lift
                units = rng.poisson(rate)
                rows += [
                    (part, region, sku, FIRST + timedelta(days=t), float(u), False)
                    for t, u in enumerate(units)
                ]
    return pl.DataFrame(rows, schema=["part", "region", "sku", "date", "units", "promo"], orient="row")


def _found(parts: pl.DataFrame) -> pl.DataFrame:
    """What the regional scan reports: S0-S2 of each region's window, the expectation its normal rate."""
    start = FIRST + timedelta(days=WINDOW[0])
    end = start + timedelta(days=WINDOW[1] - 1)
    stores = (
        parts.filter(~pl.col("part").str.starts_with("online"))
        .group_by("region")
        .agg(pl.col("part").n_unique().alias("n"))
    )
    return (
        parts.filter(pl.col("date").is_between(start, end) & pl.col("sku").is_in(SKUS[:3]))
        .group_by("region", "sku")
        .agg(pl.col("units").sum().alias("observed_units"))
        .join(stores, on="region")
        .with_columns(
            (pl.col("region") + ":" + str(start)).alias("event_id"),
            pl.lit(start).alias("window_start"),
            pl.lit(end).alias("window_end"),
            ((pl.col("n") * NORMAL + 1.0) * WINDOW[1]).alias("expected_units"),
            pl.lit(1e-3).alias("p_cutoff"),
        )
        .with_columns(
            (pl.col("expected_units") + ALPHA * pl.col("expected_units") ** 2).alias("variance_units")
        )
        .drop("n")
        .sort("region", "sku")
    )


def test_one_stores_spike_is_dropped_a_region_wide_rise_kept_and_a_one_store_region_kept() -> None:
    for seed in (1, 2, 3):
        parts = _parts(seed)
        found = _found(parts)
        # the regional sums rise in all three regions (one store at 8x of five: about 2.4x)
        assert (found["observed_units"] / found["expected_units"]).min() > 2.0
        kept = store_consistent(found, parts, min_lift=1.5, min_skus=3, reach_days=28, guard_days=1)
        assert sorted(kept["region"].unique()) == ["R_ALL", "R_SOLO"]
        assert kept.filter(pl.col("region") == "R_ALL")["top_share"].max() < 0.4
        assert kept.filter(pl.col("region") == "R_SOLO")["p_rest"].is_null().all()  # not checked


def test_no_window_leaves_nothing_to_check() -> None:
    parts = _parts(1)
    empty = _found(parts).clear()
    assert store_consistent(empty, parts, min_lift=1.5, min_skus=3, reach_days=28, guard_days=1).is_empty()


def _spiked(stores: list[str], lift: float) -> tuple[object, date]:
    """The planted chain with S04-S07 at ``lift`` in ``stores`` for three days."""
    tables = planted_chain(plant=True)
    first = START + timedelta(days=205)
    hit = (
        pl.col("store_id").is_in(stores)
        & pl.col("sku").is_in(["S04", "S05", "S06", "S07"])
        & pl.col("date").is_between(first, first + timedelta(days=2))
    )
    sales = tables.store_sales.with_columns(
        pl.when(hit).then(pl.col("units") * lift).otherwise("units").alias("units")
    )
    return replace(tables, store_sales=sales), first


def _discovered(tables, *, store_check: bool) -> pl.DataFrame:
    settings = SETTINGS.model_copy(update={"store_check": store_check})
    return discovered_event_rows(tables, as_of=AS_OF, mined=NO_PATTERNS, settings=settings)


def test_the_planted_chain_one_stores_spike_is_found_only_without_the_store_check() -> None:
    tables = planted_chain(plant=True)
    r1 = tables.stores.filter(pl.col("region") == "R1")["store_id"].to_list()
    one, first = _spiked(r1[-1:], 12.0)  # R1's biggest store at 12x: the region near 5x
    assert set(_discovered(one, store_check=False)["region"]) == {"R1"}
    assert _discovered(one, store_check=True).is_empty()
    every, _ = _spiked(r1, 5.0)
    rows = _discovered(every, store_check=True)
    assert set(rows["region"]) == {"R1"} and set(rows["sku"]) == {"S04", "S05", "S06", "S07"}
    assert abs((rows["window_start"][0] - first).days) <= 2


def test_part_units_reads_the_candidates_skus_around_their_days() -> None:
    tables = planted_chain(plant=True)
    start = START + timedelta(days=100)
    found = pl.DataFrame(
        {"region": ["R0"], "sku": ["S04"], "window_start": [start], "window_end": [start + timedelta(days=1)]}
    )
    parts = part_units(
        tables.store_sales,
        tables.stores,
        tables.online_orders,
        tables.postal_regions,
        found,
        reach_days=5,
        as_of=AS_OF,
    )
    assert set(parts["sku"]) == {"S04"}
    assert parts["date"].min() == start - timedelta(days=5) and parts["date"].max() == start + timedelta(
        days=6
    )
    assert any(p.startswith("online:") for p in parts["part"]) and "T0" in set(parts["part"])
