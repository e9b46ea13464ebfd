"""The discovery scan's expected demand: the event miner's fixed-effects counterfactual on the region x SKU
x day cube.

The cube becomes the event miner's design (``models.mining.event_design.build_design``, every cell a
panel row with exposure 1) and is fitted with the miner's effect families and priors
(``event_uplift.BASE_EFFECTS``): a region x SKU x ``block_days`` block level with a bounded
log-linear drift inside the block (season, trend, local drift), SKU x weekday and SKU x day of month
(paydays). Two effects the scan adds, of the same families: region x weekday and region x day of
month (a region's own payday or shopping day, which a SKU-level effect pooled over the chain misses).
The fit (``models.mining.effects.fit_effects``, Poisson by iterative proportional fitting) sees only
the cells ``keep`` marks: no labeled event window (lead days included), no promo, and, in the
scan's second pass, none of the cells that already stood out.

The chain's same-day shock is the miner's shrunk SKU x date effect (one proportional-fitting step
from no shock, with its prior ``PRIORS["gamma"]``) fitted on the *other* regions' kept cells that day:
the regions not hit are the controls, so a chain-wide heat day or promotion moves every region's
expectation while a region's own spike never moves its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from scipy import stats

from models.mining.effects import Effect, fit_effects, linear_predictor
from models.mining.event_design import BASE_EFFECTS, DRIFT_BOUND, PRIORS, Design, build_design

UNKNOWN_SHOCK = 0.05  # relative variance of a day's chain-wide shock when no other region shows it
# proportional-fitting sweeps per pass (the second starts from the first): by 20, 99% of the medium
# demo's cells have a fitted log expectation within 0.01 of 100 sweeps'; with 15 per pass the
# medium demo's windows and SKUs (seeds 42, 7) are those of 100
FIT_SWEEPS = 15
REGION_PRIOR = 0.5  # pseudo-units of the region x weekday and region x day-of-month effects


@dataclass(frozen=True)
class CubeDesign:
    """The event miner's design over the flattened cube (row = (region x SKUs + SKU) x days + day)."""

    design: Design
    shape: tuple[int, int, int]
    region_codes: dict[str, np.ndarray]  # region x weekday, region x day of month

    def effects(self, start: list[Effect] | None = None) -> list[Effect]:
        """The miner's base effects plus the region calendar, fresh or warm from ``start``."""
        warm = {e.name: e for e in start or []}
        extra = [
            warm[n].warm() if n in warm else Effect(n, codes, REGION_PRIOR)
            for n, codes in self.region_codes.items()
        ]
        return [*self.design.effects(list(BASE_EFFECTS), warm), *extra]


def cube_design(y: np.ndarray, first: date, *, block_days: int) -> CubeDesign:
    """The design of the cube ``y`` (regions x SKUs x days from ``first``): every cell one panel row."""
    n_r, n_k, n_t = y.shape
    r, k, t = (a.ravel() for a in np.indices(y.shape, dtype=np.int64))
    dates = np.datetime64(first) + np.arange(n_t)
    panel = pl.DataFrame(
        {"region": r, "sku": k, "date": dates[t], "y": y.ravel(), "exposure": np.ones(y.size)}
    )
    parts = pl.DataFrame(
        schema={
            "region": pl.Int64,
            "sku": pl.Int64,
            "date": pl.Date,
            "sold": pl.Float64,
            "weight": pl.Float64,
        }
    )
    days = pl.DataFrame(
        schema={
            "event_type": pl.String,
            "region": pl.Int64,
            "date": pl.Date,
            "offset": pl.Int64,
            "phase": pl.String,
            "cluster": pl.Date,
            "chain_wide": pl.Boolean,
        }
    )
    design = build_design(panel, parts, days, first=first, block_days=block_days)
    weekday = ((dates.astype(np.int64) + 3) % 7)[t]  # 1970-01-01 was a Thursday
    dom = (dates - dates.astype("datetime64[M]")).astype(np.int64)[t]
    region_codes = {"region_dow": r * 7 + weekday, "region_dom": r * 31 + dom}
    return CubeDesign(design, (n_r, n_k, n_t), region_codes)


def fit_base(
    cd: CubeDesign, keep: np.ndarray, start: list[Effect] | None = None
) -> tuple[np.ndarray, list[Effect]]:
    """Expected units of every cell (R, K, T) without the chain's same-day shock, fitted on ``keep``."""
    d = cd.design
    rows = keep.ravel()
    offset = float(np.log(max(d.y[rows].sum(), 1e-9) / max(d.exposure[rows].sum(), 1e-9)))
    effects = cd.effects(start)
    fit_effects(d.y, d.exposure, effects, mask=rows, offset=offset, max_sweeps=FIT_SWEEPS)
    eta = linear_predictor(effects, np.arange(len(d.y)), offset)
    return (d.exposure * np.exp(eta)).reshape(cd.shape), effects


def _block_sums(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of ``a`` along the last axis over [lo, hi] (per day)."""
    cs = np.concatenate([np.zeros((*a.shape[:-1], 1)), np.cumsum(a, axis=-1)], axis=-1)
    return cs[..., hi + 1] - cs[..., lo]


def guarded_level(
    y: np.ndarray,
    base: np.ndarray,
    keep: np.ndarray,
    alpha: np.ndarray,
    drift: Effect,
    *,
    block_days: int,
    guard: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's expectation with its block's level and drift refitted without the ``guard`` days
    either side of it (the imputation principle: a day's own spike never shapes its counterfactual),
    and the variance of that log level.

    The refit is one Newton step of the block's (level, drift) Poisson likelihood, with their priors,
    from the fit over the whole block, on the block's kept cells outside the guard (the other effects
    as fitted). Its variance is the inverse information at the cell's place in the block, times the
    block's negative binomial dispersion (``alpha``); about 1 / prior where no kept cell is left."""
    t = np.arange(y.shape[-1])
    start = t // block_days * block_days
    end = np.minimum(start + block_days, len(t)) - 1
    lo, hi = np.maximum(t - guard, start), np.minimum(t + guard, end)
    x = (t % block_days + 0.5) / block_days - 0.5  # the drift's covariate (``Design.block_position``)
    mu = np.where(keep, base, 0.0)
    obs = np.where(keep, y, 0.0)
    sums = []
    for a in (obs, mu, mu * x, mu * x * x, obs * x, mu + np.broadcast_to(alpha, mu.shape) * mu * mu):
        sums.append(_block_sums(a, start, end) - _block_sums(a, lo, hi))
    s_y, s_m, s_mx, s_mxx, s_yx, s_nb = sums
    p_level, p_drift = PRIORS["delta"], PRIORS["drift"]
    slope = np.where(drift.codes >= 0, drift.theta[np.maximum(drift.codes, 0)], 0.0).reshape(y.shape)
    i_ll, i_ld, i_dd = s_m + p_level, s_mx, s_mxx + p_drift
    det = i_ll * i_dd - i_ld**2
    score_l, score_d = s_y - s_m, s_yx - s_mx - p_drift * slope
    step_l = (i_dd * score_l - i_ld * score_d) / det
    step_d = np.clip(slope + (i_ll * score_d - i_ld * score_l) / det, -DRIFT_BOUND, DRIFT_BOUND) - slope
    var = (i_dd - 2 * x * i_ld + x * x * i_ll) / det * np.maximum(s_nb / np.maximum(s_m, 1e-9), 1.0)
    return base * np.exp(step_l + step_d * x), var


def nan_median(x: np.ndarray, axis: int) -> np.ndarray:
    """Median along ``axis`` ignoring NaN (NaN where a slice has no value), without numpy's slow
    per-slice nanmedian: the NaNs become -inf and +inf in turn, which leaves the middle in place
    (to half a rank)."""
    nan = np.isnan(x)
    side = np.cumsum(nan, axis=axis) % 2 == 0
    with np.errstate(invalid="ignore"):  # -inf + inf where a slice is mostly NaN: NaN, as it should be
        med = np.median(np.where(nan, np.where(side, np.inf, -np.inf), x), axis=axis)
    return np.where(nan.all(axis=axis) | ~np.isfinite(med), np.nan, med)


def same_day_shock(
    y: np.ndarray, base: np.ndarray, keep: np.ndarray, alpha: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the chain's same-day shock of its SKU from the other regions' kept cells, and its
    relative variance (``UNKNOWN_SHOCK`` where no other region is kept).

    The event miner's SKU x date effect, one fitting step: log (their units + prior) / (their expected
    + prior). Its noise (the other regions' negative binomial counts) is as large as the shocks of a
    calm chain, so each is shrunk by empirical Bayes toward the day's median SKU (the chain's traffic
    that day): by tau^2 / (tau^2 + v), tau^2 the spread of the true shocks around it (robustly, from the
    median squared deviation less the median noise), v the estimate's own variance."""
    prior = PRIORS["gamma"]
    mu = np.where(keep, base, 0.0)
    seen = np.where(keep, y, 0.0)
    noise = mu + np.broadcast_to(alpha, mu.shape) * mu * mu
    other_mu = mu.sum(axis=0)[None] - mu
    raw = np.log((seen.sum(axis=0)[None] - seen + prior) / (other_mu + prior))
    v = (noise.sum(axis=0)[None] - noise) / (other_mu + prior) ** 2
    known = (keep.sum(axis=0)[None] - keep > 0) & (other_mu >= 1.0)
    day = np.where(
        known.any(axis=1, keepdims=True),
        np.expand_dims(nan_median(np.where(known, raw, np.nan), axis=1), 1),
        0.0,
    )
    dev = raw - day
    tau2 = max(float(np.median(dev[known] ** 2)) / stats.chi2.median(1) - float(np.median(v[known])), 1e-4)
    weight = tau2 / (tau2 + v)
    shock = np.where(known, np.exp(day + weight * dev), 1.0)
    return shock, np.where(known, weight * v, UNKNOWN_SHOCK)
