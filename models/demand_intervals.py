"""Forecast intervals of the demand model: negative-binomial quantiles, their width calibrated on held-out
days (split conformal over a one-parameter family).

The model predicts a mean ``mu`` per store x SKU x day. Around it the counts are taken as negative
binomial, Var = mu + a mu^2, so a slow seller's interval is narrow and a fast seller's wide. The
dispersion ``a`` is not fitted by moments but chosen, per horizon block, as the smallest value whose
p10-p90 interval holds the target share (80%) of the block's held-out days: what conformal prediction
does with backtest residuals (mlforecast's ``PredictionIntervals``), with the scale carried by ``mu``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

DISPERSION_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 20.0, 72)])
MAX_CALIBRATION_ROWS = 20_000  # a seeded sample is plenty to place one parameter


def nb_interval(mu: np.ndarray, dispersion: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (p10, p90) of a negative binomial with mean ``mu`` and Var = mu + dispersion mu^2
    (Poisson when dispersion is 0). Counts are discrete, so for a very slow seller both quantiles can
    be 0 while the mean is 0.2: the interval is widened to contain the mean, so p10 <= units <= p90."""
    mu = np.asarray(mu, dtype=np.float64)
    if dispersion < 1e-9:
        lo, hi = stats.poisson.ppf(0.1, mu), stats.poisson.ppf(0.9, mu)
    else:
        n = 1.0 / dispersion
        p = n / (n + mu)
        lo, hi = stats.nbinom.ppf(0.1, n, p), stats.nbinom.ppf(0.9, n, p)
    lo = np.nan_to_num(lo, nan=0.0)
    hi = np.nan_to_num(hi, nan=0.0)
    return np.minimum(lo, mu), np.maximum(hi, mu)


def nb_dispersion(y: np.ndarray, mu: np.ndarray) -> float:
    """Return the moment estimate of a in Var(y) = mu + a mu^2 (0 when no overdispersion shows)."""
    denom = float(np.sum(mu**2))
    if denom <= 0:
        return 0.0
    return max(0.0, float(np.sum((y - mu) ** 2 - mu)) / denom)


def _cdf(k: np.ndarray, mu: np.ndarray, dispersion: float) -> np.ndarray:
    """P(Y <= k) for the negative binomial (Poisson at dispersion 0) with mean ``mu``."""
    if dispersion < 1e-9:
        return stats.poisson.cdf(k, mu)
    n = 1.0 / dispersion
    return stats.nbinom.cdf(k, n, n / (n + mu))


def inside_interval(y: np.ndarray, mu: np.ndarray, dispersion: float) -> np.ndarray:
    """Return, per row, whether ``y`` lies in nb_interval(mu, dispersion), without computing quantiles:
    for a count y, y >= p10 iff F(y) >= 0.1 and y <= p90 iff F(y - 1) < 0.9 (CDFs are far cheaper than
    quantiles, and calibration evaluates many widths)."""
    y, mu = np.asarray(y, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    k = np.floor(y)
    above_lo = (_cdf(k, mu, dispersion) >= 0.1) | (y >= mu)
    below_hi = (_cdf(np.ceil(y) - 1, mu, dispersion) < 0.9) | (y <= mu)
    return above_lo & below_hi


def interval_coverage(y: np.ndarray, mu: np.ndarray, dispersion: float) -> float:
    """Return the share of ``y`` inside the p10-p90 interval around ``mu`` (nan for no rows)."""
    if len(y) == 0:
        return float("nan")
    return float(np.mean(inside_interval(y, mu, dispersion)))


def calibrate_dispersion(y: np.ndarray, mu: np.ndarray, *, coverage: float = 0.8, seed: int = 0) -> float:
    """Return the smallest dispersion of DISPERSION_GRID whose p10-p90 intervals hold at least
    ``coverage`` of the held-out ``y`` (the grid's largest when none does; 0 without rows). Coverage
    grows with the dispersion, so a bisection over the grid finds it."""
    y, mu = np.asarray(y, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    if len(y) == 0:
        return 0.0
    if len(y) > MAX_CALIBRATION_ROWS:
        keep = np.random.default_rng(seed).choice(len(y), size=MAX_CALIBRATION_ROWS, replace=False)
        y, mu = y[keep], mu[keep]
    lo, hi = 0, len(DISPERSION_GRID) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if interval_coverage(y, mu, float(DISPERSION_GRID[mid])) >= coverage:
            hi = mid
        else:
            lo = mid + 1
    return float(DISPERSION_GRID[lo])
