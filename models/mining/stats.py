"""Shared statistics for the weekly patterns (local affinity, latent demand): a t-test on weekly log
ratios of observed to expected units, with the sample size shrunk for week-to-week autocorrelation.

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
