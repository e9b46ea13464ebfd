"""Store by store: the SKUs of a discovered window must have risen in the region's stores, not in one.

The regional scan (``models.mining.discovery.scan``) sees a region's demand summed over its stores and
online orders, and a sum of over-dispersed store counts of unequal size has a heavy far tail: a few
SKUs that each jump in some store on the same day make a co-rising group in the region's sum that no
store saw together. A real event (a festival, a storm, a viral post) lifts its SKUs in the region's
stores alike; the issue's co-rising SKUs "rose on the same days in the same stores".

So each SKU of a candidate window is tested again with the part that holds most of its excess left
out (a part is a store, or a region's online orders). A part's expectation over the window is its
share ``s`` of the region's demand on the reference days (``reach_days`` either side of the window,
without the window, ``guard_days`` either side of it and the days the SKU had a promotion) times the
window's expectation ``E``; its excess is what it sold less that. The rest must pass the window's
own SKU test: observed ``Y`` less the part's units, expected ``(1 - s) E``, the excess variance
``(1 - s) (V - E)``, a tail p at most the window's Benjamini-Hochberg cut-off (the largest p it let
through) and a lift of at least ``min_lift``. The excess variance scaled by ``1 - s`` is the
conservative one of the two ways a region's variance splits over its parts: it is ``(1 - s)^2`` of
the whole for a variance every store shares (the model's own uncertainty), and at most ``1 - s`` of
it for independent stores (the sum of the others' squared expectations over everyone's, with the
largest left out).

A SKU of a region with fewer than two stores selling it keeps the regional test (there is no other
store to ask). A window keeps the SKUs that pass and is dropped with fewer than ``min_skus``. Only
the candidate windows are checked: the store rows of their SKUs and days, not the whole history.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import cast

import numpy as np
import polars as pl

from data_contracts.schemas import CHAIN_WIDE
from features.signals import daily_online_buyers
from models.mining.discovery_null import tail_p

ONLINE = "online:"  # a region's online orders are one more part, named ONLINE + region


def part_units(
    sales: pl.LazyFrame,
    stores: pl.DataFrame,
    orders: pl.LazyFrame,
    postal_regions: pl.DataFrame,
    found: pl.DataFrame,
    *,
    reach_days: int,
    as_of: date,
) -> pl.DataFrame:
    """Units per part (a store, or ONLINE + region: its buyers), region, SKU and day, with the part's
    promo flag, for the SKUs of the candidate windows ``found`` over their days and ``reach_days``
    either side."""
    schema = {
        "part": pl.String,
        "region": pl.String,
        "sku": pl.String,
        "date": pl.Date,
        "units": pl.Float64,
        "promo": pl.Boolean,
    }
    if found.height == 0:
        return pl.DataFrame(schema=schema)
    reach = timedelta(days=reach_days)
    lo = cast(date, found["window_start"].min()) - reach
    hi = min(cast(date, found["window_end"].max()) + reach, as_of)
    skus = found["sku"].unique().implode()
    has_promo = "promo" in sales.collect_schema().names()
    store = (
        sales.filter(pl.col("date").is_between(lo, hi) & pl.col("sku").is_in(skus))
        .join(stores.lazy().select("store_id", "region"), on="store_id")
        .select(
            pl.col("store_id").alias("part"),
            "region",
            "sku",
            "date",
            pl.col("units").cast(pl.Float64).fill_null(0.0),
            (pl.col("promo").fill_null(False) if has_promo else pl.lit(False)).alias("promo"),
        )
    )
    online = daily_online_buyers(
        orders.filter(pl.col("order_date").is_between(lo, hi) & pl.col("sku").is_in(skus)),
        postal_regions.lazy(),
        as_of=as_of,
    ).select(
        (pl.lit(ONLINE) + pl.col("region")).alias("part"),
        "region",
        "sku",
        "date",
        pl.col("buyers").alias("units"),
        pl.lit(False).alias("promo"),
    )
    return (
        pl.concat([store, online])
        .group_by("part", "region", "sku", "date")
        .agg(pl.col("units").sum(), pl.col("promo").any())
        .collect()
        .cast(schema)  # type: ignore[arg-type]
    )


def part_excess(
    found: pl.DataFrame, parts: pl.DataFrame, *, reach_days: int, guard_days: int
) -> pl.DataFrame:
    """Per window x SKU of ``found`` (the scan's rows), the part holding most of its excess: ``top``,
    its share of the reference days' units ``share``, its share of the window's units ``held``, and
    ``stores``, how many stores sold the SKU around the window (the chain's stores for region ALL)."""
    cand = found.select("event_id", "region", "window_start", "window_end", "sku", "expected_units")
    joined = pl.concat(
        [
            cand.filter(pl.col("region") != CHAIN_WIDE).join(parts.drop("promo"), on=["region", "sku"]),
            cand.filter(pl.col("region") == CHAIN_WIDE).join(parts.drop("region", "promo"), on="sku"),
        ]
    )
    promo_days = parts.filter(pl.col("promo")).select("region", "sku", "date").unique()
    reach, guard = timedelta(days=reach_days), timedelta(days=guard_days)
    inside = pl.col("date").is_between(pl.col("window_start"), pl.col("window_end"))
    near = pl.col("date").is_between(pl.col("window_start") - guard, pl.col("window_end") + guard)
    around = pl.col("date").is_between(pl.col("window_start") - reach, pl.col("window_end") + reach)
    # a promotion in any store of the window's region (any region for ALL) leaves the day out of the shares
    promo = pl.concat(
        [
            cand.filter(pl.col("region") != CHAIN_WIDE).join(promo_days, on=["region", "sku"]),
            cand.filter(pl.col("region") == CHAIN_WIDE).join(promo_days.drop("region"), on="sku"),
        ]
    ).select("event_id", "sku", "date", pl.lit(True).alias("promo_day"))
    per_part = (
        joined.filter(around)
        .join(promo.unique(), on=["event_id", "sku", "date"], how="left")
        .group_by("event_id", "sku", "part")
        .agg(
            pl.col("expected_units").first(),
            pl.col("units").filter(inside).sum().clip(lower_bound=0).alias("win"),
            pl.col("units")
            .filter(~near & pl.col("promo_day").is_null())
            .sum()
            .clip(lower_bound=0)
            .alias("ref"),
        )
        .with_columns(
            (pl.col("ref") / pl.col("ref").sum().over("event_id", "sku")).fill_nan(0.0).alias("share"),
            (pl.col("win") / pl.col("win").sum().over("event_id", "sku")).fill_nan(0.0).alias("held"),
        )
        .with_columns((pl.col("win") - pl.col("share") * pl.col("expected_units")).alias("excess"))
    )
    sold = (pl.col("ref") > 0) | (pl.col("win") > 0)
    return per_part.group_by("event_id", "sku").agg(
        pl.col("part").sort_by("excess").last().alias("top"),
        pl.col("share").sort_by("excess").last(),
        pl.col("held").sort_by("excess").last(),
        (sold & ~pl.col("part").str.starts_with(ONLINE)).sum().cast(pl.Int64).alias("stores"),
        (pl.col("ref").sum() > 0).alias("has_reference"),
    )


def rest_tests(
    found: pl.DataFrame, parts: pl.DataFrame, *, min_lift: float, reach_days: int, guard_days: int
) -> pl.DataFrame:
    """``found`` (the scan's windows x SKUs, with ``observed_units``, ``expected_units``,
    ``variance_units`` and ``p_cutoff``) with each SKU's test with its top part left out: ``top``,
    ``top_share`` (its share of the window's units), ``stores``, ``p_rest``, ``lift_rest`` and
    ``passes`` (true where the SKU is not checked: fewer than two stores, no reference days)."""
    tops = part_excess(found, parts, reach_days=reach_days, guard_days=guard_days)
    rows = found.join(tops, on=["event_id", "sku"], how="left").with_columns(
        pl.col("share").fill_null(0.0), pl.col("held").fill_null(0.0), pl.col("stores").fill_null(0)
    )
    y, e, v = (rows[c].to_numpy() for c in ("observed_units", "expected_units", "variance_units"))
    share, held = rows["share"].to_numpy(), rows["held"].to_numpy()
    y_rest, e_rest = y * (1 - held), e * (1 - share)
    v_rest = e_rest + (1 - share) * np.maximum(v - e, 0.0)
    with np.errstate(all="ignore"):
        p_rest = np.where(e_rest > 0, tail_p(y_rest, np.maximum(e_rest, 1e-9), np.maximum(v_rest, 1e-9)), 1.0)
    lift_rest = (y_rest + 0.5) / (e_rest + 0.5)
    checked = (rows["stores"].to_numpy() >= 2) & rows["has_reference"].fill_null(False).to_numpy()
    passes = ~checked | ((p_rest <= rows["p_cutoff"].to_numpy()) & (lift_rest >= min_lift))
    return rows.with_columns(
        pl.Series("top_share", held),
        pl.Series("p_rest", np.where(checked, p_rest, np.nan)).fill_nan(None),
        pl.Series("lift_rest", np.where(checked, lift_rest, np.nan)).fill_nan(None),
        pl.Series("passes", passes),
    )


def store_consistent(
    found: pl.DataFrame,
    parts: pl.DataFrame,
    *,
    min_lift: float,
    min_skus: int,
    reach_days: int,
    guard_days: int,
) -> pl.DataFrame:
    """The rows of ``found`` (the scan's windows x SKUs) whose SKU stays significant with its top part
    left out (``rest_tests``), of the windows keeping at least ``min_skus`` such SKUs; with the
    columns ``top``, ``top_share`` and ``p_rest``."""
    extra = {"top": pl.String, "top_share": pl.Float64, "p_rest": pl.Float64}
    if found.height == 0:
        return found.with_columns(pl.lit(None, dtype).alias(name) for name, dtype in extra.items())
    tested = rest_tests(found, parts, min_lift=min_lift, reach_days=reach_days, guard_days=guard_days)
    kept = tested.filter(pl.col("passes"))
    enough = kept.group_by("event_id").len().filter(pl.col("len") >= min_skus)["event_id"]
    return kept.filter(pl.col("event_id").is_in(enough.implode())).select(*found.columns, *extra)
