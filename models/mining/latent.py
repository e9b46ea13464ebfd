"""Latent demand: SKUs a region buys online although none of its stores carries them.

* Candidates: (region, SKU) with online units shipped to the region's postal codes and no store of the
  region carrying the SKU in today's assortment.
* Is the online rate real? Per full week, observed = the SKU's online units to the region, expected =
  the region's online units of all SKUs x the SKU's share of online units in the *rest* of the chain.
  One-sided test of the ratio of their sums over 4-week blocks, the blocks' variance moderated by
  empirical Bayes over the region's candidates (``latent_test``): a SKU that the region buys online
  only as much as everyone else does is not latent demand, nor is one it buys a little more (H0:
  ratio <= ``min_latent_taste``, 1.25 like the affinity filter: on the demo, uncarried SKUs with the
  world's mild tastes of 1.03-1.15x and a fast online rate were certain at a margin of 1 and read as
  latent demand, 5 of 11 patterns on the medium world). (A t test of weekly log ratios, used
  before, had almost no power for slow online sellers of 0-3 units a week and read no p below 0.05
  among the demo's candidates with no latent demand.)
* Size: estimated store units per store-week = mean weekly online units x the region's store-to-online
  ratio of the category (sum over carried SKUs of per-store weekly store units / sum of their weekly
  online units to the region; chain-wide category ratio when the region has none). lift = that /
  median per-store weekly units of the category's carried SKUs in the region (chain-wide median when
  the region carries none).
* Channel substitution: while no store carries the SKU, some of the people who would buy it in a
  store buy it online instead, so its online rate is inflated. With a share ``s`` of would-be store
  buyers switching (``MiningSettings.latent_substitution``), online = O_c + s x S and S = ratio x
  O_c give S = online x ratio / (1 + s x ratio). The default s = 0 reads the online rate as is (the
  demo plants no substitution); a retailer who knows its switching share sets it.
* Interval: the online rate's noise (the block test's standard error) and the uncertainty of the
  ratio for one SKU (the spread of carried SKUs' own store-to-online ratios around the category's,
  plus the pooled ratio's own variance), added on the log scale. The median yardstick is a
  definition, not an estimate.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from scipy import stats

from features.signals import carried_weeks, full_weeks, online_region_units, weekly_store_units
from models.mining.settings import MiningSettings
from models.mining.stats import moderated_ratio_test, week_block

KEYS = ("region", "sku")


def latent_weekly(online: pl.LazyFrame, carried_pairs: pl.LazyFrame) -> pl.LazyFrame:
    """Observed and expected online units per candidate (region, SKU) and week (zero weeks included).

    ``online`` has region, sku, week, units (full weeks only); ``carried_pairs`` the (region, sku)
    pairs some store of the region carries. Returns columns region, sku, week, observed, expected.
    """
    region_total = online.group_by("region", "week").agg(pl.col("units").sum().alias("total"))
    chain_sku = online.group_by("sku", "week").agg(pl.col("units").sum().alias("chain_units"))
    chain_total = region_total.group_by("week").agg(pl.col("total").sum().alias("chain_total"))
    candidates = (
        online.group_by(KEYS)
        .agg(pl.col("units").sum())
        .filter(pl.col("units") > 0)
        .select(KEYS)
        .join(carried_pairs, on=list(KEYS), how="anti")
    )
    rest_share = (pl.col("chain_units") - pl.col("observed")) / (pl.col("chain_total") - pl.col("total"))
    return (
        candidates.join(region_total.filter(pl.col("total") > 0), on="region")
        .join(online.rename({"units": "observed"}), on=["region", "sku", "week"], how="left")
        .join(chain_sku, on=["sku", "week"], how="left")
        .join(chain_total, on="week")
        .with_columns(pl.col("observed").fill_null(0.0), pl.col("chain_units").fill_null(0.0))
        .filter(pl.col("chain_total") > pl.col("total"))  # a rest of the chain to compare with
        .select(
            "region",
            "sku",
            "week",
            "observed",
            (pl.col("total") * rest_share.clip(lower_bound=0)).alias("expected"),
        )
    )


def _yardstick(carried: pl.LazyFrame, by: list[str], suffix: str) -> pl.LazyFrame:
    """Store-to-online ratio, its log variance and the median store rate of carried SKUs per ``by``
    (null when undefined).

    The ratio's variance is that of one SKU's log(store rate / online rate) around the pooled ratio
    (weighted by online units), plus the pooled ratio's own (/ n): a SKU not carried yet is a new
    draw from the category, not its average."""
    ratio = pl.col("store_rate").sum() / pl.col("online_rate").sum()
    median = pl.col("store_rate").median()
    online = pl.col("online_rate").filter(pl.col("online_rate") > 0)
    dev = ((pl.col("store_rate") + 0.05) / (pl.col("online_rate") + 0.05)).log() - ratio.log()
    spread = (dev.filter(pl.col("online_rate") > 0) ** 2 * online).sum() / online.sum()
    return carried.group_by(by).agg(
        pl.when(pl.col("online_rate").sum() > 0).then(ratio).alias(f"ratio{suffix}"),
        pl.when(online.len() > 1).then(spread * (1 + 1 / online.len())).alias(f"ratio_var{suffix}"),
        pl.when(median > 0).then(median).alias(f"median{suffix}"),
    )


def category_yardsticks(
    sales: pl.LazyFrame, online: pl.LazyFrame, products: pl.LazyFrame, *, first: date, as_of: date
) -> pl.LazyFrame:
    """Per region and category: store-to-online ratio and median per-store weekly units of carried SKUs.

    Returns columns region, category, ratio, ratio_var (of its log), median_units (chain-wide
    fallbacks already applied; null where even the chain has no data).
    """
    store_rate = (
        carried_weeks(sales)
        .pipe(full_weeks, first=first, as_of=as_of)
        .join(
            weekly_store_units(sales).select("store_id", "sku", "week", "units"),
            on=["store_id", "sku", "week"],
            how="left",
        )
        .group_by(KEYS)
        .agg((pl.col("units").fill_null(0.0).sum() / pl.len()).alias("store_rate"))
    )
    n_weeks = online.group_by("region").agg(pl.col("week").n_unique().alias("n_weeks"))
    online_rate = (
        online.group_by(KEYS)
        .agg(pl.col("units").sum())
        .join(n_weeks, on="region")
        .select(*KEYS, (pl.col("units") / pl.col("n_weeks")).alias("online_rate"))
    )
    carried = (
        store_rate.join(online_rate, on=list(KEYS), how="left")
        .with_columns(pl.col("online_rate").fill_null(0.0))
        .join(products.select("sku", "category"), on="sku")
    )
    regions = online.select("region").unique()
    categories = products.select("category").unique()
    return (
        regions.join(categories, how="cross")
        .join(_yardstick(carried, ["region", "category"], ""), on=["region", "category"], how="left")
        .join(_yardstick(carried, ["category"], "_chain"), on="category", how="left")
        .select(
            "region",
            "category",
            pl.coalesce("ratio", "ratio_chain").alias("ratio"),
            pl.when(pl.col("ratio").is_not_null())
            .then(pl.col("ratio_var"))
            .otherwise(pl.col("ratio_var_chain"))
            .alias("ratio_var"),
            pl.coalesce("median", "median_chain").alias("median_units"),
        )
    )


def latent_test(weekly: pl.DataFrame, *, min_weeks: int, margin: float = 1.0) -> pl.DataFrame:
    """One-sided test per (region, SKU) with at least ``min_weeks`` weeks (and some expected units)
    that the region buys online more than ``margin`` times what the rest of the chain's share says
    (H0: ratio <= margin; 1 is the usual test of no excess). The ratio of summed observed to expected
    units over 4-week blocks (``stats.week_block``), its variance moderated by empirical Bayes over the
    region's candidates (``stats.moderated_ratio_test``; a slow online seller's weeks of 0-3 units
    give a weekly log ratio little power). ``weekly`` is ``latent_weekly`` output. Returns region,
    sku, support (weeks), online_weekly (mean online units a week), se_log, p_value."""
    rates = (
        weekly.group_by(KEYS)
        .agg(
            pl.len().alias("support"),
            (pl.col("observed").sum() / pl.len()).alias("online_weekly"),
            pl.col("expected").sum(),
        )
        .filter((pl.col("support") >= min_weeks) & (pl.col("expected") > 0))
        .drop("expected")
    )
    per_block = (
        weekly.with_columns(week_block())
        .join(rates.select(KEYS), on=list(KEYS))
        .group_by(*KEYS, "block")
        .agg(pl.col("observed").sum(), pl.col("expected").sum())
    )
    tested = moderated_ratio_test(per_block, KEYS, family=["region"], alternative="greater")
    beyond = (tested["lift"].log().to_numpy() - np.log(margin)) / tested["se_log"].to_numpy()
    p = stats.t.sf(beyond, tested["df"].to_numpy())
    return rates.join(tested.select(*KEYS, "se_log", pl.Series("p_value", p)), on=list(KEYS)).sort(KEYS)


def latent_hypotheses(
    sales: pl.LazyFrame,
    online_orders: pl.LazyFrame,
    refs: dict[str, pl.LazyFrame],
    *,
    first: date,
    as_of: date,
    settings: MiningSettings,
) -> pl.DataFrame:
    """Every latent demand hypothesis tested (one-sided), sized as store units.

    ``refs`` holds LazyFrames ``stores``, ``products``, ``postal_regions``, ``assortment``. Returns
    region, sku, support, lift, ci_low, ci_high, p_value, online_weekly, est_store_weekly.
    """
    online = online_region_units(online_orders, refs["postal_regions"], as_of=as_of).pipe(
        full_weeks, first=first, as_of=as_of
    )
    carried_pairs = (
        refs["assortment"]
        .join(refs["stores"].select("store_id", "region"), on="store_id")
        .select(KEYS)
        .unique()
    )
    weekly, yards = pl.collect_all(
        [
            latent_weekly(online, carried_pairs),
            category_yardsticks(sales, online, refs["products"], first=first, as_of=as_of),
        ]
    )
    tested = latent_test(weekly, min_weeks=settings.min_weeks, margin=settings.min_latent_taste)
    sized = (
        tested.join(refs["products"].select("sku", "category").collect(), on="sku")
        .join(yards, on=["region", "category"], how="left")
        # substitution: of the would-be store buyers a share buys online while no store carries it
        .with_columns(
            (
                pl.col("online_weekly")
                * pl.col("ratio")
                / (1 + settings.latent_substitution * pl.col("ratio"))
            ).alias("est_store_weekly")
        )
        .with_columns((pl.col("est_store_weekly") / pl.col("median_units")).alias("size"))
    )
    # an untestable size (no yardstick) keeps the test in the FDR family but can never be reported
    size = sized["size"].fill_nan(None).fill_null(0.0).to_numpy()
    ratio_var = sized["ratio_var"].fill_nan(None).fill_null(0.0).to_numpy()
    spread = np.exp(1.96 * np.sqrt(sized["se_log"].to_numpy() ** 2 + ratio_var))
    return sized.with_columns(
        pl.Series("lift", size), pl.Series("ci_low", size / spread), pl.Series("ci_high", size * spread)
    ).select(*KEYS, "support", "lift", "ci_low", "ci_high", "p_value", "online_weekly", "est_store_weekly")
