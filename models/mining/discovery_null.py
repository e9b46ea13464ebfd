"""The discovery scan's riser test calibrated on the data: an empirical null for the tail.

The scan calls a SKU a riser when its demand over a span is as unlikely as ``riser_z`` one-sided
standard errors under a negative binomial whose variance (``var``) the counterfactual supplies. That
variance is right on average (mean squared Pearson residual near 1) but the tail of real demand is
heavier than the negative binomial's: a region's demand is a sum over stores of over-dispersed counts
of unequal size, and its far upper tail follows the biggest store's, not the sum's variance. Left
alone, the share of risers on a chain with no unlabeled event is 2-3x the nominal tail (more for busy
SKUs and for 3-day spans), and more background risers mean more chance co-risers.

So, as with Efron's empirical null, the null is fitted from the data rather than assumed: per group
of rows (the regions, or the chain) and band of expected units, the excess variance (var - expected)
is inflated by the smallest factor ``kappa`` (at least 1) for which the share of *null* cells that
pass the riser test is at most the nominal tail. Efron fits the null's centre and scale from the
bulk; here the bulk is already right and the misfit is in the tail, so the fit is made in the tail
itself, on the cells that cannot belong to a co-rising group: not those of region-spans (nor their
neighbours) holding more cells with tail p <= ``SCREEN_P`` than the region's other days make likely
(a real unlabeled event puts several SKUs of the region-span far out at once; under the null a cell's
neighbours tell nothing of its own tail).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

E_EDGES = (2.0, 8.0)  # expected units per day splitting the cells into bands, fitted apart
SCREEN_P = 1e-3  # tail p of a neighbour that counts toward a co-rising group
CROWD_P = 0.01  # Poisson tail of a region-span's count of such cells that makes it crowded (not null)
MIN_TAIL = 25.0  # fewest null cells a unit of bands must expect past the level (relative error 20%)
SCREEN_ROUNDS = 3  # fits, each screening with the previous one's variance
KAPPA_MAX = 16.0  # the largest inflation of the excess variance tried
KAPPA_STEPS = 12  # bisection steps on log kappa


def tail_p(y: np.ndarray, e: np.ndarray, var: np.ndarray) -> np.ndarray:
    """P(Y >= y) for a negative binomial with mean ``e`` and variance ``var`` (Poisson where var <= e).

    Small counts are skewed: a normal z would call a 3-unit day against 0.8 expected a 3-sigma riser
    several times more often than it happens."""
    alpha = np.maximum(var - e, 0.0) / np.maximum(e, 1e-9) ** 2
    k = np.ceil(y) - 1
    with np.errstate(all="ignore"):
        n = 1 / np.maximum(alpha, 1e-9)
        nb = stats.nbinom.sf(k, n, n / (n + e))
    return np.where(alpha > 1e-6, nb, stats.poisson.sf(k, e))


def passes(y: np.ndarray, e: np.ndarray, var: np.ndarray, *, level: float, min_lift: float) -> np.ndarray:
    """The riser test on flat arrays: tail p at most ``level``, ``min_lift`` x and 1.5 standard errors
    above expectation."""
    out = (y >= min_lift * e) & (y - e >= 1.5 * np.sqrt(var))
    idx = np.flatnonzero(out)
    out[idx] = tail_p(y[idx], e[idx], var[idx]) <= level
    return out


def tail_inflation(
    y: np.ndarray,
    e: np.ndarray,
    var: np.ndarray,
    scanned: np.ndarray,
    groups: np.ndarray,
    *,
    days: int,
    level: float,
    min_lift: float,
) -> np.ndarray:
    """Per cell of the (rows, SKUs, days) span sums, the factor ``kappa`` by which its excess variance
    grows so that null cells pass the riser test at the nominal ``level``; ``groups`` (one id per row)
    says which rows share a null (each band of expected units per day of ``E_EDGES`` apart).

    Null cells are the scanned ones of row-days more than ``days`` days away from a crowded one (a
    span holding more cells with tail p <= ``SCREEN_P`` than its row's days make likely: a co-rising
    group, or the spans that reach into it), screened again with the variance calibrated so far
    (``SCREEN_ROUNDS`` rounds: a badly understated variance crowds many days at first); per group
    and band ``kappa`` is the smallest in [1, ``KAPPA_MAX``] (by bisection on its log) whose share
    of null cells passing is at most ``level``."""
    band = np.searchsorted(np.asarray(E_EDGES), e / days, side="right")
    cell_group = np.broadcast_to(np.asarray(groups)[:, None, None], y.shape)
    kappa = np.ones(y.shape)
    for _ in range(SCREEN_ROUNDS):  # the screen with the variance calibrated so far
        null = scanned & ~_crowded(y, e, e + kappa * (var - e), scanned, days)
        for g in np.unique(groups):
            in_group = cell_group == g
            for bands in _units(np.bincount(band[in_group & null], minlength=len(E_EDGES) + 1) * level):
                cells = in_group & np.isin(band, bands)
                at = np.flatnonzero(cells & null)
                kappa[cells] = _fit(y.ravel()[at], e.ravel()[at], var.ravel()[at], level, min_lift)
    return kappa


def _crowded(y: np.ndarray, e: np.ndarray, var: np.ndarray, scanned: np.ndarray, days: int) -> np.ndarray:
    """(rows, 1, days): row-days within ``days`` of a crowded one, whose count of scanned cells with
    tail p <= ``SCREEN_P`` (tail p only where it can be that small, 1.5 standard errors up) has a
    Poisson tail below ``CROWD_P`` at the row's mean count (over its days, the top 2% left out)."""
    idx = np.flatnonzero(scanned & (y - e >= 1.5 * np.sqrt(var)))
    low = np.zeros(y.shape, dtype=bool)
    low.ravel()[idx] = tail_p(y.ravel()[idx], e.ravel()[idx], var.ravel()[idx]) <= SCREEN_P
    count = low.sum(axis=1)
    cut = np.quantile(count, 0.98, axis=1, keepdims=True)
    mean = np.where(count <= cut, count, 0).sum(axis=1, keepdims=True) / np.maximum(
        (count <= cut).sum(axis=1, keepdims=True), 1
    )
    crowded = (count > 0) & (stats.poisson.sf(count - 1, np.maximum(mean, 1e-3)) < CROWD_P)
    near = crowded.copy()
    for d in range(1, days + 1):
        near[:, d:] |= crowded[:, :-d]
        near[:, :-d] |= crowded[:, d:]
    return near[:, None, :]


def _units(expected_tail: np.ndarray) -> list[list[int]]:
    """The bands (by index) fitted together: neighbouring bands merged until each unit expects
    ``MIN_TAIL`` null cells past the level; none when the group as a whole expects fewer (too few
    cells to see a tail: the model's own stands)."""
    units: list[list[int]] = []
    current: list[int] = []
    for b in range(len(expected_tail)):
        current.append(b)
        if expected_tail[current].sum() >= MIN_TAIL:
            units.append(current)
            current = []
    if current and units:
        units[-1] += current
    return units


def _fit(y: np.ndarray, e: np.ndarray, var: np.ndarray, level: float, min_lift: float) -> float:
    """The smallest kappa in [1, ``KAPPA_MAX``] (bisection on its log) at which at most ``level`` of
    these null cells pass the riser test."""
    allowed = level * len(y)
    first = passes(y, e, var, level=level, min_lift=min_lift)  # only these can pass at kappa > 1
    y, e, var = y[first], e[first], var[first]
    if len(y) <= allowed:
        return 1.0
    lo, hi = 0.0, np.log(KAPPA_MAX)
    for _ in range(KAPPA_STEPS):
        mid = (lo + hi) / 2
        n = passes(y, e, e + np.exp(mid) * (var - e), level=level, min_lift=min_lift).sum()
        lo, hi = (lo, mid) if n <= allowed else (mid, hi)
    return float(np.exp(hi))
