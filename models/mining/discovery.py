"""Discovered events: regional windows where many SKUs rose together far above their expected demand,
with no labeled event covering them (a local festival, a plant closure, a heat spike, a viral post).

Method, on a dense region x SKU x day cube of demand (store units plus the region's online buyers: a
business's big order of many SKUs is one buyer of each, not a co-rise; ``bench/online_placebo.py``):

* Counterfactual: the event miner's (``models.mining.discovery_baseline``). A Poisson model with
  the miner's fixed effects (``event_design.build_design``: a region x SKU x ``block_days`` block
  level with a bounded drift inside the block, SKU x weekday, SKU x day of month) plus region x
  weekday and region x day of month (a region's own payday), fitted once on the cells no labeled
  event window (lead days included) or promo covers, and in a second pass without the cells that
  stood out in the first. Each day's block level and drift are refitted without the ``guard_days``
  either side of it (one Newton step), so a spike never shapes its own expectation (the imputation
  principle of the miner's Borusyak-Jaravel-Spiess estimator). Then the chain's same-day shock of
  the SKU, the miner's shrunk SKU x date effect fitted on the *other* regions' kept cells that day,
  shrunk by empirical Bayes toward the day's median SKU (its noise is as large as a calm chain's
  shocks), so a chain-wide holiday, heat dome or promotion moves the expectation of every region
  and is not a regional discovery. Then a region x day factor, the median SKU's observed / expected
  that day (store traffic moves every SKU of a region; a group of co-rising SKUs does not move a
  median), and each region x SKU rescaled to sell on its kept days what it sold there (the median
  ratios sit below the mean ones: 3% low on the medium demo). The cells left out of the second pass
  are those ``riser_z`` standard errors up on their own or within a span of ``span_days``.
* A SKU rises in a region on a day (or over a span of days) when its demand is as unlikely as
  ``riser_z`` one-sided standard errors under a negative binomial (the region x SKU overdispersion
  estimated robustly from the kept days, plus the shock's and the level's own uncertainty) and
  ``min_lift`` times the expectation, the excess variance of the span sums inflated per span length
  and band of expected units so that cells of quiet region-days pass at the nominal tail
  (``models.mining.discovery_null``, with ``empirical_null``: the tail of demand summed over stores
  is heavier than the negative binomial's). Labeled event windows (``lead_days`` before start to the
  end) and promo days are not scanned.
* A region-day is a hypothesis: its count of rising SKUs against a binomial with the region's
  background rate of risers. The chain as a whole is scanned too (every region's demand against the
  counterfactuals pooled, on days when at least half the regions are free of labeled events), so
  a spike in every region at once is found once, as region ``ALL`` (its expectation is the regions'
  counterfactuals summed, without the shock). Every region x day and chain x
  day scanned enters one Benjamini-Hochberg family (a family apart from the miner's pattern family:
  windows, not SKU patterns). Significant days of a region less than ``merge_gap_days`` apart form
  one window.
* The SKUs of a window: its days pooled per SKU, lift = observed / expected with a log-normal 95%
  interval (overdispersion and the shock's own noise included), tested one-sided; the SKUs kept are
  those passing BH at alpha over the window's SKUs with lift >= ``min_lift``. The window is the
  discovery (its error rate is the scan's FDR); within a true window this describes which SKUs
  rose, at the cost of some selection bias for the SKUs whose rise made the window count (the
  stricter Benjamini-Bogomolov level, alpha x windows found / spans scanned, lost real SKUs of
  4x spikes on the test chain). A window with fewer than ``min_skus`` such SKUs is dropped, as is
  a chain window whose excess demand sits mostly (over ``CHAIN_SHARE``) in a single region. One
  report per spike (``discovery_rows.one_report_per_spike``): a chain window carried by fewer than
  half the regions (those holding ``CARRY_SHARE`` of its excess) whose SKUs are mostly regional
  discoveries of the same days in each of them is dropped (it is their sum, already reported), and
  so is a regional window whose SKUs are mostly those of a chain window kept (the chain-wide
  spike's local echo). A window's days are trimmed to those on which its SKUs
  together ran ``min_lift`` and a third of their peak excess above expectation (a 3-day span reaches
  past the spike).
* Store by store (``discovery_stores``, with ``store_check``, on the candidate windows only): each
  SKU of a window must pass its test again with the store (or the online orders) holding most of
  its excess left out, at the window's BH critical value; a window keeping fewer than ``min_skus``
  SKUs is dropped (one store's spike summed into its region is not a regional event). The span
  passes are in ``discovery_spans``.

Everything is a handful of array passes over the cube (proportional-fitting sweeps, cumulative sums,
bincounts): the scan costs regions x SKUs x days x sweeps, not rows x windows x SKUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

import numpy as np
import polars as pl
from scipy import stats

from data_contracts.schemas import CHAIN_WIDE
from models.mining.discovery_baseline import cube_design, fit_base, guarded_level, nan_median, same_day_shock
from models.mining.discovery_null import tail_p
from models.mining.discovery_settings import DiscoverySettings
from models.mining.discovery_spans import bh, rolling, runs, significant_days


@dataclass(frozen=True)
class Cube:
    """Demand per region x SKU x day, with what the scan must leave alone.

    ``y`` (R, K, T) units, ``promo`` (R, K, T) a store of the region had the SKU on promo,
    ``labeled`` (R, T) a labeled event window covers the region's day.
    """

    regions: tuple[str, ...]
    skus: tuple[str, ...]
    first: date
    y: np.ndarray
    promo: np.ndarray
    labeled: np.ndarray

    @property
    def dates(self) -> np.ndarray:
        return np.arange(np.datetime64(self.first), np.datetime64(self.first) + self.y.shape[2])


def build_cube(daily: pl.DataFrame, labeled: pl.DataFrame) -> Cube:
    """The dense cube of ``region_daily_units`` output; ``labeled`` from ``labeled_days``."""
    regions = tuple(sorted(daily["region"].unique().to_list()))
    skus = tuple(sorted(daily["sku"].unique().to_list()))
    first, last = cast(date, daily["date"].min()), cast(date, daily["date"].max())
    n_r, n_k, n_t = len(regions), len(skus), (last - first).days + 1
    r_of = pl.DataFrame({"region": regions, "r": np.arange(n_r)})
    k_of = pl.DataFrame({"sku": skus, "k": np.arange(n_k)})
    coded = daily.join(r_of, on="region").join(k_of, on="sku")
    t = (coded["date"] - first).dt.total_days().to_numpy()
    flat = (coded["r"].to_numpy() * n_k + coded["k"].to_numpy()) * n_t + t
    size = n_r * n_k * n_t
    y = np.bincount(flat, weights=coded["units"].to_numpy(), minlength=size).reshape(n_r, n_k, n_t)
    promo = np.bincount(flat, weights=coded["promo"].cast(pl.Float64).to_numpy(), minlength=size) > 0
    lab = np.zeros((n_r, n_t), dtype=bool)
    days = labeled.filter(pl.col("date").is_between(first, last))
    everywhere = days.filter(pl.col("region") == CHAIN_WIDE)
    lab[:, (everywhere["date"] - first).dt.total_days().to_numpy()] = True
    local = days.join(r_of, on="region")
    lab[local["r"].to_numpy(), (local["date"] - first).dt.total_days().to_numpy()] = True
    return Cube(regions, skus, first, y, promo.reshape(n_r, n_k, n_t), lab)


@dataclass(frozen=True)
class Expectation:
    """Expected units (R, K, T) with the chain-wide shock, the variance of observed - expected, which
    cells were scanned, and the chain's pooled observed / expected / variance (K, T)."""

    expected: np.ndarray
    var: np.ndarray
    scanned: np.ndarray
    chain_y: np.ndarray
    chain_e: np.ndarray
    chain_var: np.ndarray
    chain_scanned: np.ndarray
    base: np.ndarray  # (R, K, T) the fixed-effects counterfactual, before the shock


CHAIN_SHARE = 0.5  # most of a chain window's excess one region may hold, for it to be chain-wide
DAY_PRIOR_UNITS = 5.0  # pseudo-units shrinking each SKU's ratio in the region x day factor toward 1
CARRY_SHARE = 2 / 3  # the share of a chain window's excess its carrying regions hold
ALPHAS = np.concatenate([[0.0], np.geomspace(0.002, 2.0, 31)])  # the overdispersions told apart


def _overdispersion(y: np.ndarray, e: np.ndarray, keep: np.ndarray, axis: int) -> np.ndarray:
    """Robust negative-binomial overdispersion along ``axis``: the smallest alpha (of ``ALPHAS``, by
    bisection) whose Pearson chi-square (y - e)^2 / (e + alpha e^2) has a median at most its null
    median.

    Demand counts vary more than Poisson, and more so on busy days (var = e + alpha e^2); a median
    is not moved by the spikes the scan looks for."""
    r2 = np.where(keep & (e > 0), (y - e) ** 2, np.nan)
    shape = list(y.shape)
    shape[axis] = 1
    lo, hi = np.zeros(shape, dtype=np.int64), np.full(shape, len(ALPHAS) - 1)
    target = stats.chi2.median(1)
    while (lo < hi).any():  # the median falls as alpha grows: find the first index meeting the target
        mid = (lo + hi) // 2
        a = ALPHAS[mid]
        with np.errstate(all="ignore"):
            ok = np.expand_dims(nan_median(r2 / (e + a * e * e + 1e-9), axis=axis), axis) <= target
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid + 1)
    return ALPHAS[lo]


def _day_factor(y: np.ndarray, e: np.ndarray, free: np.ndarray, prior: float) -> np.ndarray:
    """Per region and day (R, 1, T), the median over SKUs of (observed + prior) / (expected + prior)
    among the free cells expecting at least a unit; 1 where there are none."""
    ratio = np.where(free & (e >= 1.0), (y + prior) / (e + prior), np.nan)
    return np.expand_dims(np.nan_to_num(nan_median(ratio, axis=1), nan=1.0), 1)


def _recentred(expected: np.ndarray, y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``expected`` rescaled per region x SKU to sell on its kept days what it sold there (as the
    Poisson fit's own expectation does): a median ratio sits below the mean one for skewed counts, so
    the shock and the day factor pull the expectation low (by 3% on the medium demo)."""
    sold = np.where(keep, y, 0.0).sum(axis=2, keepdims=True) + DAY_PRIOR_UNITS
    return expected * sold / (np.where(keep, expected, 0.0).sum(axis=2, keepdims=True) + DAY_PRIOR_UNITS)


def _stood_out(y: np.ndarray, e: np.ndarray, var: np.ndarray, s: DiscoverySettings) -> np.ndarray:
    """Cells ``riser_z`` standard errors above expectation on their own or within a span (of
    ``s.span_days``) that is: a spike's weaker days stay out of the refit as well."""
    out = np.zeros(y.shape, dtype=bool)
    for days in s.span_days:
        spans = (rolling(y, days) - rolling(e, days)) / np.sqrt(rolling(var, days) + 1e-9) >= s.riser_z
        for d in range(days):  # a span that stood out marks each of its days
            out[..., d:] |= spans[..., : y.shape[-1] - d]
    return out


def expectation(cube: Cube, settings: DiscoverySettings) -> Expectation:
    """The counterfactual of every cell (the event miner's, ``models.mining.discovery_baseline``), in
    two passes: the second leaves out of the fit the cells that stood out in the first."""
    free = ~cube.labeled[:, None, :] & ~cube.promo
    design = cube_design(cube.y, cube.first, block_days=settings.block_days)
    keep, effects = free, None
    for first_pass in (True, False):
        fitted, effects = fit_base(design, keep, effects)
        alpha = _overdispersion(cube.y, fitted, keep, axis=2)
        drift = next(e for e in effects if e.name == "drift")
        base, level_var = guarded_level(
            cube.y, fitted, keep, alpha, drift, block_days=settings.block_days, guard=settings.guard_days
        )
        shock, shock_var = same_day_shock(cube.y, base, keep, alpha)
        # the region's own day (store traffic, weather that keeps shoppers home) moves every SKU: the
        # median SKU's observed / expected that day, so one group of co-rising SKUs cannot move it
        expected = base * shock * _day_factor(cube.y, base * shock, free, DAY_PRIOR_UNITS)
        expected = _recentred(expected, cube.y, keep)
        var = expected + (alpha + level_var + shock_var) * expected**2
        if first_pass:
            keep = free & ~_stood_out(cube.y, expected, var, settings)
    on = free.astype(np.float64)
    y_all, b_all = (cube.y * on).sum(axis=0), (base * on).sum(axis=0)
    n_free = (~cube.labeled).sum(axis=0)
    chain_free = (n_free * 2 >= len(cube.regions))[None, :] & ~(cube.promo.any(axis=0))
    chain_e = b_all  # the chain has no other regions to take a shock from: its calendar alone
    chain_alpha = _overdispersion(y_all, chain_e, chain_free, axis=1)
    return Expectation(
        expected=expected,
        var=var,
        scanned=free & (expected >= settings.min_expected),
        chain_y=y_all,
        chain_e=chain_e,
        chain_var=chain_e + chain_alpha * chain_e**2 + (level_var * (base * on) ** 2).sum(axis=0),
        base=base,
        chain_scanned=chain_free & (b_all >= settings.min_expected),
    )


WINDOW_SKU_SCHEMA = pl.Schema(
    {
        "region": pl.String,
        "event_id": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "sku": pl.String,
        "lift": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "support": pl.Int64,
        "p_value": pl.Float64,
        "q_value": pl.Float64,
        "observed_units": pl.Float64,
        "expected_units": pl.Float64,
        "carriers": pl.String,  # the regions holding most of the window's excess, comma-separated
        "variance_units": pl.Float64,  # the model's variance of observed - expected over the window
        "p_cutoff": pl.Float64,  # the BH critical value of the window's SKU test (at its passing count)
    }
)


def _window_skus(*arrays: np.ndarray, level: float, s: DiscoverySettings) -> dict[str, np.ndarray]:
    """Per SKU over a window's days (arrays K x days): lift, interval and p; the SKUs that pass BH at
    ``level`` with lift >= min_lift. The model's own variance: the empirical null calibrates the
    riser test's far tail, and at the shallower levels of this test the model's tail holds."""
    y, e, var, scanned = arrays
    yw, ew, vw = (np.where(scanned, a, 0.0).sum(axis=1) for a in (y, e, var))
    tested = scanned.any(axis=1) & (ew > 0)
    p = np.where(tested, tail_p(yw, ew, vw), 1.0)
    lift = (yw + 0.5) / (ew + 0.5)
    # log-scale standard error: the delta method on the variance of observed - expected
    se = np.sqrt(vw / np.maximum(ew, 1e-9) ** 2 / np.maximum(lift, 1e-9) ** 2 + 1e-12)
    q = np.ones_like(p)
    q[tested] = bh(p[tested])
    keep = tested & (q <= level) & (lift >= s.min_lift)
    # the Benjamini-Hochberg critical value at the number of SKUs it let through
    cutoff = level * int((tested & (q <= level)).sum()) / max(int(tested.sum()), 1)
    return {"keep": keep, "lift": lift, "se": se, "p": p, "y": yw, "e": ew, "v": vw, "cutoff": cutoff}


def scan(cube: Cube, settings: DiscoverySettings) -> pl.DataFrame:
    """Every discovered window with its SKUs (WINDOW_SKU_SCHEMA, one row per window x SKU; region
    ``ALL`` for the chain as a whole), before ``models.mining.discovery_rows.one_report_per_spike``."""
    ex = expectation(cube, settings)
    # the chain is one more row below the regions
    y = np.concatenate([cube.y, ex.chain_y[None]])
    e = np.concatenate([ex.expected, ex.chain_e[None]])
    var = np.concatenate([ex.var, ex.chain_var[None]])
    scanned = np.concatenate([ex.scanned, ex.chain_scanned[None]])
    free = np.vstack([~cube.labeled, np.asarray(ex.chain_scanned.any(axis=0))[None]])
    # the regions share a null, the chain has its own
    groups = np.r_[np.zeros(len(cube.regions), dtype=np.int64), 1]
    hit, q = significant_days(y, e, var, scanned, free, groups, settings)
    rows = [*cube.regions, CHAIN_WIDE]

    windows = [
        (i, a, b) for i in range(len(rows)) for a, b in runs(np.flatnonzero(hit[i]), settings.merge_gap_days)
    ]
    level = settings.fdr_alpha
    crit = stats.norm.ppf(0.975)
    out = []
    for i, a, b in windows:
        w = _window_skus(*(x[i, :, a : b + 1] for x in (y, e, var, scanned)), level=level, s=settings)
        ks = np.flatnonzero(w["keep"])
        if len(ks) < settings.min_skus:
            continue
        # a span reaches past the spike: keep the days on which the window's SKUs together ran
        # min_lift and a third of their peak excess above expectation
        pooled = rolling(y[i, ks, a : b + 1], 1).sum(axis=0) / (e[i, ks, a : b + 1].sum(axis=0) + 1e-9)
        up = np.flatnonzero(pooled - 1 >= max(settings.min_lift - 1, (pooled.max() - 1) / 3))
        if len(up) and (up[0] > 0 or up[-1] < b - a):
            a, b = a + int(up[0]), a + int(up[-1])
            w = _window_skus(*(x[i, :, a : b + 1] for x in (y, e, var, scanned)), level=level, s=settings)
            ks = np.flatnonzero(w["keep"])
            if len(ks) < settings.min_skus:
                continue
        carriers = _carriers(cube, ex.base, ks, a, b) if i == len(cube.regions) else [rows[i]]
        if not carriers:
            continue  # one region's spike summed into the chain: the regional scan reports it
        log_lift = np.log(w["lift"][ks])
        out.append(
            pl.DataFrame(
                {
                    "region": rows[i],
                    "event_id": f"{rows[i]}:{cube.first + timedelta(days=a)}",
                    "window_start": cube.first + timedelta(days=a),
                    "window_end": cube.first + timedelta(days=b),
                    "sku": [cube.skus[k] for k in ks],
                    "lift": w["lift"][ks],
                    "ci_low": np.exp(log_lift - crit * w["se"][ks]),
                    "ci_high": np.exp(log_lift + crit * w["se"][ks]),
                    "support": b - a + 1,
                    "p_value": w["p"][ks],
                    "q_value": float(q[i, a : b + 1][hit[i, a : b + 1]].max()),
                    "observed_units": w["y"][ks],
                    "expected_units": w["e"][ks],
                    "carriers": ",".join(carriers),
                    "variance_units": w["v"][ks],
                    "p_cutoff": w["cutoff"],
                }
            )
        )
    found = pl.concat(out) if out else pl.DataFrame(schema=WINDOW_SKU_SCHEMA)
    return found.select(WINDOW_SKU_SCHEMA.names()).cast(WINDOW_SKU_SCHEMA)


def _carriers(cube: Cube, base: np.ndarray, ks: np.ndarray, a: int, b: int) -> list[str]:
    """The fewest regions holding ``CARRY_SHARE`` of a chain window's excess demand (SKUs ``ks``, days
    a..b); none when a single region holds more than ``CHAIN_SHARE`` of it (one region's spike)."""
    free = ~cube.labeled[:, None, a : b + 1]
    excess = np.where(free, cube.y[:, ks, a : b + 1] - base[:, ks, a : b + 1], 0.0).sum(axis=(1, 2))
    positive = np.maximum(excess, 0.0)
    if positive.sum() <= 0 or positive.max() > CHAIN_SHARE * positive.sum():
        return []
    order = np.argsort(-positive)
    n = int(np.searchsorted(np.cumsum(positive[order]), CARRY_SHARE * positive.sum())) + 1
    return sorted(cube.regions[r] for r in order[:n])
