"""Local affinity: a SKU's share of demand in a region against its chain-wide share.

Shares are taken only among stores that carry the SKU (a store carries it from the first to the last
week it sells it), so a region that simply lists the SKU in more stores shows no affinity. Expected
units of a SKU in a store-week = the store's size x the SKU's chain rate, fitted by a few rounds of
iterative proportional fitting over carried cells only: a store's size is its units over the chain
rates of the SKUs *it* carries, so a store with a narrower assortment (whose every SKU takes a bigger
share of its sales) is not read as loving them all. Per region and week: observed = the SKU's units in
the region's carrying stores, expected = the sum of their expected units; lift = sum(observed) /
sum(expected) over weeks, i.e. the region's share / the chain-wide share. (The chain includes the
region itself, so with few regions a strong local favourite also shows as a weaker opposite lift
elsewhere: that is what "against the chain-wide share" means.)

Weeks touched by an event window in a region are left out for that region (and from the chain rates),
so event spikes are reported as event uplift, not as a regional taste. Test: two-sided t-test on weekly
log ratios (``models.mining.stats``), support = weeks.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from features.signals import carried_weeks, event_window_days, full_weeks, week_of, weekly_store_units
from models.mining.settings import MiningSettings
from models.mining.stats import weekly_ratio_test

KEYS = ("region", "sku")


def event_weeks(instances: pl.LazyFrame) -> pl.LazyFrame:
    """Weeks touched by any event window, per region. Returns columns region, week."""
    return event_window_days(instances).select("region", week_of("date").alias("week")).unique()


def _store_sku_weeks(sales: pl.LazyFrame, busy: pl.LazyFrame, *, first: date, as_of: date) -> pl.LazyFrame:
    """Units per carried store x SKU x full week (zeros filled), event weeks of the region left out.

    Returns columns store_id, region, sku, week, units.
    """
    weekly = weekly_store_units(sales)
    open_weeks = weekly.select("store_id", "week").unique()  # no sale at all that week: store closed
    return (
        carried_weeks(sales)
        .join(open_weeks, on=["store_id", "week"])
        .join(weekly.select("store_id", "sku", "week", "units"), on=["store_id", "sku", "week"], how="left")
        .with_columns(pl.col("units").fill_null(0.0))
        .pipe(full_weeks, first=first, as_of=as_of)
        .join(busy, on=["region", "week"], how="anti")
    )


def _expected(cells: pl.DataFrame, *, rounds: int = 3) -> pl.DataFrame:
    """Add ``expected``: store size x SKU rate, fitted by alternating (iterative proportional) updates.

    A store's size is its units over the sum of the chain rates of the SKUs it carries, so a store
    carrying fewer SKUs is not mistaken for a small store and its SKUs for local favourites. Eager on
    purpose: each round reuses the previous one twice, which a lazy plan would recompute.
    """
    store_units = pl.col("units").sum().over("store_id", "week")
    fitted = cells.with_columns((store_units / store_units.mean().over("week")).alias("size"))
    for _ in range(rounds):
        rates = fitted.group_by("sku", "week").agg(
            (pl.col("units").sum() / pl.col("size").sum()).alias("rate")
        )
        fitted = (
            fitted.drop("size", "rate", strict=False)
            .join(rates, on=["sku", "week"])
            .with_columns((store_units / pl.col("rate").sum().over("store_id", "week")).alias("size"))
        )
    rates = fitted.group_by("sku", "week").agg((pl.col("units").sum() / pl.col("size").sum()).alias("rate"))
    return (
        fitted.drop("rate")
        .join(rates, on=["sku", "week"])
        .with_columns((pl.col("size") * pl.col("rate")).fill_nan(0.0).alias("expected"))
    )


def affinity_weekly(sales: pl.LazyFrame, busy: pl.LazyFrame, *, first: date, as_of: date) -> pl.DataFrame:
    """Observed and expected units per region, SKU and full week, among stores that carry the SKU.

    ``sales`` is ``features.signals.clean_store_sales`` output, ``busy`` the (region, week) pairs to
    leave out. Returns columns region, sku, week, observed, expected.
    """
    cells = _expected(_store_sku_weeks(sales, busy, first=first, as_of=as_of).collect())
    return cells.group_by("region", "sku", "week").agg(
        pl.col("units").sum().alias("observed"), pl.col("expected").sum()
    )


def affinity_hypotheses(
    sales: pl.LazyFrame, instances: pl.LazyFrame, *, first: date, as_of: date, settings: MiningSettings
) -> pl.DataFrame:
    """Every local affinity hypothesis tested (two-sided), with the columns of
    ``models.mining.stats.weekly_ratio_test`` keyed by region and sku.
    """
    weekly = affinity_weekly(sales, event_weeks(instances), first=first, as_of=as_of)
    if weekly["region"].n_unique() < 2:
        # one region is the chain: its share cannot differ from itself
        weekly = weekly.clear()
    return weekly_ratio_test(weekly, KEYS, alternative="two-sided", min_weeks=settings.min_weeks)
