"""Localized assortment advice: which SKUs each store should add, keep or drop.

The advice is a slot-filling rule applied to every store x category at once with joins and window
functions (no Python loops over rows):

1. Capacity is ``shelf_capacity.max_skus`` (or today's count when the retailer gave no capacity).
2. A store over capacity drops its slowest sellers first until it fits (forced drops).
3. Add candidates are ranked best first by forecast weekly units; SKUs carried today worst first.
   Add number ``a`` takes a free slot while there is one, otherwise it faces the ``a``-th slowest
   carried SKU still on the shelf and replaces it only if it sells ``min_gain_ratio`` times more.
   Because adds fall and kept SKUs rise along that pairing, the accepted adds form a prefix.
4. At most ``max_changes_share`` of the shelf changes per run (at least one change).
"""

from __future__ import annotations

import polars as pl

from data_contracts.outputs import ASSORTMENT_COLUMNS, conform
from data_contracts.tables import LakeTables
from models.advice.settings import AssortmentSettings

_GROUP = ("store_id", "category")


def _num(col: str, decimals: int = 1) -> pl.Expr:
    """A float column rounded for a sentence."""
    return pl.col(col).round(decimals).cast(pl.String)


def store_category_capacity(tables: LakeTables) -> pl.DataFrame:
    """Return (store_id, category, n_carried, capacity) for every store x category carried or planned.

    Capacity is shelf_capacity.max_skus where the retailer gave it, otherwise today's count (the
    input contract: without the file a store can carry what it carries today).
    """
    today = (
        tables.assortment.select("store_id", "sku")
        .unique()
        .join(tables.products.select("sku", "category"), on="sku", how="inner")
        .group_by(_GROUP)
        .agg(n_carried=pl.len().cast(pl.Int64))
    )
    if not tables.has_shelf_capacity():
        return today.with_columns(capacity=pl.col("n_carried")).sort(_GROUP)
    shelf = tables.shelf_capacity.select(*_GROUP, pl.col("max_skus").cast(pl.Int64))
    return (
        today.join(shelf, on=list(_GROUP), how="full", coalesce=True)
        .with_columns(
            n_carried=pl.col("n_carried").fill_null(0),
            capacity=pl.coalesce("max_skus", "n_carried"),
        )
        .drop("max_skus")
        .sort(_GROUP)
    )


def _region_top_sellers(tables: LakeTables, top_n: int) -> pl.DataFrame:
    """Return (region, sku): per region x category the ``top_n`` SKUs by store units among SKUs that
    some store of the region carries today (a store can add what its neighbours sell well)."""
    stores = tables.stores.select("store_id", "region")
    in_region = tables.assortment.join(stores, on="store_id").select("region", "sku").unique()
    units = (
        tables.store_sales.select("store_id", "sku", "units")
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum())
        .collect()
        .join(stores, on="store_id")
        .group_by("region", "sku")
        .agg(pl.col("units").sum())
    )
    return (
        in_region.join(units, on=["region", "sku"], how="left")
        .join(tables.products.select("sku", "category"), on="sku")
        .with_columns(pl.col("units").fill_null(0.0))
        .sort(["region", "category", "units", "sku"], descending=[False, False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("region", "category"))
        .filter(pl.col("rank") <= top_n)
        .select("region", "sku")
    )


def candidate_pairs(tables: LakeTables, patterns: pl.DataFrame, *, region_top_n: int = 5) -> pl.DataFrame:
    """Return (store_id, sku, carried): every pair carried today plus the add candidates to score.

    Add candidates of a store: SKUs with a latent_demand or a positive local_affinity (lift > 1)
    pattern in its region, and the region's ``region_top_n`` best sellers per category among SKUs
    other stores of the region carry; pairs already carried are not repeated.
    """
    carried = tables.assortment.select("store_id", "sku").unique()
    stores = tables.stores.select("store_id", "region")
    from_patterns = (
        patterns.filter(
            (pl.col("kind") == "latent_demand")
            | ((pl.col("kind") == "local_affinity") & (pl.col("lift") > 1.0))
        )
        .select("region", "sku")
        .unique()
    )
    adds = (
        pl.concat([from_patterns, _region_top_sellers(tables, region_top_n)])
        .unique()
        .join(stores, on="region")
        .select("store_id", "sku")
        .unique()
        .join(carried, on=["store_id", "sku"], how="anti")
        .join(tables.products.select("sku"), on="sku", how="semi")
    )
    return pl.concat(
        [carried.with_columns(carried=pl.lit(True)), adds.with_columns(carried=pl.lit(False))]
    ).sort("store_id", "sku")


def weekly_units(forecast: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, sku, weekly_units): the forecast's mean daily units x 7, never negative."""
    return forecast.group_by("store_id", "sku").agg(
        weekly_units=(pl.col("units").mean().clip(lower_bound=0.0) * 7.0).cast(pl.Float64)
    )


def _scored_pairs(tables: LakeTables, candidates: pl.DataFrame, forecast: pl.DataFrame) -> pl.DataFrame:
    """Return the carried pairs and the add candidates with category, price, name, weekly units, and
    their rank inside the store x category: carried slowest first, adds best first."""
    carried = tables.assortment.select("store_id", "sku").unique().with_columns(carried=pl.lit(True))
    adds = (
        candidates.filter(~pl.col("carried"))
        .select("store_id", "sku")
        .unique()
        .join(carried, on=["store_id", "sku"], how="anti")
        .with_columns(carried=pl.lit(False))
    )
    products = tables.products.select("sku", "category", "name", "regular_price")
    scored = (
        pl.concat([carried, adds])
        .join(products, on="sku", how="inner")
        .join(weekly_units(forecast), on=["store_id", "sku"], how="left")
        .with_columns(pl.col("weekly_units").fill_null(0.0))
        # an add with no expected sales has no case to make
        .filter(pl.col("carried") | (pl.col("weekly_units") > 0))
    )
    sort_key = pl.when(pl.col("carried")).then(pl.col("weekly_units")).otherwise(-pl.col("weekly_units"))
    return (
        scored.with_columns(_key=sort_key)
        .sort([*_GROUP, "carried", "_key", "sku"])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over(*_GROUP, "carried"))
        .drop("_key")
    )


def _accepted_adds(adds: pl.DataFrame, kept: pl.DataFrame, settings: AssortmentSettings) -> pl.DataFrame:
    """Return the accepted adds with the carried SKU each one replaces (replaced_* null for a free slot).

    ``adds`` holds the add candidates with the group columns (capacity, n_carried, excess, free,
    budget) and ``rank``; ``kept`` the carried pairs with ``rank`` (slowest first).
    """
    target = (
        pl.when(pl.col("rank") > pl.col("free"))
        .then(pl.col("excess") + pl.col("rank") - pl.col("free"))
        .otherwise(None)
    )
    replaced = kept.select(
        *_GROUP,
        target=pl.col("rank"),
        replaced_sku=pl.col("sku"),
        replaced_name=pl.col("name"),
        replaced_units=pl.col("weekly_units"),
    )
    gain_ok = (pl.col("weekly_units") >= settings.min_gain_ratio * pl.col("replaced_units")) & (
        pl.col("weekly_units") > pl.col("replaced_units")
    )
    ok = (pl.col("rank") <= pl.col("budget")) & (
        (pl.col("rank") <= pl.col("free")) | (pl.col("replaced_sku").is_not_null() & gain_ok)
    )
    return (
        adds.with_columns(target=target)
        .join(replaced, on=[*_GROUP, "target"], how="left")
        .sort([*_GROUP, "rank"])
        # the pairing is monotone, so the first refusal ends the group's adds
        .with_columns(ok=ok.fill_null(False).cast(pl.Int8).cum_min().over(*_GROUP))
        .filter(pl.col("ok") == 1)
        .drop("ok", "target")
    )


def _with_group_limits(
    scored: pl.DataFrame, tables: LakeTables, settings: AssortmentSettings
) -> pl.DataFrame:
    """Return ``scored`` with capacity, n_carried, excess (forced drops), free slots and change budget."""
    cap = store_category_capacity(tables).select(*_GROUP, "capacity", "n_carried")
    share_budget = (pl.col("capacity") * settings.max_changes_share).floor().cast(pl.Int64)
    # at least one change per run unless the planner switched changes off entirely
    min_budget = 1 if settings.max_changes_share > 0 else 0
    return (
        scored.join(cap, on=list(_GROUP), how="left")
        .with_columns(pl.col("capacity", "n_carried").fill_null(0))
        .with_columns(
            excess=(pl.col("n_carried") - pl.col("capacity")).clip(lower_bound=0),
            free=(pl.col("capacity") - pl.col("n_carried")).clip(lower_bound=0),
            budget=pl.max_horizontal(share_budget, pl.lit(min_budget, dtype=pl.Int64)),
        )
    )


def _evidence(patterns: pl.DataFrame, tables: LakeTables) -> pl.DataFrame:
    """Return (store_id, sku, latent_lift, affinity_lift): the pattern evidence for each store's region."""
    wide = (
        patterns.filter(pl.col("kind").is_in(["latent_demand", "local_affinity"]))
        .group_by("region", "sku")
        .agg(
            latent_lift=pl.col("lift").filter(pl.col("kind") == "latent_demand").max(),
            affinity_lift=pl.col("lift").filter(pl.col("kind") == "local_affinity").max(),
        )
    )
    return tables.stores.select("store_id", "region").join(wide, on="region").drop("region")


def _add_reason() -> pl.Expr:
    """One sentence for an add: the evidence, the expected sales, and the slot it takes."""
    evidence = (
        pl.when(pl.col("latent_lift").is_not_null())
        .then(
            pl.concat_str(
                pl.lit("Online demand from "),
                pl.col("region"),
                pl.lit(" for an item this store doesn't carry ("),
                _num("latent_lift"),
                pl.lit("x a typical carried "),
                pl.col("category"),
                pl.lit(" SKU)"),
            )
        )
        .when(pl.col("affinity_lift") > 1.0)
        .then(
            pl.concat_str(
                pl.lit("Sells "),
                _num("affinity_lift"),
                pl.lit("x its chain-wide share in "),
                pl.col("region"),
            )
        )
        .otherwise(pl.concat_str(pl.lit("A top seller in other "), pl.col("region"), pl.lit(" stores")))
    )
    slot = (
        pl.when(pl.col("replaced_sku").is_null())
        .then(pl.lit(", in a free slot."))
        .otherwise(
            pl.concat_str(
                pl.lit(", replacing "),
                pl.col("replaced_name"),
                pl.lit(" ("),
                pl.col("replaced_sku"),
                pl.lit(") at "),
                _num("replaced_units"),
                pl.lit(" units/week."),
            )
        )
    )
    expected = pl.concat_str(pl.lit("; expected "), _num("weekly_units"), pl.lit(" units/week here"))
    return pl.concat_str(evidence, expected, slot)


def _carried_reason() -> pl.Expr:
    """One sentence for a carried SKU: why it stays, or why it goes (too little room, replaced)."""
    units = pl.concat_str(pl.lit("Slow seller ("), _num("weekly_units"), pl.lit(" units/week)"))
    return (
        pl.when(pl.col("forced"))
        .then(
            pl.concat_str(
                units,
                pl.lit(" and the "),
                pl.col("category"),
                pl.lit(" shelf holds only "),
                pl.col("capacity").cast(pl.String),
                pl.lit(" SKUs; dropped to fit."),
            )
        )
        .when(pl.col("by_sku").is_not_null())
        .then(
            pl.concat_str(
                units,
                pl.lit("; replaced by "),
                pl.col("by_name"),
                pl.lit(" ("),
                pl.col("by_sku"),
                pl.lit(") at "),
                _num("by_units"),
                pl.lit(" units/week."),
            )
        )
        .otherwise(
            pl.concat_str(
                pl.lit("Keeps its place: "),
                _num("weekly_units"),
                pl.lit(" units/week expected, #"),
                (pl.col("n_carried") - pl.col("rank") + 1).cast(pl.String),
                pl.lit(" of "),
                pl.col("n_carried").cast(pl.String),
                pl.lit(" "),
                pl.col("category"),
                pl.lit(" SKUs carried here."),
            )
        )
    )


def _revenue_and_conform(df: pl.DataFrame, tables: LakeTables) -> pl.DataFrame:
    """Return ``df`` with weekly revenue from regular_price, in the contract's columns and order."""
    out = df.join(tables.products.select("sku", "regular_price"), on="sku", how="left").with_columns(
        expected_weekly_units=pl.col("weekly_units"),
        expected_weekly_revenue=pl.col("weekly_units") * pl.col("regular_price").fill_null(0.0),
    )
    order = pl.col("action").replace_strict({"add": 0, "keep": 1, "drop": 2}, return_dtype=pl.Int8)
    out = out.with_columns(_order=order).sort(
        ["store_id", "category", "_order", "expected_weekly_units", "sku"],
        descending=[False, False, False, True, False],
    )
    return conform(out, ASSORTMENT_COLUMNS).select(ASSORTMENT_COLUMNS.names())


def recommend_assortment(
    tables: LakeTables,
    candidates: pl.DataFrame,
    forecast: pl.DataFrame,
    patterns: pl.DataFrame,
    *,
    settings: AssortmentSettings,
) -> pl.DataFrame:
    """Return one row per store x sku carried today or advised to carry (outputs.ASSORTMENT_COLUMNS).

    ``action`` is add, keep or drop; every pair carried today appears once (keep or drop). Within each
    store x category the advised set (add + keep) never exceeds the capacity.
    """
    scored = _with_group_limits(_scored_pairs(tables, candidates, forecast), tables, settings).with_columns(
        pl.col("name").fill_null(pl.col("sku"))
    )
    kept = scored.filter(pl.col("carried"))
    adds = _accepted_adds(scored.filter(~pl.col("carried")), kept, settings)
    by = adds.filter(pl.col("replaced_sku").is_not_null()).select(
        *_GROUP,
        sku=pl.col("replaced_sku"),
        by_sku=pl.col("sku"),
        by_name=pl.col("name"),
        by_units=pl.col("weekly_units"),
    )
    kept = (
        kept.join(by, on=[*_GROUP, "sku"], how="left")
        .with_columns(forced=pl.col("rank") <= pl.col("excess"))
        .with_columns(
            action=pl.when(pl.col("forced") | pl.col("by_sku").is_not_null())
            .then(pl.lit("drop"))
            .otherwise(pl.lit("keep")),
            reason=_carried_reason(),
        )
    )
    adds = (
        adds.join(tables.stores.select("store_id", "region"), on="store_id", how="left")
        .join(_evidence(patterns, tables), on=["store_id", "sku"], how="left")
        .with_columns(action=pl.lit("add"), reason=_add_reason())
    )
    cols = ["store_id", "sku", "category", "action", "weekly_units", "reason"]
    return _revenue_and_conform(pl.concat([kept.select(cols), adds.select(cols)]), tables)
