"""Poisson regression whose regressors are all categorical effects (high-dimensional fixed effects).

    log E[y_i] = log(exposure_i) + offset + sum_j theta_j[level_j(i)]

With indicator regressors only, the Poisson likelihood equations say "for every level of every
effect, fitted total = observed total". Iterative proportional fitting (IPF) cycles through the
effects and rescales each level by observed / fitted total; every step raises the likelihood, and the
fixed point is the maximum-likelihood fit (the same estimate as ``pyfixest.fepois`` or a statsmodels
Poisson GLM with one dummy per level; ``tests/models/mining/test_effects.py`` checks against the
GLM). Each sweep is one ``np.bincount`` per effect, so a fit costs rows x effects x sweeps: it scales
with the panel, not with the number of levels or hypotheses.

Two additions to the plain MLE:

* ``prior``: each level gets a pseudo-count placed at theta = 0 (no deviation from the other
  effects), a ridge-like shrinkage that keeps levels with little or no data finite.
* Slopes: an effect may carry a per-row covariate x (``slope_of``): theta is then a log-linear slope
  per level, fitted by one penalised Newton step per sweep (a local trend inside each block).
* Censored counts: a part of a row whose demand is only known to be >= the units it sold (the shelf
  ran empty) enters by EM: each sweep fills it with E[Y | Y >= sold] under the current fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats


@dataclass
class Effect:
    """One categorical effect: a level code per panel row (-1 where the effect does not apply).

    ``theta`` holds one log effect per level; it is updated in place by ``fit_effects`` and may be
    copied into another fit as its starting point.
    """

    name: str
    codes: np.ndarray
    prior: float | np.ndarray = 0.5  # a pseudo-count, or one per level
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    slope_of: np.ndarray | None = None  # a per-row covariate: theta is then a slope per level
    bound: float = np.inf  # |theta| never exceeds it (a slope fitted on few rows must not explode)

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes, dtype=np.int64)
        levels = int(self.codes.max()) + 1 if self.codes.size else 0
        if len(self.theta) != levels:
            self.theta = np.zeros(levels)

    def on(self, rows: np.ndarray) -> np.ndarray:
        """The effect's log contribution on ``rows`` (0 where it does not apply)."""
        c = self.codes[rows]
        return np.where(c >= 0, self.theta[np.maximum(c, 0)] * self.row_values(rows), 0.0)

    def warm(self) -> Effect:
        """A copy that starts from this effect's current estimates (codes shared, not copied)."""
        return Effect(self.name, self.codes, self.prior, self.theta.copy(), self.slope_of, self.bound)

    def row_values(self, rows: np.ndarray) -> np.ndarray:
        """The effect's covariate on ``rows``: 1 for a level effect, ``slope_of`` for a slope."""
        return np.ones(len(rows)) if self.slope_of is None else self.slope_of[rows]


@dataclass(frozen=True)
class Censored:
    """Parts of panel rows whose demand is only known to be at least ``sold``.

    ``row`` indexes the panel row, ``share`` is the part's share of that row's exposure.
    """

    row: np.ndarray
    sold: np.ndarray
    share: np.ndarray
    size: float = np.inf  # a part's demand is negative binomial of this size (inf: Poisson)

    @staticmethod
    def none() -> Censored:
        return Censored(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    def take(self, keep: np.ndarray, new_row: np.ndarray) -> Censored:
        """The parts selected by boolean ``keep``, their rows renumbered by ``new_row``."""
        return Censored(new_row[self.row[keep]], self.sold[keep], self.share[keep], self.size)


def censored_mean(mu: np.ndarray, sold: np.ndarray, size: float = np.inf) -> np.ndarray:
    """E[Y | Y >= sold] for Y ~ Poisson(mu), elementwise: mu P(Y >= sold - 1) / P(Y >= sold); for a
    finite ``size`` Y is negative binomial of mean mu and that size (variance mu + mu^2 / size), and
    E[Y; Y >= sold] = mu P(Y' >= sold - 1) with Y' negative binomial of size + 1 and the same p."""
    if np.isfinite(size):
        p = size / (size + np.maximum(mu, 1e-12))
        upper = stats.nbinom.sf(sold - 1, size, p)
        ratio = mu * stats.nbinom.sf(sold - 2, size + 1, p) / np.maximum(upper, 1e-300)
    else:
        upper = stats.poisson.sf(sold - 1, mu)
        ratio = mu * stats.poisson.sf(sold - 2, mu) / np.maximum(upper, 1e-300)
    # far in the tail the ratio is 0/0: demand is then just above what sold
    return np.where(upper > 1e-12, np.maximum(ratio, sold), sold + mu)


def fill_censored(y: np.ndarray, mu: np.ndarray, censored: Censored) -> np.ndarray:
    """``y`` plus each censored part's expected demand given that it sold out (under mean ``mu``)."""
    if not len(censored.row):
        return y
    filled = y.copy()
    mean = censored_mean(censored.share * mu[censored.row], censored.sold, censored.size)
    np.add.at(filled, censored.row, mean)
    return filled


def fill_own_lift(
    y: np.ndarray, expected: np.ndarray, censored: Censored, *, rounds: int = 200, tol: float = 1e-4
) -> np.ndarray:
    """``y`` (a count per row) with each row's ``censored`` parts filled under the row's own lift over
    ``expected``, (filled + 1) / (expected + 1), by EM to a fixed point (no row's lift moving by more
    than ``tol`` in log, at most ``rounds`` rounds); only the rows still moving are refilled."""
    if not len(censored.row):
        return y
    lift = np.ones(len(y))
    extra = np.zeros(len(y))
    active = np.unique(censored.row)
    for _ in range(rounds):
        on = np.isin(censored.row, active)
        part = censored.take(on, np.arange(len(y)))
        extra[active] = 0.0
        np.add.at(
            extra,
            part.row,
            censored_mean(part.share * expected[part.row] * lift[part.row], part.sold, part.size),
        )
        new = (y[active] + extra[active] + 1.0) / (expected[active] + 1.0)
        moved = np.abs(np.log(new / lift[active])) > tol
        lift[active] = new
        active = active[moved]
        if not len(active):
            break
    return y + extra


def linear_predictor(effects: list[Effect], rows: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """offset + the sum of the effects on ``rows``."""
    eta = np.full(len(rows), offset)
    for e in effects:
        eta += e.on(rows)
    return eta


def fit_effects(
    y: np.ndarray,
    exposure: np.ndarray,
    effects: list[Effect],
    *,
    mask: np.ndarray | None = None,
    censored: Censored | None = None,
    offset: float = 0.0,
    max_sweeps: int = 100,
    tol: float = 1e-3,
) -> int:
    """Fit the effects on the rows where ``mask`` is True (all rows by default), in place.

    ``y`` holds the uncensored counts of each row; ``censored`` parts are refilled every sweep. Starts
    from the effects' current ``theta`` and stops when no level moves by more than ``tol`` (log
    scale). Returns the number of sweeps.
    """
    rows = np.arange(len(y)) if mask is None else np.flatnonzero(mask)
    local = np.full(len(y), -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    cens = censored or Censored.none()
    cens = cens.take(local[cens.row] >= 0, local)
    counts = y[rows].astype(np.float64)
    mu = exposure[rows] * np.exp(linear_predictor(effects, rows, offset))
    parts = []
    for e in effects:
        c = e.codes[rows]
        on = None if (c >= 0).all() else np.flatnonzero(c >= 0)  # None: every row (no gather needed)
        c = c if on is None else c[on]
        x = None if e.slope_of is None else e.row_values(rows if on is None else rows[on])
        parts.append((e, on, c, x, np.bincount(c, minlength=len(e.theta)) > 0))
    for sweep in range(1, max_sweeps + 1):
        target = fill_censored(counts, mu, cens)
        biggest = 0.0
        for e, on, c, x, seen in parts:
            if not len(c):
                continue
            m = mu if on is None else mu[on]
            obs = target if on is None else target[on]
            if x is None:
                fitted = np.bincount(c, weights=m, minlength=len(e.theta))
                observed = np.bincount(c, weights=obs, minlength=len(e.theta))
                without = fitted * np.exp(-e.theta)  # fitted total were this level's effect 0
                new = np.where(seen, np.log((observed + e.prior) / (without + e.prior)), e.theta)
                step = new - e.theta
                factor = np.exp(step)[c]
            else:  # one Newton step of the penalised slope likelihood
                score = np.bincount(c, weights=(obs - m) * x, minlength=len(e.theta)) - e.prior * e.theta
                info = np.bincount(c, weights=m * x * x, minlength=len(e.theta)) + e.prior
                step = np.clip(e.theta + np.where(seen, score / info, 0.0), -e.bound, e.bound) - e.theta
                factor = np.exp(step[c] * x)
            e.theta = e.theta + step
            if on is None:
                mu *= factor
            else:
                mu[on] *= factor
            biggest = max(biggest, float(np.abs(step[seen]).max(initial=0.0)))
        if biggest < tol:
            return sweep
    return max_sweeps
