"""Shared statistics of the miner.

``clustered_ratio_test``: a ratio of observed to expected totals (the estimand every pattern
reports), tested with a cluster-robust variance across independent clusters (events, blocks of weeks).

``weekly_ratio_test``: a t-test on weekly log ratios of observed to expected units, with the sample
size shrunk for week-to-week autocorrelation.

Weeks of one region and SKU are not independent (a good month follows a good month), so the effective
number of weeks is n (1 - rho) / (1 + rho) for a positive lag-1 autocorrelation rho (the AR(1) variance
inflation of a mean), never below 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

Alternative = Literal["two-sided", "greater"]


def _per_group(weekly: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Per group: support, pooled observed/expected, mean/sd of log ratios, lag-1 autocorrelation."""
    keys = list(keys)
    with_l = weekly.sort([*keys, "week"]).with_columns(
        ((pl.col("observed").clip(lower_bound=0) + 0.5) / (pl.col("expected") + 0.5)).log().alias("l")
    )
    dev = pl.col("l") - pl.col("l").mean().over(keys)
    with_dev = with_l.with_columns(dev.alias("d"))
    return (
        with_dev.with_columns((pl.col("d") * pl.col("d").shift(1).over(keys)).alias("dd"))
        .group_by(keys)
        .agg(
            pl.len().alias("support"),
            pl.col("observed").sum(),
            pl.col("expected").sum(),
            pl.col("l").mean().alias("mean_l"),
            pl.col("l").std(ddof=1).fill_null(0.0).fill_nan(0.0).alias("sd_l"),
            (pl.col("dd").sum() / pl.col("d").pow(2).sum()).fill_nan(0.0).fill_null(0.0).alias("rho"),
            (1 / (pl.col("observed").clip(lower_bound=0) + 0.5)).mean().alias("pois_var"),
        )
        .sort(keys)
    )


def weekly_ratio_test(
    weekly: pl.DataFrame, keys: Sequence[str], *, alternative: Alternative, min_weeks: int
) -> pl.DataFrame:
    """Test mean weekly log(observed / expected) = 0 per group of ``keys`` with at least ``min_weeks``.

    ``weekly`` has ``keys``, week, observed, expected. Returns ``keys`` plus support (weeks), lift (pooled
    observed / expected), ci_low, ci_high (95%, log-scale t-interval around the pooled lift), se_log,
    n_eff and p_value.
    """
    grouped = _per_group(weekly, keys).filter((pl.col("support") >= min_weeks) & (pl.col("expected") > 0))
    n = grouped["support"].to_numpy().astype(float)
    rho = np.clip(grouped["rho"].to_numpy(), 0.0, 0.95)
    n_eff = np.clip(n * (1 - rho) / (1 + rho), min(2.0, float(min_weeks)), None)
    n_eff = np.minimum(n_eff, n)
    # floor at the Poisson noise of the counts: a run of identical weeks is not infinitely precise
    sd = np.maximum(grouped["sd_l"].to_numpy(), np.sqrt(grouped["pois_var"].to_numpy()))
    se = sd / np.sqrt(n_eff)
    df = np.maximum(n_eff - 1, 1)
    t_stat = grouped["mean_l"].to_numpy() / se
    p = stats.t.sf(t_stat, df) if alternative == "greater" else 2 * stats.t.sf(np.abs(t_stat), df)
    lift = grouped["observed"].to_numpy() / grouped["expected"].to_numpy()
    crit = stats.t.ppf(0.975, df)
    log_lift = np.log(np.maximum(lift, 1e-12))
    return grouped.select(*keys, "support").with_columns(
        pl.Series("lift", lift),
        pl.Series("ci_low", np.exp(log_lift - crit * se)),
        pl.Series("ci_high", np.exp(log_lift + crit * se)),
        pl.Series("se_log", se),
        pl.Series("n_eff", n_eff),
        pl.Series("p_value", np.minimum(p, 1.0)),
    )


def clustered_ratio_test(
    clusters: pl.DataFrame, keys: Sequence[str], *, alternative: Alternative = "greater"
) -> pl.DataFrame:
    """Test lift = sum(observed) / sum(expected) = 1 per group of ``keys``, across its clusters.

    ``clusters`` has ``keys``, observed, expected, one row per independent cluster. The lift is the
    ratio estimator (a mean of per-cluster ratios weighted by expected units); its log has the
    cluster-robust (sandwich) variance G/(G-1) sum_g (O_g - lift E_g)^2 / sum(O)^2 over G clusters,
    floored at the Poisson variance 1/sum(O) (clusters that happen to agree are not infinitely
    precise), tested with a t distribution on G - 1 degrees of freedom. Returns ``keys``, support (G),
    lift, ci_low, ci_high (95%), se_log, p_value, observed_units, expected_units.
    """
    keys = list(keys)
    ratio = (pl.col("observed").sum() + 0.5) / (pl.col("expected").sum() + 0.5)
    grouped = (
        clusters.with_columns(ratio.over(keys).alias("lift"))
        .group_by(keys)
        .agg(
            pl.len().alias("support"),
            pl.col("lift").first(),
            pl.col("observed").sum().alias("observed_units"),
            pl.col("expected").sum().alias("expected_units"),
            ((pl.col("observed") - pl.col("lift") * pl.col("expected")) ** 2).sum().alias("ss"),
        )
        .sort(keys)
    )
    g = grouped["support"].to_numpy().astype(float)
    o = grouped["observed_units"].to_numpy() + 0.5
    se = np.sqrt(np.maximum(grouped["ss"].to_numpy() * g / np.maximum(g - 1, 1) / o**2, 1 / o))
    df = np.maximum(g - 1, 1)
    log_lift = np.log(grouped["lift"].to_numpy())
    t_stat = log_lift / se
    p = stats.t.sf(t_stat, df) if alternative == "greater" else 2 * stats.t.sf(np.abs(t_stat), df)
    crit = stats.t.ppf(0.975, df)
    return grouped.select(*keys, "support", "lift", "observed_units", "expected_units").with_columns(
        pl.Series("ci_low", np.exp(log_lift - crit * se)),
        pl.Series("ci_high", np.exp(log_lift + crit * se)),
        pl.Series("se_log", se),
        pl.Series("p_value", np.minimum(p, 1.0)),
    )
