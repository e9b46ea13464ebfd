"""Latent demand: SKUs a region buys online although none of its stores carries them.

* Candidates: (region, SKU) with online units shipped to the region's postal codes and no store of the
  region carrying the SKU in today's assortment.
* Do more of the region's people buy it? Per block of ``stats.BLOCK_WEEKS`` full weeks, observed =
  the region's buyers of the SKU (customers, a guest checkout's order each, counted once in the
  block: ``features.signals.online_period_buyers``), expected = the region's buyers of all SKUs x the
  SKU's share of buyers in the *rest* of the chain. Buyers, not units: a wholesale customer who
  reorders a SKU by the case is one buyer, and on real orders (Online Retail II, customers split into
  regions at random: ``bench/online_placebo.py``) units read 540-810 latent patterns where there are
  none. Once a block, not once a week: a buyer who comes back for a SKU week after week is one
  buyer's lumps, which the variance must carry; counted weekly (3.7 weeks a buyer at that shop's
  median SKU) the test found 7-13 of 20 planted pairs, counted once a block (2.3 blocks) 16-18.
  One-sided quasi-likelihood test of the summed counts (``latent_test``): their variance from each
  SKU's buyers' repeat blocks (``features.signals.buyer_dispersion``) and the rest of the chain's
  own count, a dispersion beyond that from the blocks moderated by empirical Bayes, a negative
  binomial tail. A SKU that the region buys online only as much as everyone else does is not latent
  demand, nor is one it buys a little more (H0: ratio <= ``min_latent_taste``, 1.25 like the
  affinity filter: on the demo, uncarried SKUs with the world's mild tastes of 1.03-1.15x and a fast
  online rate were certain at a margin of 1 and read as latent demand, 5 of 11 patterns on the
  medium world).
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
* Interval: the online units' noise (their buyers' lumps: sum of squared units per buyer / units,
  over the units) and the uncertainty of the
  ratio for one SKU (the spread of carried SKUs' own store-to-online ratios around the category's,
  plus the pooled ratio's own variance), added on the log scale. The median yardstick is a
  definition, not an estimate.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from scipy import stats

from features.signals import (
    buyer_dispersion,
    carried_weeks,
    full_weeks,
    online_period_buyers,
    online_region_units,
    weekly_store_units,
)
from models.mining.settings import MiningSettings
from models.mining.stats import BLOCK_WEEKS, PRIOR_MIN_EXPECTED, variance_prior

KEYS = ("region", "sku")


def latent_periods(online: pl.LazyFrame, carried_pairs: pl.LazyFrame) -> pl.LazyFrame:
    """Observed and expected online counts per candidate (region, SKU) and period (periods without an
    order included).

    ``online`` has region, sku, week (the period's first Monday: a week, or a block of weeks), units
    (full weeks only) and optionally weeks (the period's full weeks, 1 without the column);
    ``carried_pairs`` the (region, sku) pairs some store of the region carries. Returns columns
    region, sku, week, weeks, observed, expected and rest (the SKU's count in the rest of the chain
    that period: the expectation's own count). A period whose returns outweigh its sales counts 0
    (demand is not negative).
    """
    if "weeks" not in online.collect_schema().names():
        online = online.with_columns(pl.lit(1, pl.Int64).alias("weeks"))
    online = online.with_columns(pl.col("units").clip(lower_bound=0))
    region_total = online.group_by("region", "week").agg(
        pl.col("units").sum().alias("total"), pl.col("weeks").max()
    )
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
        .join(online.drop("weeks").rename({"units": "observed"}), on=["region", "sku", "week"], how="left")
        .join(chain_sku, on=["sku", "week"], how="left")
        .join(chain_total, on="week")
        .with_columns(pl.col("observed").fill_null(0.0), pl.col("chain_units").fill_null(0.0))
        .filter(pl.col("chain_total") > pl.col("total"))  # a rest of the chain to compare with
        .select(
            "region",
            "sku",
            "week",
            "weeks",
            "observed",
            (pl.col("total") * rest_share.clip(lower_bound=0)).alias("expected"),
            (pl.col("chain_units") - pl.col("observed")).clip(lower_bound=0).alias("rest"),
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


def _dispersion_prior(s2: np.ndarray, df: np.ndarray, shaping: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per hypothesis (prior dispersion, its degrees of freedom): ``stats.variance_prior`` of the
    dispersions ``s2`` per region over the hypotheses with ``shaping`` (those of the chain where a region
    has too few); (1, 0) where there are too few anywhere."""
    out = np.tile([1.0, 0.0], (len(s2), 1))
    fits, ones = np.where(shaping, df, 0), np.ones((len(s2), 1))
    every = variance_prior(s2, fits, ones)
    if every is None:
        return out
    out[:] = every[0][0], every[1]
    for r in np.unique(region):
        rows = region == r
        own = variance_prior(s2[rows], fits[rows], ones[rows])
        if own is not None:
            out[rows] = own[0][0], own[1]
    return out


def _count_tail(observed: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """P(X >= observed) for X negative binomial with that mean and variance (size mean^2 / (var -
    mean)), Poisson where the variance is not above the mean; never exactly 0."""
    over = var > mean * (1 + 1e-9)
    size = mean**2 / np.where(over, var - mean, 1.0)
    k = np.floor(observed) - 1
    tail = np.where(
        over, stats.nbinom.sf(k, size, mean / np.where(over, var, 1.0)), stats.poisson.sf(k, mean)
    )
    return np.clip(tail, 1e-300, 1.0)


def latent_test(
    periods: pl.DataFrame, *, min_weeks: int, margin: float = 1.0, dispersion: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One-sided test per (region, SKU) with at least ``min_weeks`` weeks (and something expected)
    that the region buys online more than ``margin`` times what the rest of the chain's share says
    (H0: ratio <= margin; 1 is the usual test of no excess). ``periods`` is ``latent_periods`` output
    (of buyers or of units, per week or per block of ``stats.BLOCK_WEEKS`` weeks); ``dispersion``
    (sku, dispersion) how lumpy each SKU's counts are: sum x^2 / sum x over its buyers
    (``features.signals.buyer_dispersion``, x the periods a buyer came in), 1 for a SKU it lacks and
    for all without it.

    A quasi-likelihood test of the observed count O against the expected E (summed over the periods):
    under H0 O has mean margin x E and variance phi x D x (margin E + margin^2 V), D the SKU's
    dispersion, V the variance of E from its own count (sum over periods of E_p^2 / rest_p, the rest
    of the chain's count of the SKU), and phi what is left beyond that: each hypothesis's scatter of
    blocks of ``BLOCK_WEEKS`` weeks around its own ratio over the variance the model gives it,
    moderated by empirical Bayes over the region's hypotheses of 30 or more expected
    (``stats.variance_prior``). The tail is the negative binomial's of that mean and variance (a slow
    seller's count is skewed: a normal tail would call 10 where 5 are expected rarer than it is),
    carried to a t on the prior's and the blocks' degrees of freedom for phi's uncertainty, and never
    below the tail at phi = 1 (the model's variance itself). Returns region, sku, support (weeks),
    observed_weekly (mean observed a week), se_log (of the observed ratio), p_value.
    """
    lumps = pl.lit(1.0) if dispersion is None else pl.col("dispersion").fill_null(1.0)
    with_var = periods.with_columns(
        pl.when(pl.col("rest") > 0).then(pl.col("expected") ** 2 / pl.col("rest")).otherwise(0.0).alias("v")
    )
    if dispersion is not None:
        with_var = with_var.join(dispersion.select("sku", "dispersion"), on="sku", how="left")
    block = (pl.col("week") - pl.col("week").min()).dt.total_days() // (7 * BLOCK_WEEKS)
    blocks = (
        with_var.with_columns(block.alias("block"), lumps.alias("d"))
        .group_by(*KEYS, "block")
        .agg(pl.col("observed").sum(), pl.col("expected").sum(), pl.col("v").sum(), pl.col("weeks").sum())
    )
    ratio = (pl.col("observed").sum() + 0.5) / (pl.col("expected").sum() + 0.5)
    groups = (
        blocks.with_columns(ratio.over(KEYS).alias("lift"))
        .group_by(KEYS)
        .agg(
            pl.col("weeks").sum().alias("support"),
            pl.len().alias("blocks"),
            pl.col("lift").first(),
            pl.col("observed").sum(),
            pl.col("expected").sum(),
            pl.col("v").sum(),
            ((pl.col("observed") - pl.col("lift") * pl.col("expected")) ** 2).sum().alias("ss"),
        )
        .filter((pl.col("support") >= min_weeks) & (pl.col("expected") > 0))
        .join(with_var.select("sku", lumps.alias("d")).unique("sku"), on="sku")
        .sort(KEYS)
    )
    o, e, v, d, lift, g = (
        groups[c].to_numpy().astype(float) for c in ("observed", "expected", "v", "d", "lift", "blocks")
    )
    df = np.maximum(g - 1, 0)
    s2 = groups["ss"].to_numpy() * g / np.maximum(df, 1) / (d * (lift * e + lift**2 * v))
    prior = _dispersion_prior(s2, df, e >= PRIOR_MIN_EXPECTED, groups["region"].to_numpy())
    total_df = np.maximum(prior[:, 1] + df, 1)
    phi = (prior[:, 1] * prior[:, 0] + df * s2) / np.maximum(prior[:, 1] + df, 1e-12)
    model = d * (margin * e + margin**2 * v)
    # the moderated dispersion's tail, carried to a t for its own uncertainty; never below the tail
    # of the model's variance itself (phi = 1: nothing estimated, no t)
    moderated = stats.t.sf(stats.norm.isf(_count_tail(o, margin * e, phi * model)), total_df)
    p = np.maximum(moderated, _count_tail(o, margin * e, model))
    phi = np.maximum(phi, 1.0)
    se_log = np.sqrt(phi * d * (1 / (o + 0.5) + v / (e + 0.5) ** 2))
    return groups.select(
        *KEYS,
        "support",
        (pl.col("observed") / pl.col("support")).alias("observed_weekly"),
        pl.Series("se_log", se_log),
        pl.Series("p_value", p),
    )


def latent_hypotheses(
    sales: pl.LazyFrame,
    online_orders: pl.LazyFrame,
    refs: dict[str, pl.LazyFrame],
    *,
    first: date,
    as_of: date,
    settings: MiningSettings,
) -> pl.DataFrame:
    """Every latent demand hypothesis tested (one-sided, on buyers a block), sized as store units.

    ``refs`` holds LazyFrames ``stores``, ``products``, ``postal_regions``, ``assortment``. Returns
    region, sku, support, lift, ci_low, ci_high, p_value, online_weekly, est_store_weekly.
    """
    online = online_region_units(online_orders, refs["postal_regions"], as_of=as_of).pipe(
        full_weeks, first=first, as_of=as_of
    )
    buyers = online_period_buyers(
        online_orders, refs["postal_regions"], first=first, as_of=as_of, weeks=BLOCK_WEEKS
    )
    carried_pairs = (
        refs["assortment"]
        .join(refs["stores"].select("store_id", "region"), on="store_id")
        .select(KEYS)
        .unique()
    )
    periods, units, yards, lumps = pl.collect_all(
        [
            latent_periods(buyers.rename({"buyers": "units"}), carried_pairs),
            online.group_by(KEYS).agg(pl.col("units").clip(lower_bound=0).sum().alias("online_units")),
            category_yardsticks(sales, online, refs["products"], first=first, as_of=as_of),
            buyer_dispersion(online_orders, as_of=as_of, first=first, weeks=BLOCK_WEEKS),
        ]
    )
    tested = latent_test(
        periods,
        min_weeks=settings.min_weeks,
        margin=settings.min_latent_taste,
        dispersion=lumps.select("sku", pl.col("repeat_dispersion").alias("dispersion")),
    )
    sized = (
        tested.join(units, on=list(KEYS), how="left")
        .join(lumps, on="sku", how="left")
        .join(refs["products"].select("sku", "category").collect(), on="sku")
        .join(yards, on=["region", "category"], how="left")
        .with_columns((pl.col("online_units").fill_null(0.0) / pl.col("support")).alias("online_weekly"))
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
    # the online rate's noise: its units come in buyers' lumps
    rate_var = sized["units_dispersion"].fill_null(1.0).to_numpy() / (
        sized["online_units"].fill_null(0.0).to_numpy() + 0.5
    )
    spread = np.exp(1.96 * np.sqrt(rate_var + ratio_var))
    return sized.with_columns(
        pl.Series("lift", size), pl.Series("ci_low", size / spread), pl.Series("ci_high", size * spread)
    ).select(*KEYS, "support", "lift", "ci_low", "ci_high", "p_value", "online_weekly", "est_store_weekly")
