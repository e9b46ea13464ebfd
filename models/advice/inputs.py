"""What the assortment decision is made from: one row per store x SKU carried today or worth adding.

Each row carries the numbers one decision needs: expected weekly units with a lower and upper bound,
price, subcategory and brand (for transference), the SKU's own recent sales (to check the forecast),
must-carry, and the evidence an add rests on (a latent-demand or local-affinity pattern, or the
region's best sellers on neighbouring shelves).

Weekly bounds from the daily forecast: a week's demand is the sum of 7 days, so its p10 is taken as
7 mu - sqrt(7) (mu - p10) (normal approximation to the sum of 7 independent days, each with the
forecast's spread); likewise its p90. Latent adds are valued with the latent-demand estimate and its
95% interval, never with a cold-start forecast, so one opportunity shows one number.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from data_contracts.tables import LakeTables

ALL_STORES = "ALL"  # must_carry.csv: a SKU every store must carry
SQRT7 = 7**0.5


def must_carry_pairs(tables: LakeTables) -> pl.DataFrame:
    """Return (store_id, sku) pairs that may never be dropped (store ALL expanded to every store)."""
    must = getattr(tables, "must_carry", None)
    if must is None or must.height == 0:
        return pl.DataFrame(schema={"store_id": pl.String, "sku": pl.String})
    stores = tables.stores.select("store_id")
    chain = must.filter(pl.col("store_id") == ALL_STORES).select("sku").join(stores, how="cross")
    own = must.filter(pl.col("store_id") != ALL_STORES).select("store_id", "sku")
    return pl.concat([own, chain.select("store_id", "sku")]).unique()


def weekly_forecast(forecast: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, sku, weekly_units, weekly_low, weekly_high): the forecast's mean daily units x 7
    and the p10/p90 of a week's demand (module docstring); p10/p90 default to the mean when absent."""
    p10 = pl.col("p10") if "p10" in forecast.columns else pl.col("units")
    p90 = pl.col("p90") if "p90" in forecast.columns else pl.col("units")
    mu = pl.col("units").clip(lower_bound=0.0)
    return forecast.group_by("store_id", "sku").agg(
        weekly_units=(mu.mean() * 7.0).cast(pl.Float64),
        weekly_low=(mu.mean() * 7.0 - SQRT7 * (mu - p10.fill_null(mu)).clip(lower_bound=0).mean())
        .clip(lower_bound=0.0)
        .cast(pl.Float64),
        weekly_high=(mu.mean() * 7.0 + SQRT7 * (p90.fill_null(mu) - mu).clip(lower_bound=0).mean()).cast(
            pl.Float64
        ),
    )


def recent_weekly_sales(tables: LakeTables, *, as_of: date, days: int) -> pl.DataFrame:
    """Return (store_id, sku, recent_weekly): net store units per week over the ``days`` up to as_of."""
    start = as_of - timedelta(days=days - 1)
    return (
        tables.store_sales.filter(pl.col("date").is_between(pl.lit(start), pl.lit(as_of)))
        .group_by("store_id", "sku")
        .agg(recent_weekly=(pl.col("units").sum() * 7.0 / days).cast(pl.Float64))
        .collect()
    )


def _fmt_ci(lo: pl.Expr, hi: pl.Expr) -> pl.Expr:
    return pl.concat_str(lo.round(1).cast(pl.String), pl.lit("-"), hi.round(1).cast(pl.String))


def category_median_weekly(tables: LakeTables, *, as_of: date) -> pl.DataFrame:
    """Return (region, category, median_units): the median over SKUs of per-store weekly units, a SKU's
    units divided by the store-weeks from its first to its last sale in each store (the yardstick a
    latent_demand lift is defined on)."""
    per_pair = (
        tables.store_sales.filter(pl.col("date") <= as_of)
        .group_by("store_id", "sku")
        .agg(
            units=pl.col("units").sum(),
            weeks=((pl.col("date").max() - pl.col("date").min()).dt.total_days() + 1) / 7.0,
        )
        .collect()
    )
    return (
        per_pair.join(tables.stores.select("store_id", "region"), on="store_id")
        .group_by("region", "sku")
        .agg(rate=pl.col("units").sum() / pl.col("weeks").clip(lower_bound=1.0).sum())
        .join(tables.products.select("sku", "category"), on="sku")
        .group_by("region", "category")
        .agg(median_units=pl.col("rate").median())
    )


def add_evidence(patterns: pl.DataFrame, yardstick: pl.DataFrame | None) -> pl.DataFrame:
    """Return (region, sku, evidence, latent_units, latent_low, latent_high, affinity_lift, affinity_ci):
    the significant pattern behind each possible add. Latent units are the miner's per-store estimate:
    ``est_store_weekly`` where patterns.parquet keeps it, else lift x ``yardstick`` (region, category,
    median_units: see ``category_median_weekly``); the interval scales with the lift's."""
    latent = patterns.filter(pl.col("kind") == "latent_demand")
    if "est_store_weekly" in latent.columns:
        latent = latent.with_columns(latent_units=pl.col("est_store_weekly").cast(pl.Float64))
    elif yardstick is not None:
        latent = latent.join(yardstick, on=["region", "category"], how="left").with_columns(
            latent_units=pl.col("lift") * pl.col("median_units")
        )
    else:
        latent = latent.with_columns(latent_units=pl.lit(None, pl.Float64))
    scale = pl.col("latent_units") / pl.col("lift")
    latent = (
        latent.filter(pl.col("latent_units") > 0)
        .select(
            "region",
            "sku",
            "latent_units",
            latent_low=pl.col("ci_low") * scale,
            latent_high=pl.col("ci_high") * scale,
        )
        .unique(["region", "sku"], keep="first")
    )
    affinity = (
        patterns.filter((pl.col("kind") == "local_affinity") & (pl.col("lift") > 1.0))
        .sort("lift", descending=True)
        .unique(["region", "sku"], keep="first")
        .select(
            "region",
            "sku",
            affinity_lift=pl.col("lift"),
            affinity_ci=_fmt_ci(pl.col("ci_low"), pl.col("ci_high")),
        )
    )
    return latent.join(affinity, on=["region", "sku"], how="full", coalesce=True).with_columns(
        evidence=pl.when(pl.col("latent_units").is_not_null())
        .then(pl.lit("latent"))
        .otherwise(pl.lit("affinity"))
    )


def store_category_capacity(tables: LakeTables) -> pl.DataFrame:
    """Return (store_id, category, n_carried, capacity) for every store x category carried or planned.

    Capacity is shelf_capacity.max_skus where the retailer gave it, otherwise today's count (the
    input contract: without the file a store can carry what it carries today).
    """
    group = ["store_id", "category"]
    today = (
        tables.assortment.select("store_id", "sku")
        .unique()
        .join(tables.products.select("sku", "category"), on="sku", how="inner")
        .group_by(group)
        .agg(n_carried=pl.len().cast(pl.Int64))
    )
    if tables.shelf_capacity.height == 0:
        return today.with_columns(capacity=pl.col("n_carried")).sort(group)
    shelf = tables.shelf_capacity.select(*group, pl.col("max_skus").cast(pl.Int64))
    return (
        today.join(shelf, on=group, how="full", coalesce=True)
        .with_columns(
            n_carried=pl.col("n_carried").fill_null(0),
            capacity=pl.coalesce("max_skus", "n_carried"),
        )
        .drop("max_skus")
        .sort(group)
    )


def _best_sellers(tables: LakeTables, *, by: list[str], top_n: int, days: int) -> pl.DataFrame:
    """Return (*by, sku, units, stores): per ``by`` group (region, or the chain for ``[]``) and category
    the best SKUs by units per carrying store and week over the last ``days`` of sales, among SKUs that
    at least two of the group's stores carry today. How many: ``top_n`` beyond the free slots
    (capacity - carried) of the group's emptiest shelf of the category, so free shelf space is never
    left empty for want of a candidate (a chain-wide standard shelf would fill it)."""
    last = tables.store_sales.select(pl.col("date").max()).collect().item()
    stores = tables.stores.select("store_id", "region")
    carriers = tables.assortment.join(stores, on="store_id").group_by(*by, "sku").agg(stores=pl.len())
    if last is None:
        return carriers.clear().with_columns(units=pl.lit(None, pl.Float64))
    sold = (
        tables.store_sales.filter(pl.col("date") > last - timedelta(days=days))
        .join(tables.assortment.lazy(), on=["store_id", "sku"], how="semi")
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum())
        .collect()
        .join(stores, on="store_id")
        .group_by(*by, "sku")
        .agg(pl.col("units").sum())
    )
    room = (
        store_category_capacity(tables)
        .join(stores, on="store_id")
        .group_by(*by, "category")
        .agg(free=(pl.col("capacity") - pl.col("n_carried")).clip(lower_bound=0).max())
    )
    group = [*by, "category"]
    return (
        carriers.filter(pl.col("stores") >= 2)
        .join(sold, on=[*by, "sku"])
        .join(tables.products.select("sku", "category"), on="sku")
        .join(room, on=group, how="left")
        .with_columns(units=pl.col("units") / pl.col("stores") / (days / 7))
        .sort([*group, "units", "sku"], descending=[*(False for _ in group), True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over(group))
        .filter(pl.col("rank") <= top_n + pl.col("free").fill_null(0))
        .select(*by, "sku", "units", "stores")
    )


def region_sellers(tables: LakeTables, *, top_n: int = 5, days: int = 91) -> pl.DataFrame:
    """Return (region, sku, region_units, region_stores): the region's best sellers per category on its
    own stores' shelves (a neighbour's shelf is evidence of local demand), enough to fill every free
    slot with ``top_n`` to choose from (``_best_sellers``)."""
    best = _best_sellers(tables, by=["region"], top_n=top_n, days=days)
    return best.rename({"units": "region_units", "stores": "region_stores"})


def chain_sellers(tables: LakeTables, *, top_n: int = 5, days: int = 91) -> pl.DataFrame:
    """Return (sku, chain_units, chain_stores): the chain's best sellers per category, enough to fill
    every free slot with ``top_n`` to choose from: the SKUs a chain-wide standard shelf would carry. For
    a store whose region has none of them on its shelves, the demand model's cold-start forecast (from
    the SKU's chain rate and the region's online orders) says what it would sell there."""
    best = _best_sellers(tables, by=[], top_n=top_n, days=days)
    return best.rename({"units": "chain_units", "stores": "chain_stores"})


SELLER_COLUMNS = ("region_units", "region_stores", "chain_units", "chain_stores")


def candidate_pairs(tables: LakeTables, patterns: pl.DataFrame) -> pl.DataFrame:
    """Return (store_id, sku, carried, region_units, region_stores, chain_units, chain_stores): every
    pair carried today plus the add candidates to forecast, with the seller evidence ``decision_rows``
    reads (null where the SKU is not among the region's / chain's best sellers).

    An add candidate is a SKU the store does not carry with evidence of demand: a significant
    latent_demand or local_affinity (lift > 1) pattern in its region, a place among the region's best
    sellers on its other stores' shelves (``region_sellers``), or among the chain's (``chain_sellers``).
    The evidence makes a candidate; the forecast's lower bound still has to clear the bar
    (``models.advice.choice``).
    """
    carried = tables.assortment.select("store_id", "sku").unique()
    region, chain = region_sellers(tables), chain_sellers(tables)
    regions = pl.concat(
        [
            patterns.filter(
                (pl.col("kind") == "latent_demand")
                | ((pl.col("kind") == "local_affinity") & (pl.col("lift") > 1.0))
            ).select("region", "sku"),
            region.select("region", "sku"),
        ]
    ).unique()
    stores = tables.stores.select("store_id", "region")
    adds = (
        pl.concat(
            [
                regions.join(stores, on="region").select("store_id", "sku"),
                stores.select("store_id").join(chain.select("sku"), how="cross"),
            ]
        )
        .select("store_id", "sku")
        .join(carried, on=["store_id", "sku"], how="anti")
        .join(tables.products.select("sku"), on="sku", how="semi")
        .unique()
    )
    return (
        pl.concat([carried.with_columns(carried=pl.lit(True)), adds.with_columns(carried=pl.lit(False))])
        .join(stores, on="store_id", how="left")
        .join(region, on=["region", "sku"], how="left")
        .join(chain, on="sku", how="left")
        .drop("region")
        .sort("store_id", "sku")
    )


def decision_rows(
    tables: LakeTables,
    candidates: pl.DataFrame,
    forecast: pl.DataFrame,
    patterns: pl.DataFrame,
    *,
    as_of: date,
    recent_days: int,
) -> pl.DataFrame:
    """Return one row per store x SKU to decide on (see the module docstring): store_id, region, sku,
    name, category, subcategory, sub (grouping key: subcategory, else the category), brand, price,
    carried, must, weekly_units, weekly_low, weekly_high, recent_weekly, evidence (latent, affinity,
    region or chain), latent_*, affinity_*, region_units, region_stores, chain_units, chain_stores.
    Adds without evidence or without expected sales are left out. ``candidates`` as from
    ``candidate_pairs`` (its seller columns are the region and chain evidence)."""
    weekly = weekly_forecast(forecast)
    products = tables.products.select(
        "sku", "name", "category", "subcategory", "brand", price=pl.col("regular_price").fill_null(0.0)
    )
    stores = tables.stores.select("store_id", "region")
    needs_yardstick = "est_store_weekly" not in patterns.columns
    yardstick = category_median_weekly(tables, as_of=as_of) if needs_yardstick else None
    evidence = add_evidence(patterns, yardstick)
    must = must_carry_pairs(tables).with_columns(must=pl.lit(True))
    rows = (
        candidates.select("store_id", "sku", "carried", *SELLER_COLUMNS)
        .unique(["store_id", "sku"])
        .join(products, on="sku", how="inner")
        .join(stores, on="store_id", how="inner")
        .join(weekly, on=["store_id", "sku"], how="left")
        .join(recent_weekly_sales(tables, as_of=as_of, days=recent_days), on=["store_id", "sku"], how="left")
        .join(evidence, on=["region", "sku"], how="left")
        .join(must, on=["store_id", "sku"], how="left")
        .with_columns(
            pl.col("name").fill_null(pl.col("sku")),
            pl.col("must").fill_null(False),
            pl.col("recent_weekly").fill_null(0.0),
            pl.col("weekly_units", "weekly_low", "weekly_high").fill_null(0.0),
            sub=pl.coalesce("subcategory", "category"),
            evidence=pl.coalesce(
                "evidence",
                pl.when(pl.col("region_units").is_not_null()).then(pl.lit("region")),
                pl.when(pl.col("chain_units").is_not_null()).then(pl.lit("chain")),
            ),
        )
    )
    is_latent_add = ~pl.col("carried") & (pl.col("evidence") == "latent")
    rows = rows.with_columns(
        weekly_units=pl.when(is_latent_add).then("latent_units").otherwise("weekly_units"),
        weekly_low=pl.when(is_latent_add).then("latent_low").otherwise("weekly_low"),
        weekly_high=pl.when(is_latent_add).then("latent_high").otherwise("weekly_high"),
    )
    keep = pl.col("carried") | (pl.col("evidence").is_not_null() & (pl.col("weekly_units") > 0))
    return rows.filter(keep).sort("store_id", "category", "sku")
