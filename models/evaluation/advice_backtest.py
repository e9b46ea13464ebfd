"""Backtests of the advice, for planners: folds are cutoffs in the past, judged by what happened next.

* ``assortment_backtest``: at each cutoff the tables are cut to what was known then, *including the
  assortment*: a store carried a SKU at the cutoff when it sold it in the ``carried_days`` before it
  (today's assortment.csv would leak the future). The advice made from those tables, that reconstructed
  assortment ("today") and a chain-wide standard one are scored on the share of the next ``horizon``
  days' demand they carry, on the store measure of that demand (``held_out_store_demand``: a small store
  is not credited with a big store's sales) and, beside it for comparison, the older region measure
  (``held_out_demand``); the ``demand_measure`` column says which.
* ``event_backtest``: for each of the last events, patterns are mined on the data before the event's
  window; the SKUs they flag for that event type and region are compared with the SKUs that really rose.
  "Really rose" is judged without the miner: a difference in differences of all-channel units, the
  event region's window against its own preceding days, divided by the same ratio in control regions
  that no event touched in those days; for a chain-wide event (no control region), the region's own
  ratio on the same days 52 weeks earlier (see ``actual_risers``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import stats

from data_contracts.outputs import ASSORTMENT_BACKTEST_COLUMNS
from data_contracts.tables import LakeTables
from models.advice.assortment import cap_per_store, change_budget, store_category_capacity
from models.advice.prestock import ALL_REGIONS, expand_regions, significant_event_patterns
from models.advice.settings import AssortmentSettings
from models.evaluation.held_out import covered_shares, held_out_demand, held_out_store_demand

EVENT_BACKTEST_SCHEMA = pl.Schema(
    {
        "event_id": pl.String, "event_type": pl.String, "region": pl.String, "start_date": pl.Date,
        "cutoff": pl.Date, "flagged": pl.Int64, "actual_risers": pl.Int64, "hits": pl.Int64,
        "precision": pl.Float64, "recall": pl.Float64, "control": pl.String,
    }
)  # fmt: skip
# the output contract's columns, then which measure of held-out demand a row is scored on (DEMAND_MEASURES)
ASSORTMENT_BACKTEST_SCHEMA = pl.Schema(
    [*ASSORTMENT_BACKTEST_COLUMNS.items(), ("demand_measure", pl.String())]
)
STORE_MEASURE = "store"  # held_out_store_demand: each store's own sales, else a fair share by its volume
REGION_MEASURE = "region"  # held_out_demand: every store credited with the mean of the stores that sold it
DEMAND_MEASURES = (STORE_MEASURE, REGION_MEASURE)  # the headline first
DEMAND_COLUMNS = ("units", "p10", "p90", "units_no_event")  # the forecast columns the advice reads
YEAR = timedelta(days=364)  # 52 weeks: the same weekdays a year earlier


def assortment_at(tables: LakeTables, cutoff: date, *, carried_days: int = 91) -> pl.DataFrame:
    """Return (store_id, sku): the pairs with a store-sales row in the ``carried_days`` up to cutoff."""
    start = cutoff - timedelta(days=carried_days - 1)
    return (
        tables.store_sales.filter(pl.col("date").is_between(pl.lit(start), pl.lit(cutoff)))
        .select("store_id", "sku")
        .unique()
        .collect()
        .sort("store_id", "sku")
    )


def truncate_tables(tables: LakeTables, cutoff: date, *, carried_days: int = 91) -> LakeTables:
    """Return the tables as known at ``cutoff``: facts dated up to it, events started by it, and the
    assortment reconstructed from the sales before it (``assortment_at``). Stores, products, capacity
    and must-carry have no history in the drop and are kept."""
    return replace(
        tables,
        store_sales=tables.store_sales.filter(pl.col("date") <= cutoff),
        online_orders=tables.online_orders.filter(pl.col("order_date") <= cutoff),
        events=tables.events.filter(pl.col("start_date") <= cutoff),
        assortment=assortment_at(tables, cutoff, carried_days=carried_days),
    )


def chain_ranking(tables: LakeTables, known: LakeTables) -> pl.DataFrame:
    """Return (sku, category, units, rank): the chain's SKUs that sold by the cutoff, ranked within
    their category by store units up to it (best first, ties by SKU): the chain-wide standard's order,
    shared by both standard rivals."""
    return (
        known.store_sales.group_by("sku")
        .agg(pl.col("units").sum())
        .collect()
        .filter(pl.col("units") > 0)
        .join(tables.products.select("sku", "category"), on="sku")
        .sort(["category", "units", "sku"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("category"))
    )


def standard_assortment(tables: LakeTables, known: LakeTables, cutoff: date) -> pl.DataFrame:
    """Return (store_id, sku): each store x category gets the chain's top-N SKUs of the category by
    store units up to the cutoff (``chain_ranking``), N = the store-category's capacity at the cutoff."""
    chain = chain_ranking(tables, known)
    capacity = store_category_capacity(known).select("store_id", "category", "capacity")
    return (
        capacity.join(chain, on="category")
        .filter(pl.col("rank") <= pl.col("capacity"))
        .select("store_id", "sku")
    )


def localized_reset(tables: LakeTables, known: LakeTables, value: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, sku): the chain-wide standard's freedom with a local ranking. Each store x
    category gets, up to the capacity at the cutoff, the SKUs of the standard's pool (``chain_ranking``:
    every SKU the chain sold by the cutoff) with the highest ``value`` for that store ((store_id, sku,
    value), e.g. a forecast's expected units or revenue; a pair without a value counts 0). Ties, and
    slots beyond the valued SKUs, go in the chain's order. No change cap, no subcategory rule, no
    evidence bar: every slot is filled, as in ``standard_assortment``; only the order differs."""
    chain = chain_ranking(tables, known).select("sku", "category", chain_rank="rank")
    capacity = store_category_capacity(known).select("store_id", "category", "capacity")
    return (
        capacity.join(chain, on="category")
        .join(value.select("store_id", "sku", "value"), on=["store_id", "sku"], how="left")
        .with_columns(pl.col("value").fill_null(0.0))
        .sort(["store_id", "category", "value", "chain_rank"], descending=[False, False, True, False])
        .with_columns(local_rank=pl.int_range(1, pl.len() + 1).over("store_id", "category"))
        .filter(pl.col("local_rank") <= pl.col("capacity"))
        .select("store_id", "sku")
        .sort("store_id", "sku")
    )


def budgeted_standard(
    tables: LakeTables, known: LakeTables, cutoff: date, settings: AssortmentSettings
) -> pl.DataFrame:
    """Return (store_id, sku): today's shelves moved toward the chain-wide standard under the advice's
    own change budget (``max_changes_share`` of each category's shelf, ``max_changes_per_store``): the
    chain's best missing SKU into each free slot, then in place of the carried SKU that sells least
    chain-wide, best first; a shelf over capacity sheds its weakest first (forced). The fair rival of a
    localized assortment made under that budget: both start from the same shelves and make as many
    changes."""
    ranking = chain_ranking(tables, known)
    chain = dict(ranking.select("sku", "units").iter_rows())
    category = dict(tables.products.select("sku", "category").iter_rows())
    top: dict[str, list[str]] = {}
    for sku, cat in ranking.select("sku", "category").iter_rows():  # best first within each category
        top.setdefault(cat, []).append(sku)
    shelves: dict[tuple[str, str], list[str]] = {}
    for store, sku in known.assortment.select("store_id", "sku").unique().sort("store_id", "sku").iter_rows():
        if sku in category:
            shelves.setdefault((store, category[sku]), []).append(sku)
    changes: list[tuple[str, str, int, str | None, str | None, float, bool]] = []
    for store, cat, _carried, capacity in store_category_capacity(known).iter_rows():
        shelf = sorted(shelves.get((store, cat), []), key=lambda k: -chain.get(k, 0.0))  # best first
        missing = [k for k in top.get(cat, [])[:capacity] if k not in shelf]
        step = 0
        while len(shelf) > capacity:
            changes.append((store, cat, step, None, shelf.pop(), -1.0, True))
            step += 1
        for _ in range(change_budget(capacity, settings)):
            if not missing:
                break
            add = missing[0]
            drop = None if len(shelf) < capacity else shelf[-1]
            if drop is not None and chain.get(add, 0.0) <= chain.get(drop, 0.0):
                break
            missing.pop(0)
            if drop is not None:
                shelf.pop()
            shelf.append(add)
            shelf.sort(key=lambda k: -chain.get(k, 0.0))
            gain = chain.get(add, 0.0) - (chain.get(drop, 0.0) if drop else 0.0)
            changes.append((store, cat, step, add, drop, gain, False))
            step += 1
    schema = {
        "store_id": pl.String, "category": pl.String, "step": pl.Int64, "add_sku": pl.String,
        "drop_sku": pl.String, "gain": pl.Float64, "forced": pl.Boolean,
    }  # fmt: skip
    kept = cap_per_store(pl.DataFrame(changes, schema=schema, orient="row"), settings.max_changes_per_store)
    drops = kept.select("store_id", sku="drop_sku").drop_nulls()
    adds = kept.select("store_id", sku="add_sku").drop_nulls()
    today = known.assortment.select("store_id", "sku").unique()
    return pl.concat([today.join(drops, on=["store_id", "sku"], how="anti"), adds]).unique()


def chain_rate_forecast(known: LakeTables, forecast: pl.DataFrame, *, days: int = 91) -> pl.DataFrame:
    """Return ``forecast`` with every demand column (units, p10, p90, units_no_event) replaced by the
    SKU's chain-wide rate: its units per carrying store and day over the last ``days`` before the
    cutoff (0 for a SKU no store sold), the same in every store and on every day. The advice run on it
    keeps every rule (capacity, subcategories, must-carry, change budget, transference) and loses only
    what is local: the difference to the advice is what localizing adds."""
    columns = [c for c in DEMAND_COLUMNS if c in forecast.columns]
    last = known.store_sales.select(pl.col("date").max()).collect().item()
    if last is None:
        return forecast.with_columns(pl.lit(0.0).alias(c) for c in columns)
    rate = (
        known.store_sales.filter(pl.col("date") > last - timedelta(days=days))
        .join(known.assortment.lazy(), on=["store_id", "sku"], how="semi")
        .group_by("sku")
        .agg(_rate=(pl.col("units").sum() / pl.col("store_id").n_unique() / days).clip(lower_bound=0.0))
        .collect()
    )
    return (
        forecast.join(rate, on="sku", how="left")
        .with_columns(pl.col("_rate").fill_null(0.0).alias(c) for c in columns)
        .drop("_rate")
    )


def assortment_backtest(
    tables: LakeTables,
    *,
    cutoffs: Sequence[date],
    horizon: int,
    advise: Callable[[LakeTables, date], pl.DataFrame],
    carried_days: int = 91,
    settings: AssortmentSettings | None = None,
    measures: Sequence[str] = DEMAND_MEASURES,
) -> pl.DataFrame:
    """Return ASSORTMENT_BACKTEST_SCHEMA rows: per cutoff, measure, store (and ALL) and strategy, the
    share of the demand from cutoff+1 to cutoff+horizon carried by: ``advised``, the add + keep rows of
    ``advise(tables known at the cutoff, cutoff)``; ``today``, the assortment reconstructed at the
    cutoff; ``standard``, the chain-wide standard assortment (every shelf reset); with ``settings``,
    also ``budgeted standard`` (``budgeted_standard``: the standard under the advice's change budget).

    ``measures`` (``demand_measure`` of each row), in this order: ``store`` (the headline,
    ``held_out_store_demand``: a store's own sales where it sold the SKU, else the region's sales shared
    out by store volume, so a small store is not credited with the big stores' sales) and ``region``
    (``held_out_demand``: every store of the region credited with the mean of the stores that sold the
    SKU; kept beside it for comparison with earlier backtests, it flatters adds in small stores)."""
    unknown = [m for m in measures if m not in DEMAND_MEASURES]
    if unknown:
        raise ValueError(f"unknown demand measure(s) {unknown}; known: {list(DEMAND_MEASURES)}")
    held_out = {STORE_MEASURE: held_out_store_demand, REGION_MEASURE: held_out_demand}
    order = {m: i for i, m in enumerate(dict.fromkeys(measures))}
    parts = []
    for cutoff in sorted(set(cutoffs)):
        known = truncate_tables(tables, cutoff, carried_days=carried_days)
        advice = advise(known, cutoff)
        strategies = {
            "advised": advice.filter(pl.col("action").is_in(["add", "keep"])),
            "today": known.assortment,
            "standard": standard_assortment(tables, known, cutoff),
        }
        if settings is not None:
            strategies["budgeted standard"] = budgeted_standard(tables, known, cutoff, settings)
        start, end = cutoff + timedelta(days=1), cutoff + timedelta(days=horizon)
        for measure in order:
            demand = held_out[measure](tables, start, end)
            parts.append(
                covered_shares(demand, tables.stores, strategies).with_columns(
                    cutoff=pl.lit(cutoff), demand_measure=pl.lit(measure)
                )
            )
    if not parts:
        return pl.DataFrame(schema=ASSORTMENT_BACKTEST_SCHEMA)
    rank = pl.col("demand_measure").replace_strict(order, return_dtype=pl.Int64)
    return (
        pl.concat(parts)
        .sort(pl.col("cutoff"), rank, pl.col("store_id"), pl.col("strategy"))
        .select(pl.col(c).cast(t) for c, t in ASSORTMENT_BACKTEST_SCHEMA.items())
    )


def region_units(tables: LakeTables, start: date, end: date) -> pl.DataFrame:
    """Return (region, sku, units): all-channel units (store sales + online orders shipped to the
    region) from start to end inclusive."""
    sales = (
        tables.store_sales.filter(pl.col("date").is_between(pl.lit(start), pl.lit(end)))
        .join(tables.stores.lazy().select("store_id", "region"), on="store_id")
        .select("region", "sku", pl.col("units").cast(pl.Float64))
    )
    online = (
        tables.online_orders.filter(pl.col("order_date").is_between(pl.lit(start), pl.lit(end)))
        .join(tables.postal_regions.lazy(), left_on="ship_postal_code", right_on="postal_code")
        .select("region", "sku", pl.col("units").cast(pl.Float64))
    )
    return pl.concat([sales, online]).group_by("region", "sku").agg(pl.col("units").sum()).collect()


def _ratio(tables: LakeTables, regions: list[str], window: tuple[date, date], days: int) -> pl.DataFrame:
    """Return (sku, win, pre): units of ``regions`` together over the window and the ``days`` before."""
    start, end = window
    win = region_units(tables, start, end).filter(pl.col("region").is_in(regions))
    pre = region_units(tables, start - timedelta(days=days), start - timedelta(days=1)).filter(
        pl.col("region").is_in(regions)
    )
    return (
        win.group_by("sku")
        .agg(win=pl.col("units").sum())
        .join(pre.group_by("sku").agg(pre=pl.col("units").sum()), on="sku", how="full", coalesce=True)
        .with_columns(pl.col("win", "pre").fill_null(0.0).clip(lower_bound=0.0))
    )


def control_regions(tables: LakeTables, region: str, start: date, end: date) -> list[str]:
    """Return the regions other than ``region`` that no event (of any type) touches from start to end."""
    regions = tables.stores["region"].unique()
    busy = expand_regions(tables.events.select("event_id", "region", "start_date", "end_date"), regions)
    hit = busy.filter((pl.col("start_date") <= end) & (pl.col("end_date") >= start))["region"]
    return sorted(set(regions.to_list()) - set(hit.to_list()) - {region})


def _year_ago_usable(tables: LakeTables, event_type: str, treated: list[str], start: date, end: date) -> bool:
    """True when the same days 52 weeks earlier lie inside the sales and no event of the type hit the
    treated regions then (a yearly holiday has no clean year-ago)."""
    first = tables.store_sales.select(pl.col("date").min()).collect().item()
    if first is None or start - YEAR < first:
        return False
    regions = tables.stores["region"].unique()
    past = expand_regions(tables.events.select("event_type", "region", "start_date", "end_date"), regions)
    clash = past.filter(
        (pl.col("event_type") == event_type)
        & pl.col("region").is_in(treated)
        & (pl.col("start_date") <= end - YEAR)
        & (pl.col("end_date") >= start - YEAR)
    )
    return clash.height == 0


def actual_risers(
    tables: LakeTables,
    event: dict,
    *,
    min_lift: float,
    lead_days: int,
    pre_days: int,
    min_units: float,
    alpha: float = 0.01,
) -> tuple[set[str], str]:
    """Return (the SKUs that really rose over the event's window [start_date - lead_days, end_date] in
    its region, the control used), judged without the miner. Expected window units = the SKU's units
    over the ``pre_days`` before the window, per day, times the window's days, times the control's
    change from its own pre days to the window. Rose: window units >= ``min_units``, >= ``min_lift`` x
    expected, and above expected at Poisson level ``alpha``. Controls, first that applies: the regions
    no event touched over the window and its pre days ("control_regions"); the region itself 52 weeks
    earlier ("year_ago", when in the data and free of the same event type); the region's other SKUs
    (their median change, "other_skus"). Region ALL pools every region."""
    start, end = event["start_date"], event["end_date"]
    regions = tables.stores["region"].unique().to_list()
    treated = regions if event["region"] == ALL_REGIONS else [event["region"]]
    scale = ((end - start).days + 1) / pre_days
    own = _ratio(tables, treated, (start, end), pre_days).with_columns(base=pl.col("pre") * scale)
    controls = [] if event["region"] == ALL_REGIONS else control_regions(
        tables, event["region"], start - timedelta(days=pre_days), end
    )  # fmt: skip
    change = (pl.col("win") + 0.5) / (pl.col("pre") * scale + 0.5)
    if controls:
        ctrl, label = _ratio(tables, controls, (start, end), pre_days), "control_regions"
    elif _year_ago_usable(tables, event["event_type"], treated, start, end):
        ctrl, label = _ratio(tables, treated, (start - YEAR, end - YEAR), pre_days), "year_ago"
    else:
        ctrl, label = None, "other_skus"
    if ctrl is None:
        typical = own.filter(pl.col("pre") >= min_units).select(change.median()).item() or 1.0
        own = own.with_columns(trend=pl.lit(typical))
    else:
        own = own.join(ctrl.select("sku", trend=change), on="sku", how="left").with_columns(
            pl.col("trend").fill_null(1.0)
        )
    own = own.with_columns(expected=pl.col("base") * pl.col("trend")).with_columns(
        log_lift=((pl.col("win") + 0.5) / (pl.col("expected") + 0.5)).log(),
        count_var=1 / (pl.col("win") + 0.5) + 1 / (pl.col("base") + 0.5),
    )
    # day-to-day noise beyond counting (promotions, weather, shelf gaps): the robust spread of the
    # log changes of the SKUs with enough units, most of which the event did not touch
    steady = own.filter(pl.col("base") >= 4 * min_units).select(
        mad=(pl.col("log_lift") - pl.col("log_lift").median()).abs().median(), n=pl.len()
    )
    extra_var = (1.4826 * float(steady["mad"][0])) ** 2 if steady["n"][0] > 10 else 0.0
    z = pl.col("log_lift") / (pl.col("count_var") + extra_var).sqrt()
    risen = own.filter(
        (pl.col("win") >= min_units)
        & (pl.col("log_lift") >= float(np.log(min_lift)))
        & (z >= float(stats.norm.isf(alpha)))
    )
    return set(risen["sku"].to_list()), label


def flagged_skus(
    patterns: pl.DataFrame, event_type: str, region: str, regions: pl.Series, *, fdr_alpha: float = 0.05
) -> set[str]:
    """Return the SKUs a pre-stock plan stocks for ``event_type`` in ``region`` (ALL: any region)."""
    sig = expand_regions(significant_event_patterns(patterns, fdr_alpha=fdr_alpha), regions).filter(
        pl.col("event_type") == event_type
    )
    if region != ALL_REGIONS:
        sig = sig.filter(pl.col("region") == region)
    return set(sig["sku"].to_list())


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
    lead_days: int = 7,
    baseline_days: int = 56,
    pre_days: int = 28,
    min_units: float = 5.0,
    fdr_alpha: float = 0.05,
) -> pl.DataFrame:
    """Return one row per held-out event (EVENT_BACKTEST_SCHEMA): patterns mined by ``mine`` on the
    data before the event's window (cutoff = start_date - lead_days - 1), the SKUs they flag for that
    event type and region, the SKUs that really rose (``actual_risers``, independent of the miner),
    hits, precision (null when nothing was flagged), recall (null when nothing rose) and the control
    used. Mining runs once per cutoff."""
    regions = tables.stores["region"]
    mined: dict[date, pl.DataFrame] = {}
    rows = []
    held = held_out_events(tables, last_n=last_n, lead_days=lead_days, baseline_days=baseline_days)
    for ev in held.iter_rows(named=True):
        cutoff = ev["start_date"] - timedelta(days=lead_days + 1)
        if cutoff not in mined:  # an event over several regions shares one cutoff
            mined[cutoff] = mine(truncate_tables(tables, cutoff), cutoff)
        flagged = flagged_skus(mined[cutoff], ev["event_type"], ev["region"], regions, fdr_alpha=fdr_alpha)
        risers, control = actual_risers(
            tables, ev, min_lift=min_lift, lead_days=lead_days, pre_days=pre_days, min_units=min_units
        )
        hits = len(flagged & risers)
        rows.append({
            **{k: ev[k] for k in ("event_id", "event_type", "region", "start_date")},
            "cutoff": cutoff, "flagged": len(flagged), "actual_risers": len(risers), "hits": hits,
            "precision": hits / len(flagged) if flagged else None,
            "recall": hits / len(risers) if risers else None, "control": control,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=EVENT_BACKTEST_SCHEMA)
