"""Demand features one chunk of SKUs at a time, equal to the whole panel's, in bounded memory.

The features of ``features.panel.demand_features`` are window functions over the dense store x SKU x
day panel: at M5 scale (30,000 series x 1,941 days) that panel with every feature column is tens of
GiB. Almost every feature lives inside one SKU: the pair's own history, the SKU's chain and region
rates, the region's online orders of the SKU, calendar and events. So the panel is cut into chunks of
whole SKUs and each chunk is computed alone. The two exceptions, ``store_rate`` and ``store_index``
(the store's volume over all its SKUs, and that over the chain's), are sums over every SKU: they are
built from daily totals that each chunk contributes (a first, narrow pass) and replace the chunk's own.
The result equals the unchunked features (tests/features/test_chunked.py holds the two side by side).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from features.lags import cross_sectional_names, dense_daily
from features.panel import PAIR, FeatureSpec, build_panel, demand_features

if TYPE_CHECKING:
    from data_contracts.tables import LakeTables

# A chunk's feature frame and the window functions behind it take about this many bytes per panel row
# (measured on the medium demo: ~60 feature columns, Float64, plus polars' working copies).
BYTES_PER_PANEL_ROW = 2_000


def sku_chunks(skus: Sequence[str], *, panel_rows: int, max_rows: int) -> list[list[str]]:
    """Return ``skus`` (sorted) cut into about panel_rows / max_rows chunks of equal SKU counts."""
    ordered = sorted(set(skus))
    n = max(1, min(len(ordered), -(-panel_rows // max(1, max_rows))))
    return [ordered[i::n] for i in range(n)] if n > 1 else [ordered]


def chunk_rows_for(memory_bytes: float) -> int:
    """Return the panel rows one chunk may hold within ``memory_bytes``."""
    return max(100_000, int(memory_bytes // BYTES_PER_PANEL_ROW))


def chunk_tables(tables: LakeTables, skus: Sequence[str]) -> LakeTables:
    """Return ``tables`` with the facts and the assortment cut to ``skus`` (reference tables whole)."""
    keep = pl.col("sku").is_in(list(skus))
    return replace(
        tables,
        store_sales=tables.store_sales.filter(keep),
        online_orders=tables.online_orders.filter(keep),
        assortment=tables.assortment.filter(keep),
    )


def _chunk_panel(
    tables: LakeTables, spec: FeatureSpec, *, as_of: date, pairs: pl.DataFrame | None, start: date | None
) -> pl.LazyFrame:
    """The panel demand_features builds for these tables (same arguments), without features."""
    return build_panel(
        tables.store_sales,
        stores=tables.stores,
        products=tables.products,
        assortment=tables.assortment,
        as_of=as_of,
        horizon=spec.horizon if pairs is not None else 0,
        pairs=pairs,
        start=start,
        stale_days=spec.stale_days,
    )


def store_daily_totals(panel: pl.LazyFrame) -> pl.LazyFrame:
    """Return store_id, date, _u (units), _d (uncensored pair-days) of a panel: additive over chunks."""
    return panel.group_by("store_id", "date").agg(
        pl.col("units").sum().alias("_u"),
        pl.col("units").is_not_null().sum().cast(pl.Float64).alias("_d"),
    )


def _rolled(daily: pl.LazyFrame, keys: list[str], *, lag: int, window: int) -> pl.LazyFrame:
    """Return keys, date, _sum, _days over the window ending ``lag`` days back, on a dense day grid
    (as features.lags does for every level)."""
    dense = dense_daily(daily, keys)

    def roll(col: str) -> pl.Expr:
        return pl.col(col).shift(lag).rolling_sum(window, min_samples=1).over(keys, order_by="date")

    return dense.select(
        *keys, "date", roll("_u").fill_null(0.0).alias("_sum"), roll("_d").fill_null(0.0).alias("_days")
    )


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den).otherwise(None)


def store_level_features(totals: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Return store_id, date, store_rate, store_index (features.lags names) from the summed daily
    totals of every chunk: the store's units per uncensored SKU-day over the widest window, and that
    over the chain's."""
    wide = max(spec.windows)
    rate_name, index_name = cross_sectional_names(lag=spec.horizon, windows=spec.windows)[-2:]
    daily = totals.lazy().group_by("store_id", "date").agg(pl.col("_u", "_d").sum())
    store = _rolled(daily, ["store_id"], lag=spec.horizon, window=wide)
    chain = _rolled(
        daily.group_by("date").agg(pl.col("_u", "_d").sum()).with_columns(pl.lit(0).alias("_all")),
        ["_all"],
        lag=spec.horizon,
        window=wide,
    ).select("date", _ratio(pl.col("_sum"), pl.col("_days")).alias("_total_rate"))
    rate = _ratio(pl.col("_sum"), pl.col("_days"))
    return (
        store.join(chain, on="date", how="left")
        .select("store_id", "date", rate.alias(rate_name), (rate / pl.col("_total_rate")).alias(index_name))
        .collect()
    )


@dataclass(frozen=True)
class ChunkPlan:
    """How a panel is cut: SKU chunks, and every chunk's daily store totals summed (store_id, date,
    _u units, _d uncensored pair-days: ``_d`` summed over stores is the day's count of rows with known
    demand). One plan serves every FeatureSpec on the same panel (as_of, pairs, start, stale_days)."""

    chunks: list[list[str]]
    totals: pl.DataFrame


def panel_rows_bound(
    tables: LakeTables, *, as_of: date, start: date | None = None, extra_days: int = 0
) -> int:
    """Return an upper bound of the panel's rows: pairs with sales x days (streamed, few columns)."""
    sales = tables.store_sales.filter(pl.col("date") <= as_of)
    first = sales.select(pl.col("date").min()).collect(engine="streaming").item()
    pairs = sales.select(*PAIR).unique().select(pl.len()).collect(engine="streaming").item()
    if first is None:
        return 0
    lo = max(first, start) if start is not None else first
    return int(pairs) * ((as_of - lo).days + 1 + extra_days)


def plan_chunks(
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    max_rows: int,
    pairs: pl.DataFrame | None = None,
    start: date | None = None,
) -> ChunkPlan:
    """Return the chunks of about ``max_rows`` panel rows each and the store totals over all of them
    (the first, narrow pass: one panel per chunk, no features)."""
    extra = spec.horizon if pairs is not None else 0
    bound = panel_rows_bound(tables, as_of=as_of, start=start, extra_days=extra)
    chunks = sku_chunks(tables.products.get_column("sku").to_list(), panel_rows=bound, max_rows=max_rows)
    parts = [
        store_daily_totals(
            _chunk_panel(chunk_tables(tables, c), spec, as_of=as_of, pairs=pairs, start=start)
        ).collect()
        for c in chunks
    ]
    totals = (
        pl.concat(parts).group_by("store_id", "date").agg(pl.col("_u", "_d").sum()).sort("store_id", "date")
    )
    return ChunkPlan(chunks, totals)


def chunk_features(
    tables: LakeTables,
    spec: FeatureSpec,
    plan: ChunkPlan,
    chunk: int,
    *,
    as_of: date,
    pairs: pl.DataFrame | None = None,
    start: date | None = None,
    also: Sequence[FeatureSpec] = (),
) -> pl.LazyFrame:
    """Return demand_features of chunk ``chunk`` of ``plan`` (same columns as the whole panel's, the
    store-level features from every chunk; ``also``: the columns of more lag floors on the same panel,
    as demand_features): filter it before collecting to keep memory bounded."""
    skus = plan.chunks[chunk]
    wanted = None if pairs is None else pairs.filter(pl.col("sku").is_in(skus))
    lf = demand_features(chunk_tables(tables, skus), spec, as_of=as_of, pairs=wanted, start=start, also=also)
    names = lf.collect_schema().names()
    for one in (spec, *also):
        store = store_level_features(plan.totals, one)
        store_cols = [c for c in store.columns if c not in ("store_id", "date")]
        lf = lf.drop(store_cols).join(store.lazy(), on=["store_id", "date"], how="left")
    return lf.select(names)


def chunked_features(
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    max_rows: int,
    keep: Callable[[pl.LazyFrame], pl.LazyFrame] = lambda lf: lf,
    pairs: pl.DataFrame | None = None,
    start: date | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield ``keep(chunk_features(...))`` collected, chunk by chunk (each sorted by store_id, sku,
    date): the whole panel's features, about ``max_rows`` panel rows in memory at a time."""
    plan = plan_chunks(tables, spec, as_of=as_of, max_rows=max_rows, pairs=pairs, start=start)
    for i in range(len(plan.chunks)):
        lf = chunk_features(tables, spec, plan, i, as_of=as_of, pairs=pairs, start=start)
        yield keep(lf).sort(*PAIR, "date").collect()
