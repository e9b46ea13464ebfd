"""Local affinity: a SKU's share of demand in a region against its share in the rest of the chain.

What it is, for a merchandiser: a persistent regional taste, one that holds all year and over the
history (worth a planogram change), not a season, a trend or an event seen in one region.

* Cells: store x SKU x full week while the store carries the SKU (first to last sale), with an
  exposure = the share of the week it was on the shelf (days emptied all day left out:
  availability-normalised); plus the region's online buyers of the SKU in every week its stores
  carry it (weeks without an order count as 0), a channel that never runs out and does not depend on
  what the stores carry. Buyers, not units (the miner passes ``features.signals.online_region_buyers``),
  and their variance beyond Poisson from the SKU's buyers' repeat weeks (``excess``): a wholesale
  customer who reorders by the case every week is one buyer, not a regional taste
  (``tests/models/mining/test_wholesale.py``; on online units it read 1.66x, p 3e-23). Weeks touched
  by an event window in a region are left out for that region, so event spikes are reported as event
  uplift, not as a taste.
* Model (Poisson, ``models.mining.effects``): units = exposure x channel-week size x SKU-week chain
  rate x region-SKU taste. The sizes make a store with a narrower assortment (whose every SKU takes a
  bigger share) no local fan; the chain rate follows the SKU's season and trend everywhere at once.
* Estimand, the same for the test and the reported lift: the region's taste against the rest of the
  chain, R_rk / median over the other regions of R_r'k, where R_rk = sum(observed) / sum(expected at
  the chain rate) is the region's demand ratio (centred on the region's median SKU: a share, not a
  size). The median keeps one region with a strong taste from making mirror patterns elsewhere
  (with only two or three regions carrying a SKU it cannot: the others then mirror the one).
* Interval: the ratio's cluster-robust variance over 4-week blocks (weeks of one region move
  together; the online buyers' repeat weeks, which blocks do not see, as the noise's excess), moderated
  by empirical Bayes over the region's SKUs (``stats.moderated_ratio_test``: a
  thin region's 5-8 blocks give a variance on 4-7 degrees of freedom, whose t tails would hide a
  clear taste), plus the reference's: a median over n other regions varies by ``median_variance(n)``
  (0.21 for seven) times one region's variance. t distribution on the moderated degrees of freedom.
* Test: H0 |log lift| <= log(min_affinity_lift) over the whole history, the relevance filter as the
  test's margin (a taste known to exist but known to be smaller than the filter is not reported; at a
  filter of 1 it is the usual two-sided test of no taste). Stability: the same estimand, computed in
  each half of the year (April-September, October-March, centred and compared with the other regions
  within it) and in each half of the history, must lie on the same side of 1 in all four, each
  significantly (one-sided t test; a half borrows the whole history's variance, scaled by its share
  of the units, as after its event weeks it often has too few blocks for its own). Intersection-union
  test: the p-value is the largest of the five. A regional season or a share that trends through the
  chain's shows no taste, nor does a SKU with fewer than 2 weeks in one of the halves.
* The reported lift is shrunk toward 1 by empirical Bayes (``stats.adaptive_shrink``: a prior on the
  log lift that mixes normals of many widths, fitted on all hypotheses of the run), so a slow
  seller's noisy ratio does not pass the relevance threshold on noise alone, while a few strong
  tastes among many near-1 shares keep their size (a single normal prior, used before, read a 0.35x
  taste of a thin region at 0.67x).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import stats

from features.signals import event_window_days, full_weeks, week_of
from models.mining.effects import Effect, fit_effects
from models.mining.settings import MiningSettings
from models.mining.stats import adaptive_shrink, median_variance, moderated_ratio_test, week_block

KEYS = ("region", "sku")
N_PARTS = 4  # two halves of the year, two halves of the history
PART_MIN_WEEKS = 2  # weeks a half needs (event weeks left out)
ONLINE = "online:"  # channel name prefix of a region's online orders


def event_weeks(instances: pl.LazyFrame) -> pl.LazyFrame:
    """Weeks touched by any event window, per region. Returns columns region, week."""
    return event_window_days(instances).select("region", week_of("date").alias("week")).unique()


def store_cells(sales: pl.LazyFrame, *, first: date, as_of: date) -> pl.LazyFrame:
    """Units and exposure per carried store x SKU x full week (exposure: days on the shelf / 7).

    ``sales`` is ``features.signals.clean_store_sales`` output. Returns columns channel (store_id),
    region, sku, week, units, exposure.
    """
    span = sales.group_by("store_id", "region", "sku").agg(
        pl.col("date").min().alias("first"), pl.col("date").max().alias("last")
    )
    weekly = sales.group_by("store_id", "sku", "week").agg(
        pl.col("units").filter(~pl.col("stockout")).sum().clip(lower_bound=0).alias("units"),
        pl.col("stockout").sum().alias("empty_days"),
    )
    on_shelf = (
        pl.min_horizontal(pl.col("last"), pl.col("week") + timedelta(days=6))
        - pl.max_horizontal(pl.col("first"), pl.col("week"))
    ).dt.total_days() + 1
    return (
        span.with_columns(pl.date_ranges(week_of("first"), week_of("last"), "1w").alias("week"))
        .explode("week")
        .join(weekly, on=["store_id", "sku", "week"], how="left")
        .with_columns(
            ((on_shelf - pl.col("empty_days").fill_null(0)).clip(lower_bound=0) / 7).alias("exposure"),
            pl.col("units").fill_null(0.0),
        )
        .pipe(full_weeks, first=first, as_of=as_of)
        .filter(pl.col("exposure") > 0)
        .select(pl.col("store_id").alias("channel"), "region", "sku", "week", "units", "exposure")
    )


def affinity_cells(
    sales: pl.LazyFrame,
    online: pl.LazyFrame | None,
    busy: pl.LazyFrame,
    *,
    first: date,
    as_of: date,
    dispersion: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Store cells plus online cells (the region's weekly online count of SKUs its stores carry: buyers
    in the miner), event weeks of the region left out; ``lumps`` is each cell's count dispersion
    beyond Poisson (0 for a store's units; for an online cell the SKU's ``dispersion`` - 1: a buyer
    who comes back week after week counts in many weeks). ``online`` has region, sku, week, units
    (``features.signals.online_region_buyers`` renamed, or ``online_region_units``); ``dispersion``
    sku, dispersion."""
    stores = store_cells(sales, first=first, as_of=as_of).with_columns(pl.lit(0.0).alias("lumps"))
    parts = [stores]
    if online is not None:
        # every week a store of the region carries the SKU, weeks without an order as 0 (left out,
        # they would inflate a slow seller's online rate)
        carried = stores.select("region", "sku", "week").unique()
        units = online.group_by("region", "sku", "week").agg(pl.col("units").sum())
        cells = carried.join(units, on=["region", "sku", "week"], how="left")
        lumps = pl.lit(0.0)
        if dispersion is not None:
            cells = cells.join(dispersion.lazy().select("sku", "dispersion"), on="sku", how="left")
            lumps = (pl.col("dispersion").fill_null(1.0) - 1).clip(lower_bound=0)
        parts.append(
            cells.select(
                (pl.lit(ONLINE) + pl.col("region")).alias("channel"),
                "region",
                "sku",
                "week",
                pl.col("units").fill_null(0.0).clip(lower_bound=0),
                pl.lit(1.0).alias("exposure"),
                lumps.alias("lumps"),
            )
        )
    return pl.concat(parts).join(busy, on=["region", "week"], how="anti").collect()


def fit_tastes(cells: pl.DataFrame) -> pl.DataFrame:
    """Per region, SKU and week: observed units and units expected at the chain rate (the fitted
    units without the region's taste), and the variance beyond Poisson that the expected units carry
    (``excess``: each cell's lumps x its expected). Returns columns region, sku, week, observed,
    expected, excess, block (``stats.week_block``, the test's cluster)."""
    block = week_block()
    if cells.height == 0:
        return pl.DataFrame(
            schema={
                "region": pl.String,
                "sku": pl.String,
                "week": pl.Date,
                "observed": pl.Float64,
                "expected": pl.Float64,
                "excess": pl.Float64,
            }
        ).with_columns(block)
    codes = cells.select(
        (pl.struct("channel", "week").rank("dense") - 1).alias("size"),
        (pl.struct("sku", "week").rank("dense") - 1).alias("rate"),
        (pl.struct("region", "sku").rank("dense") - 1).alias("taste"),
    )
    effects = [
        Effect("size", codes["size"].to_numpy(), prior=0.01),
        Effect("rate", codes["rate"].to_numpy(), prior=0.01),
        Effect("taste", codes["taste"].to_numpy(), prior=0.5),
    ]
    y, exposure = cells["units"].to_numpy().astype(float), cells["exposure"].to_numpy().astype(float)
    offset = float(np.log(max(y.sum(), 1e-9) / exposure.sum()))
    fit_effects(y, exposure, effects, offset=offset)
    rows = np.arange(len(y))
    chain = exposure * np.exp(offset + effects[0].on(rows) + effects[1].on(rows))
    return (
        cells.select("region", "sku", "week", "units", "lumps")
        .with_columns(pl.Series("expected", chain))
        .group_by("region", "sku", "week")
        .agg(
            pl.col("units").sum().alias("observed"),
            pl.col("expected").sum(),
            (pl.col("lumps") * pl.col("expected")).sum().alias("excess"),
        )
        .with_columns(block)
    )


def _centred_on_the_rest(ratios: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Centre each region's log ratios on its median SKU and compare with the median other region
    (within each group of ``by``, e.g. a half of the year)."""
    by = list(by)
    centred = ratios.with_columns(
        (pl.col("lift").log() - pl.col("lift").log().median().over("region", *by)).alias("l"),
        (pl.col("se_log") ** 2).alias("v"),
    )
    others = centred.select(
        "sku", *by, pl.col("region").alias("other"), pl.col("l").alias("l_o"), pl.col("v").alias("v_o")
    )
    ref = (
        centred.select("region", "sku", *by)
        .join(others, on=["sku", *by])
        .filter(pl.col("region") != pl.col("other"))
        .group_by("region", "sku", *by)
        .agg(pl.col("l_o").median().alias("ref"), pl.col("v_o").median().alias("v_o"), pl.len().alias("n"))
    )
    # the median of n regions' log ratios varies less than one of them: by the median's factor
    factor = {n: median_variance(n) for n in ref["n"].unique().to_list()}
    ref = ref.with_columns((pl.col("v_o") * pl.col("n").replace_strict(factor)).alias("v_ref"))
    return centred.join(ref, on=["region", "sku", *by]).select(
        "region",
        "sku",
        *by,
        "support",
        "clusters",
        "df",
        "observed_units",
        (pl.col("l") - pl.col("ref")).alias("log_lift"),
        (pl.col("v") + pl.col("v_ref")).alias("var"),
    )


def against_the_rest(weekly: pl.DataFrame, *, min_weeks: int, by: Sequence[str] = ()) -> pl.DataFrame:
    """Per region, SKU (and ``by``) with at least ``min_weeks`` weeks: the region-against-the-rest log
    lift, its variance and degrees of freedom (the blocks' moderated variance, plus the reference's).
    ``weekly`` is ``fit_tastes`` output. Returns region, sku, ``by``, support (weeks), clusters
    (blocks), df, observed_units, log_lift, var."""
    keys = [*KEYS, *by]
    support = weekly.group_by(keys).agg(pl.len().alias("support"))
    per_block = weekly.group_by(*keys, "block").agg(
        pl.col("observed").sum(), pl.col("expected").sum(), pl.col("excess").sum()
    )
    ratios = (
        moderated_ratio_test(per_block, keys, family=["region"], alternative="two-sided")
        .rename({"support": "clusters"})
        .join(support, on=keys)
        .filter(pl.col("support") >= min_weeks)
    )
    return _centred_on_the_rest(ratios, by)


def halves(weekly: pl.DataFrame, *, first: date, as_of: date) -> pl.DataFrame:
    """The weekly rows twice over, labelled by ``part``: the half of the year (April to September or
    October to March: summer and winter wherever the chain is) and the half of the history."""
    middle = first + (as_of - first) / 2
    warm = pl.col("week").dt.month().is_between(4, 9)
    return pl.concat(
        [
            weekly.with_columns(
                pl.when(warm).then(pl.lit("apr-sep")).otherwise(pl.lit("oct-mar")).alias("part")
            ),
            weekly.with_columns(
                pl.when(pl.col("week") < middle)
                .then(pl.lit("earlier"))
                .otherwise(pl.lit("later"))
                .alias("part")
            ),
        ]
    )


def beyond_margin(log_lift: np.ndarray, se: np.ndarray, df: np.ndarray, margin: float) -> np.ndarray:
    """p-value of H0 |log lift| <= margin (two-sided; the usual test of 0 when margin is 0)."""
    a = np.abs(log_lift)
    return np.minimum(stats.t.sf((a - margin) / se, df) + stats.t.sf((a + margin) / se, df), 1.0)


def affinity_hypotheses(
    sales: pl.LazyFrame,
    instances: pl.LazyFrame,
    *,
    first: date,
    as_of: date,
    settings: MiningSettings,
    online: pl.LazyFrame | None = None,
    dispersion: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every local affinity hypothesis tested (see the module doc). ``online`` and ``dispersion`` as
    ``affinity_cells`` takes them. Returns region, sku, support (weeks), lift (shrunk), ci_low,
    ci_high, se_log, p_value."""
    cells = affinity_cells(
        sales, online, event_weeks(instances), first=first, as_of=as_of, dispersion=dispersion
    )
    weekly = fit_tastes(cells)
    if weekly["region"].n_unique() < 2:  # one region is the chain: its share cannot differ from itself
        weekly = weekly.clear()
    tested = against_the_rest(weekly, min_weeks=settings.min_weeks)
    margin = float(np.log(settings.min_affinity_lift))
    log_lift, var = tested["log_lift"].to_numpy(), tested["var"].to_numpy()
    df = tested["df"].to_numpy()
    p = beyond_margin(log_lift, np.sqrt(var), df, margin)
    # stable over the year: on the same side of 1 in every half, significantly (intersection-union
    # test). A half has too few 4-week blocks for a variance of its own: it borrows the whole
    # history's, scaled by the share of the units it holds (a ratio's variance goes as 1 / units).
    parts = against_the_rest(halves(weekly, first=first, as_of=as_of), min_weeks=PART_MIN_WEEKS, by=("part",))
    whole = tested.select(
        *KEYS,
        pl.Series("side", np.sign(log_lift)),
        pl.Series("v_all", var),
        pl.Series("df", df),
        pl.col("observed_units").alias("o_all"),
    )
    each = whole.join(parts, on=list(KEYS)).with_columns(
        (pl.col("side") * pl.col("log_lift")).alias("l_side"),
        (pl.col("v_all") * (pl.col("o_all") + 0.5) / (pl.col("observed_units") + 0.5)).alias("v_part"),
    )
    t_part = each["l_side"].to_numpy() / np.sqrt(each["v_part"].to_numpy())
    worst = (
        each.select(*KEYS, "part", pl.Series("p", stats.t.sf(t_part, each["df"].to_numpy())))
        .group_by(KEYS)
        .agg(pl.col("p").max(), pl.col("part").n_unique().alias("n_parts"))
    )
    p_parts = (
        whole.join(worst, on=list(KEYS), how="left")  # a half with no weeks shows nothing
        .select(pl.when(pl.col("n_parts") == N_PARTS).then(pl.col("p")).otherwise(1.0).fill_null(1.0))
        .to_series()
        .to_numpy()
    )
    post, post_var = adaptive_shrink(log_lift, var)
    crit = stats.t.ppf(0.975, df)
    return tested.select(*KEYS, "support").with_columns(
        pl.Series("lift", np.exp(post)),
        pl.Series("ci_low", np.exp(post - crit * np.sqrt(post_var))),
        pl.Series("ci_high", np.exp(post + crit * np.sqrt(post_var))),
        pl.Series("se_log", np.sqrt(var)),
        pl.Series("p_value", np.maximum(p, p_parts)),
    )
