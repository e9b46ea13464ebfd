"""How over-dispersed a store's daily demand is, for the sell-out days of the event miner.

A store-day that ended with an empty shelf is censored: its demand was at least what it sold. The
miner fills such a part with E[demand | demand >= sold] (EM, ``models.mining.effects``). Under a
Poisson model that conditional mean sits just above the units sold, and the stores that did *not*
sell out on an event peak are those whose demand happened to be low: with over-dispersed demand the
filled peak reads low (a 4x lift with most stores sold out read 3.1-3.7x on the test chain). With a
negative binomial of the right size the conditional mean carries the spread: 3.6-4.4x.

The size is estimated by moments from the store-days outside every event window: for a store whose
part of its region's row is ``share`` and the fit's row mean ``mu``, its expected units are
m = share x mu, and E[(units - m)^2 - units] = m^2 / size. Every carried store-day counts: a day
without a sales row is a day with none sold, and a day that sold out enters by its conditional
moment given that demand reached what sold (``store_size``). Either left out reads the demand as
less spread than it is, and the filled peaks low (on the demo world a size of 5.3 where the truth
is 3.9, and event lifts of sell-out SKUs 3-15% low).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from features.signals import pair_weights
from models.mining.effects import censored_mean

MIN_SIZE = 0.5  # a size below this (variance over twice m^2) is taken as this
MIN_TAU2 = 1e-6  # a shared shock variance below this is taken as this (a pseudo-count of 1e6: no shock)


def uncensored_store_days(clean_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Store-days that did not end with an empty shelf: store_id, region, sku, date, units, weight
    (the store's mean daily units, as in ``features.signals.daily_panel``)."""
    weights = pair_weights(clean_sales).select("store_id", "sku", "weight")
    return (
        clean_sales.filter(~pl.col("censored"))
        .join(weights, on=["store_id", "sku"])
        .select("store_id", "region", "sku", "date", pl.col("units").clip(lower_bound=0.0), "weight")
    )


def store_size(
    units: np.ndarray,
    expected: np.ndarray,
    *,
    square: float | None = None,
    censored_expected: np.ndarray | None = None,
    sold: np.ndarray | None = None,
    rounds: int = 50,
) -> float:
    """The negative binomial size of store-day demand by moments: sum(m^2) / sum((u - m)^2 - u).

    ``units`` and ``expected`` (m): the uncensored store-days with a sales row. ``square``: sum(m^2)
    over every uncensored store-day that carried the SKU, the days without a row (none sold, each
    adding m^2 to the excess) included; None: the rows' own. Leaving the zero days out reads the
    demand as less spread than it is.

    ``censored_expected`` and ``sold``: the store-days that sold out, whose demand was at least what
    they sold. They are the top of the spread, so leaving them out reads it too narrow as well; they
    enter by their conditional moment E[(D - m)^2 - D | D >= sold] under the size found so far, until
    the size settles (at most ``rounds`` rounds; the moments' EM). inf: not over-dispersed.
    """
    excess = float(np.sum(units * units - 2 * units * expected - units))
    square = float(np.sum(expected**2)) if square is None else float(square)
    m_c = np.zeros(0) if censored_expected is None else np.asarray(censored_expected, np.float64)
    c = np.zeros(0) if sold is None else np.asarray(sold, np.float64)
    size = _moment_size(square, excess + square)
    for _ in range(rounds if len(m_c) else 0):
        extra = float(np.sum(censored_excess(m_c, c, size)))
        new = _moment_size(square + float(np.sum(m_c**2)), excess + square + extra)
        if new == size or (np.isfinite(new) and np.isfinite(size) and abs(new / size - 1) < 1e-4):
            size = new
            break
        size = new
    return size


def _moment_size(square: float, excess: float) -> float:
    if excess <= 0 or square <= 0:
        return float(np.inf)
    return max(square / excess, MIN_SIZE)


def censored_excess(mu: np.ndarray, sold: np.ndarray, size: float) -> np.ndarray:
    """E[(Y - mu)^2 - Y | Y >= sold] for Y negative binomial of mean ``mu`` and ``size`` (Poisson
    where the size is infinite), elementwise: E[Y(Y-1) | Y >= sold] - 2 mu E[Y | Y >= sold] + mu^2,
    with E[Y(Y-1); Y >= c] = mu^2 (size + 1) / size P(Y'' >= c - 2), Y'' of size + 2 and the same p
    (``models.mining.effects.censored_mean`` for the first moment)."""
    mu = np.maximum(mu, 1e-12)
    if np.isfinite(size):
        p = size / (size + mu)
        upper = stats.nbinom.sf(sold - 1, size, p)
        second = mu**2 * (size + 1) / size * stats.nbinom.sf(sold - 3, size + 2, p)
    else:
        upper = stats.poisson.sf(sold - 1, mu)
        second = mu**2 * stats.poisson.sf(sold - 3, mu)
    first = censored_mean(mu, sold, size)
    # far in the tail the ratio is 0/0: demand is then just above what sold
    second = np.where(upper > 1e-12, second / np.maximum(upper, 1e-300), first * (first - 1))
    return np.maximum(second, first * (first - 1)) - 2 * mu * first + mu**2


def shared_shock_variance(counts: np.ndarray, expected: np.ndarray, group: np.ndarray) -> tuple[float, float]:
    """How much of a region-day's deviation from its fit the regions share, by moments.

    Rows are region x SKU x day cells with ``counts`` (sold-out parts filled) and a fit's ``expected``
    demand without any same-day shock; ``group`` is the SKU x day code (rows of one group are the
    regions of one SKU on one day). With a shared multiplicative shock of variance ``tau2`` and a
    region's own excess variance ``phi`` (E[(c - m)^2] = m + m^2 (tau2 + phi)), two regions' residuals on
    one day have covariance m_r m_s tau2, so

        tau2 = sum_g [(sum_r (c_r - m_r))^2 - sum_r (c_r - m_r)^2] / sum_g [(sum_r m_r)^2 - sum_r m_r^2]
        tau2 + phi = sum [(c - m)^2 - c] / sum m^2.

    Returns (tau2, phi), each at least 0.
    """
    resid = counts - expected
    n = int(group.max(initial=-1)) + 1
    across = np.bincount(group, resid, n) ** 2 - np.bincount(group, resid**2, n)
    pairs = np.bincount(group, expected, n) ** 2 - np.bincount(group, expected**2, n)
    tau2 = max(float(across.sum()) / float(pairs.sum()), 0.0) if pairs.sum() > 0 else 0.0
    total = float(np.sum(resid**2 - counts)) / max(float(np.sum(expected**2)), 1e-12)
    return tau2, max(total - tau2, 0.0)


def shock_prior(
    expected: np.ndarray, group: np.ndarray, tau2: float, phi: float, *, levels: int
) -> np.ndarray:
    """Per SKU x day level, the pseudo-count that shrinks its shock (control total / expected) as much
    as empirical Bayes asks: the shrinkage factor E / (E + a) equals tau2 / (tau2 + v), with v = 1 / E
    + phi sum(m_r^2) / E^2 the noise variance of the controls' ratio (E = sum of their m_r), so
    a = (1 + phi sum(m_r^2) / E) / tau2; ``levels`` entries (the code's range)."""
    total = np.bincount(group, expected, levels)
    square = np.bincount(group, expected**2, levels)
    return (1.0 + phi * square / np.maximum(total, 1e-12)) / max(tau2, MIN_TAU2)


def shock_left(
    expected: np.ndarray, group: np.ndarray, tau2: float, phi: float, *, levels: int
) -> np.ndarray:
    """Per SKU x day level, the variance of the shared shock's log that its shrunk estimate leaves
    (``shock_prior``'s posterior): tau2 x a / (E + a), E the controls' expected demand that day. A day
    without controls (every region inside the window: a chain-wide event) keeps all of tau2, the
    share of the same-day shock that no counterfactual without control regions can see."""
    total = np.bincount(group, expected, levels)
    a = shock_prior(expected, group, tau2, phi, levels=levels)
    return tau2 * a / (total + a)


def pair_dispersion(units: np.ndarray, expected: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Per store x SKU (``pair`` codes of the store-days), its own 1 / size by moments over its days:
    sum((u - m)^2 - u) / sum(m^2), never below 0 (Poisson).

    One size for every store and SKU reads a chain's spread where it is largest in units, its big
    sellers'. On real stores it is not one: in M5 a pair's own reads from under 0.1 to over 30 (a
    store whose customers buy some item by the case: TX_2 sells HOUSEHOLD_1_474 ten a day and on ten
    days 300-626), against 0.05 for the chain, so a case sale on an event day read as a rise. Each
    pair's own history is long (a day a row), so its estimate needs no pooling to be of use."""
    n = int(pair.max(initial=-1)) + 1
    excess = np.bincount(pair, (units - expected) ** 2 - units, n)
    square = np.bincount(pair, expected**2, n)
    return np.where(square > 0, np.maximum(excess, 0.0) / np.maximum(square, 1e-12), 0.0)


def row_dispersion(
    units: np.ndarray,
    expected: np.ndarray,
    pair: np.ndarray,
    row: np.ndarray,
    share: np.ndarray,
    square_share: np.ndarray,
    size: float,
    *,
    rows: int,
) -> np.ndarray:
    """Per panel row, the sum over its stores of share^2 / size: each store-day with a sales row
    (``units``, ``expected``, its store x SKU ``pair``, panel ``row`` and ``share`` of the row's
    exposure) at its pair's own 1 / size (``pair_dispersion``), never below the chain's (a pair's own
    read only ever widens it: its noise does not narrow a test), and the row's other stores (days
    without a sales row: the rest of ``square_share``) at the chain's ``size``."""
    common = 1 / size if np.isfinite(size) else 0.0
    kappa = np.maximum(pair_dispersion(units, expected, pair), common)
    own = np.bincount(row, share**2 * kappa[pair], rows)
    if not len(square_share):
        return own
    return own + np.maximum(square_share - np.bincount(row, share**2, rows), 0.0) * common
