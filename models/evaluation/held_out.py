"""Held-out demand for the assortment backtest: what a store would have sold of a SKU in the weeks after
a cutoff, from the actuals alone (no model, no miner), and the share of it a shelf carries.

Two measures:

* ``held_out_demand`` (region, sku, demand): one figure per region: the mean units per store that sold
  the SKU, plus the region's online units per store. Every store of the region is credited with it.
* ``held_out_store_demand`` (store_id, region, sku, demand): the same demand shared out by store
  volume. Stores differ in size, and big stores carry more SKUs (in the demo world as in chains: a
  format's inclusion probability grows with its scale), so the mean of the stores that sell a SKU is a
  big store's figure; credited to a small store that does not carry it, it overstates what adding the
  SKU there would sell (on the small demo, seed 42, 2.1x the world's true demand for the region's best
  sellers a store lacks: bench/README.md). Here a store's own sales count for the SKUs it sold; a SKU
  it did not sell gets the region's sales per unit of store volume times its own volume (a fair share);
  online units are split by volume as well. A store's volume is its units of the SKUs every store of
  its region sold in the window (the same SKUs for every store), relative to the region's mean.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from data_contracts.tables import LakeTables

ALL_STORES = "ALL"  # covered_shares' row over every store


def _online_per_store(tables: LakeTables, start: date, end: date) -> pl.DataFrame:
    """Return (region, sku, online): units shipped to the region from start to end, per region store."""
    n_stores = tables.stores.group_by("region").agg(n=pl.len())
    return (
        tables.online_orders.filter(pl.col("order_date").is_between(pl.lit(start), pl.lit(end)))
        .join(tables.postal_regions.lazy(), left_on="ship_postal_code", right_on="postal_code")
        .group_by("region", "sku")
        .agg(units=pl.col("units").sum())
        .collect()
        .join(n_stores, on="region")
        .select("region", "sku", online=(pl.col("units") / pl.col("n")).clip(lower_bound=0.0))
    )


def _store_units(tables: LakeTables, start: date, end: date) -> pl.DataFrame:
    """Return (store_id, region, sku, units): store sales from start to end per pair that has a row."""
    return (
        tables.store_sales.filter(pl.col("date").is_between(pl.lit(start), pl.lit(end)))
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum().cast(pl.Float64))
        .collect()
        .join(tables.stores.select("store_id", "region"), on="store_id")
    )


def _region_table(tables: LakeTables, sales: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Return (region, sku, pos, online, ratio): pos the mean units per selling store (null where no
    store of the region sold the SKU), online the region's online units per store, ratio the region's
    store-to-online ratio of the SKU's category over the SKUs it sold (null where none)."""
    pos = sales.group_by("region", "sku").agg(pos=(pl.col("units").sum() / pl.len()).clip(lower_bound=0.0))
    both = (
        pos.join(_online_per_store(tables, start, end), on=["region", "sku"], how="full", coalesce=True)
        .join(tables.products.select("sku", "category"), on="sku")
        .with_columns(pl.col("online").fill_null(0.0))
    )
    sold = pl.col("pos").is_not_null()
    ratio = (
        both.filter(sold & (pl.col("online") > 0))
        .group_by("region", "category")
        .agg(ratio=pl.col("pos").sum() / pl.col("online").sum())
    )
    return both.join(ratio, on=["region", "category"], how="left").select(
        "region", "sku", "pos", "online", "ratio"
    )


def held_out_demand(tables: LakeTables, start: date, end: date) -> pl.DataFrame:
    """Return (region, sku, demand): what one store of the region would sell of the SKU from start to end
    if it carried it, from the actuals alone (no model, no miner). SKUs some store of the region sold:
    their mean units per selling store, plus the region's online units per store. SKUs no store of the
    region sold (uncarried, bought online only): the online units per store times the region's
    store-to-online ratio of the category over the SKUs it did sell. Negative totals count as zero."""
    region = _region_table(tables, _store_units(tables, start, end), start, end)
    sold = pl.col("pos").is_not_null()
    return region.select(
        "region",
        "sku",
        demand=pl.when(sold)
        .then(pl.col("pos") + pl.col("online"))
        .otherwise(pl.col("online") * pl.col("ratio").fill_null(1.0)),
    ).filter(pl.col("demand") > 0)


def store_volume(tables: LakeTables, sales: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, region, weight): each store's units of the SKUs every store of its region sold
    (``sales`` as from ``_store_units``), over the region's mean of the same; 1 where the region has no
    such SKU or its stores sold none of them."""
    stores = tables.stores.select("store_id", "region")
    n = stores.group_by("region").agg(_n=pl.len())
    common = (
        sales.filter(pl.col("units") > 0)
        .group_by("region", "sku")
        .agg(_k=pl.len())
        .join(n, on="region")
        .filter(pl.col("_k") == pl.col("_n"))
        .select("region", "sku")
    )
    vol = sales.join(common, on=["region", "sku"]).group_by("store_id").agg(_v=pl.col("units").sum())
    return (
        stores.join(vol, on="store_id", how="left")
        .with_columns(pl.col("_v").fill_null(0.0).clip(lower_bound=0.0))
        .with_columns(_m=pl.col("_v").mean().over("region"))
        .select(
            "store_id",
            "region",
            weight=pl.when(pl.col("_m") > 0).then(pl.col("_v") / pl.col("_m")).otherwise(1.0),
        )
    )


def held_out_store_demand(tables: LakeTables, start: date, end: date) -> pl.DataFrame:
    """Return (store_id, region, sku, demand): what each store would sell of each SKU its region sold or
    ordered online from start to end, were it on its shelf, shared out by store volume (module
    docstring). A pair with store sales in the window: its own units. Else the units of the region's
    stores that sold it, per unit of their volume, times the store's volume. Plus the region's online
    units per store times the store's volume; a SKU no store of the region sold: online units per
    store times the category's store-to-online ratio, times the store's volume. Negative totals count
    as zero; zero demand is left out."""
    sales = _store_units(tables, start, end)
    weights = store_volume(tables, sales)
    carriers = (
        sales.join(weights.select("store_id", "weight"), on="store_id")
        .group_by("region", "sku")
        .agg(_per_weight=pl.col("units").sum() / pl.col("weight").sum())
    )
    region = _region_table(tables, sales, start, end).join(carriers, on=["region", "sku"], how="left")
    own = sales.select("store_id", "sku", _own=pl.col("units"))
    sold = pl.col("pos").is_not_null()
    per_weight = pl.when(pl.col("_per_weight").is_finite()).then("_per_weight").otherwise("pos")
    w = pl.col("weight")
    return (
        weights.join(region, on="region")
        .join(own, on=["store_id", "sku"], how="left")
        .select(
            "store_id",
            "region",
            "sku",
            demand=pl.when(sold)
            .then(pl.coalesce("_own", per_weight * w) + pl.col("online") * w)
            .otherwise(pl.col("online") * pl.col("ratio").fill_null(1.0) * w)
            .clip(lower_bound=0.0),
        )
        .filter(pl.col("demand") > 0)
        .sort("store_id", "sku")
    )


def covered_shares(
    demand: pl.DataFrame, stores: pl.DataFrame, strategies: dict[str, pl.DataFrame]
) -> pl.DataFrame:
    """Return (store_id, strategy, demand_covered_share): per store and over ALL stores, the share of
    its ``demand`` on the SKUs of each strategy's (store_id, sku) set. ``demand`` is (region, sku,
    demand), every store of the region credited with it (``held_out_demand``), or (store_id, sku,
    demand), one figure per store (``held_out_store_demand``)."""
    if "store_id" in demand.columns:
        per_store = stores.select("store_id").join(demand.select("store_id", "sku", "demand"), on="store_id")
    else:
        per_store = stores.select("store_id", "region").join(demand, on="region")
    parts = []
    for name, pairs in strategies.items():
        marked = per_store.join(
            pairs.select("store_id", "sku").unique().with_columns(_in=pl.lit(True)),
            on=["store_id", "sku"],
            how="left",
        ).with_columns(covered=pl.when(pl.col("_in")).then(pl.col("demand")).otherwise(0.0))
        by_store = marked.group_by("store_id").agg(pl.col("covered").sum(), total=pl.col("demand").sum())
        every = by_store.select(pl.lit(ALL_STORES).alias("store_id"), pl.col("covered", "total").sum())
        parts.append(pl.concat([every, by_store]).with_columns(strategy=pl.lit(name)))
    share = pl.when(pl.col("total") > 0).then(pl.col("covered") / pl.col("total"))
    return pl.concat(parts).select("store_id", "strategy", demand_covered_share=share)


def interval_calibration(rows: pl.DataFrame, demand: pl.DataFrame, *, weeks: float) -> pl.DataFrame:
    """Return per kind of row (``kept``, or ``add: EVIDENCE`` for a candidate not carried today) how the
    weekly demand interval the advice decides on (weekly_low, weekly_units, weekly_high: the p10, mean
    and p90 of ``models.advice.inputs.decision_rows``) compares with the held-out demand per week
    (``demand`` over ``weeks`` weeks, at region or store level as ``covered_shares`` takes it; a pair
    without held-out demand sold 0): n, below_p10, below_mean, above_p90 (shares of the rows; a
    calibrated interval has about 0.1, 0.5, 0.1) and ratio (median of held-out over expected weekly
    units). Rows without expected sales are left out."""
    keys = ["store_id", "sku"] if "store_id" in demand.columns else ["region", "sku"]
    realised = pl.col("demand").fill_null(0.0) / weeks
    return (
        rows.filter(pl.col("weekly_units") > 0)
        .join(demand.select(*keys, "demand"), on=keys, how="left")
        .with_columns(
            kind=pl.when(pl.col("carried"))
            .then(pl.lit("kept"))
            .otherwise(pl.lit("add: ") + pl.col("evidence").fill_null("none"))
        )
        .group_by("kind")
        .agg(
            n=pl.len(),
            below_p10=(realised < pl.col("weekly_low")).mean(),
            below_mean=(realised < pl.col("weekly_units")).mean(),
            above_p90=(realised > pl.col("weekly_high")).mean(),
            ratio=(realised / pl.col("weekly_units")).median(),
        )
        .sort("kind")
    )
