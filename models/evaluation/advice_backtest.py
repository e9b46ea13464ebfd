"""Backtests of the advice, for planners: folds are cutoffs in the past.

* ``event_backtest``: for each of the last events, mine patterns on the data known before the event's
  window and compare the SKUs that would have been pre-stocked with the SKUs that really rose.
* ``assortment_backtest``: for each cutoff, the share of the next ``horizon`` days' demand (all
  channels) that the advised assortment would have carried, beside today's assortment and a chain-wide
  standard assortment.

Demand of a store is its own point-of-sale units plus the online units shipped to its region, split
equally among the region's stores (online orders carry a postal code, not a store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta

import polars as pl

from data_contracts.schemas import CHAIN_WIDE
from data_contracts.tables import LakeTables
from models.advice.assortment import store_category_capacity
from models.advice.prestock import expand_regions, significant_event_patterns


def truncate_tables(tables: LakeTables, cutoff: date) -> LakeTables:
    """Return the tables as they were known at ``cutoff``: store sales with date <= cutoff, online
    orders with order_date <= cutoff, events that started by the cutoff. Reference tables (stores,
    products, today's assortment and capacity) are kept: their history is not in the drop."""
    return replace(
        tables,
        store_sales=tables.store_sales.filter(pl.col("date") <= cutoff),
        online_orders=tables.online_orders.filter(pl.col("order_date") <= cutoff),
        events=tables.events.filter(pl.col("start_date") <= cutoff),
    )


def store_demand(tables: LakeTables, start: date | None, end: date) -> pl.DataFrame:
    """Return (store_id, sku, units): net demand per store from ``start`` (None: the beginning) to
    ``end`` inclusive, all channels; online units shipped to a region are split equally among its
    stores. Net demand below zero (returns) counts as zero."""
    lo = pl.lit(start) if start is not None else pl.lit(date.min)
    stores = tables.stores.select("store_id", "region").with_columns(
        share=1.0 / pl.len().over("region").cast(pl.Float64)
    )
    sales = tables.store_sales.filter(pl.col("date").is_between(lo, pl.lit(end))).select(
        "store_id", "sku", pl.col("units").cast(pl.Float64)
    )
    online = (
        tables.online_orders.filter(pl.col("order_date").is_between(lo, pl.lit(end)))
        .join(tables.postal_regions.lazy(), left_on="ship_postal_code", right_on="postal_code")
        .group_by("region", "sku")
        .agg(pl.col("units").sum())
        .join(stores.lazy(), on="region")
        .select("store_id", "sku", units=pl.col("units") * pl.col("share"))
    )
    return (
        pl.concat([sales, online])
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum().clip(lower_bound=0.0))
        .collect()
    )


def _region_demand(tables: LakeTables, region: str, start: date, end: date) -> pl.DataFrame:
    """Return (sku, units): all-channel demand of ``region`` (ALL: the chain) from start to end."""
    demand = store_demand(tables, start, end).join(tables.stores.select("store_id", "region"), on="store_id")
    if region != CHAIN_WIDE:
        demand = demand.filter(pl.col("region") == region)
    return demand.group_by("sku").agg(pl.col("units").sum())


def actual_risers(
    tables: LakeTables,
    region: str,
    start_date: date,
    end_date: date,
    *,
    min_lift: float,
    lead_days: int,
    baseline_days: int,
    min_units: float,
) -> set[str]:
    """Return the SKUs whose demand in ``region`` over the event's window (lead_days before start_date
    to end_date) reached ``min_lift`` x the baseline expectation (the mean daily demand over the
    ``baseline_days`` before the window, times the window's length) with at least ``min_units`` units."""
    start, end = start_date - timedelta(days=lead_days), end_date
    days = (end - start).days + 1
    window = _region_demand(tables, region, start, end).rename({"units": "window"})
    base = _region_demand(tables, region, start - timedelta(days=baseline_days), start - timedelta(days=1))
    risen = (
        window.join(base, on="sku", how="left")
        .with_columns(expected=pl.col("units").fill_null(0.0) / baseline_days * days)
        .filter((pl.col("window") >= min_units) & (pl.col("window") >= min_lift * pl.col("expected")))
    )
    return set(risen["sku"].to_list())


def flagged_skus(
    patterns: pl.DataFrame, event_type: str, region: str, regions: pl.Series, *, fdr_alpha: float = 0.05
) -> set[str]:
    """Return the SKUs plan_prestock would stock for ``event_type`` in ``region`` (ALL: any region)."""
    sig = expand_regions(significant_event_patterns(patterns, fdr_alpha=fdr_alpha), regions).filter(
        pl.col("event_type") == event_type
    )
    if region != CHAIN_WIDE:
        sig = sig.filter(pl.col("region") == region)
    return set(sig["sku"].to_list())


EVENT_BACKTEST_SCHEMA = pl.Schema(
    {
        "event_id": pl.String,
        "event_type": pl.String,
        "region": pl.String,
        "start_date": pl.Date,
        "cutoff": pl.Date,
        "flagged": pl.Int64,
        "actual_risers": pl.Int64,
        "hits": pl.Int64,
        "precision": pl.Float64,
        "recall": pl.Float64,
    }
)
ASSORTMENT_BACKTEST_SCHEMA = pl.Schema(
    {"cutoff": pl.Date, "store_id": pl.String, "strategy": pl.String, "demand_covered_share": pl.Float64}
)


def held_out_events(tables: LakeTables, *, last_n: int, lead_days: int, baseline_days: int) -> pl.DataFrame:
    """Return the last ``last_n`` event rows (event x region) whose window and baseline both lie inside
    the store sales' date range, oldest first."""
    bounds = tables.store_sales.select(first=pl.col("date").min(), last=pl.col("date").max()).collect()
    first, last = bounds["first"][0], bounds["last"][0]
    if first is None:
        return tables.events.clear()
    earliest = first + timedelta(days=lead_days + baseline_days)
    return (
        tables.events.filter((pl.col("end_date") <= last) & (pl.col("start_date") >= earliest))
        .sort("start_date", "event_id", "region")
        .tail(last_n)
    )


def event_backtest(
    tables: LakeTables,
    *,
    mine: Callable[[LakeTables, date], pl.DataFrame],
    min_lift: float,
    last_n: int = 8,
    lead_days: int,
    baseline_days: int,
    fdr_alpha: float,
    min_units: float = 5.0,
) -> pl.DataFrame:
    """Return one row per held-out event (EVENT_BACKTEST_SCHEMA): patterns mined by ``mine`` on the
    data before the event's window (cutoff = start_date - lead_days - 1), the SKUs they flag for that
    event type and region, the SKUs that really rose (see ``actual_risers``), hits, precision (null
    when nothing was flagged) and recall (null when nothing rose). Mining runs once per cutoff."""
    regions = tables.stores["region"]
    mined: dict[date, pl.DataFrame] = {}
    rows = []
    held = held_out_events(tables, last_n=last_n, lead_days=lead_days, baseline_days=baseline_days)
    for ev in held.iter_rows(named=True):
        cutoff = ev["start_date"] - timedelta(days=lead_days + 1)
        if cutoff not in mined:  # an event over several regions shares one cutoff
            mined[cutoff] = mine(truncate_tables(tables, cutoff), cutoff)
        flagged = flagged_skus(mined[cutoff], ev["event_type"], ev["region"], regions, fdr_alpha=fdr_alpha)
        risers = actual_risers(
            tables,
            ev["region"],
            ev["start_date"],
            ev["end_date"],
            min_lift=min_lift,
            lead_days=lead_days,
            baseline_days=baseline_days,
            min_units=min_units,
        )
        hits = len(flagged & risers)
        rows.append(
            {
                **{k: ev[k] for k in ("event_id", "event_type", "region", "start_date")},
                "cutoff": cutoff,
                "flagged": len(flagged),
                "actual_risers": len(risers),
                "hits": hits,
                "precision": hits / len(flagged) if flagged else None,
                "recall": hits / len(risers) if risers else None,
            }
        )
    return pl.DataFrame(rows, schema=EVENT_BACKTEST_SCHEMA)


def standard_assortment(tables: LakeTables, history: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, sku): each store x category gets the chain's top-N SKUs of that category by
    demand in ``history`` (store_id, sku, units), N = the store-category's capacity."""
    chain = (
        history.group_by("sku")
        .agg(pl.col("units").sum())
        .filter(pl.col("units") > 0)
        .join(tables.products.select("sku", "category"), on="sku")
        .sort(["category", "units", "sku"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("category"))
    )
    capacity = store_category_capacity(tables).select("store_id", "category", "capacity")
    return (
        capacity.join(chain, on="category")
        .filter(pl.col("rank") <= pl.col("capacity"))
        .select("store_id", "sku")
    )


def covered_shares(demand: pl.DataFrame, strategies: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Return (store_id, strategy, demand_covered_share): per store and over ALL stores, the share of
    ``demand`` (store_id, sku, units) on SKUs in each strategy's (store_id, sku) set; null when the
    store had no demand."""
    parts = []
    for name, pairs in strategies.items():
        marked = demand.join(
            pairs.select("store_id", "sku").unique().with_columns(_in=pl.lit(True)),
            on=["store_id", "sku"],
            how="left",
        ).with_columns(covered=pl.when(pl.col("_in")).then(pl.col("units")).otherwise(0.0))
        per_store = marked.group_by("store_id").agg(pl.col("covered").sum(), total=pl.col("units").sum())
        every = per_store.select(pl.lit(CHAIN_WIDE).alias("store_id"), pl.col("covered", "total").sum())
        parts.append(pl.concat([every, per_store]).with_columns(strategy=pl.lit(name)))
    share = pl.when(pl.col("total") > 0).then(pl.col("covered") / pl.col("total"))
    return pl.concat(parts).select("store_id", "strategy", demand_covered_share=share)


def assortment_backtest(
    tables: LakeTables,
    *,
    cutoffs: Sequence[date],
    horizon: int,
    advise: Callable[[LakeTables, date], pl.DataFrame],
) -> pl.DataFrame:
    """Return ASSORTMENT_BACKTEST_SCHEMA rows: per cutoff, store (and 'ALL') and strategy (advised:
    add + keep of ``advise(truncated tables, cutoff)``; today: tables.assortment; standard: see
    ``standard_assortment`` on the demand up to the cutoff), the share of the demand from cutoff+1 to
    cutoff+horizon that the strategy's SKUs would have carried."""
    parts = []
    for cutoff in sorted(set(cutoffs)):
        known = truncate_tables(tables, cutoff)
        advice = advise(known, cutoff)
        strategies = {
            "advised": advice.filter(pl.col("action").is_in(["add", "keep"])),
            "today": tables.assortment,
            "standard": standard_assortment(tables, store_demand(known, None, cutoff)),
        }
        held_out = store_demand(tables, cutoff + timedelta(days=1), cutoff + timedelta(days=horizon))
        parts.append(covered_shares(held_out, strategies).with_columns(cutoff=pl.lit(cutoff)))
    if not parts:
        return pl.DataFrame(schema=ASSORTMENT_BACKTEST_SCHEMA)
    return (
        pl.concat(parts)
        .select(ASSORTMENT_BACKTEST_SCHEMA.names())
        .cast(dict(ASSORTMENT_BACKTEST_SCHEMA))
        .sort("cutoff", "store_id", "strategy")
    )
