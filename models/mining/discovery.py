"""Discovered events: regional windows where many SKUs rose together far above their expected demand,
with no labeled event covering them (a local festival, a plant closure, a heat spike, a viral post).

Method, on a dense region x SKU x day cube of demand (store units plus the region's online orders):

* Counterfactual. A calendar baseline per region and SKU from its own history: a local level (the
  centred ``baseline_days`` either side of the day, the ``guard_days`` around it left out, so the spike
  never shapes its own baseline: season and trend; reaching 2x or 4x as far, with a wider variance,
  where labeled events hem the day in), times SKU x weekday, SKU x day-of-month (paydays), region x
  weekday and region x day-of-month factors, fitted by iterative proportional fitting on the days no
  labeled event covers, without promo days and without the days that already stand out (two
  passes). Then a chain-wide shock per SKU and day: the median over the *other* regions free that
  day of observed / baseline (shrunk to 1 by ``shock_prior_units``; a median, so a spike in one or
  two other regions does not hide this region's own), so a chain-wide holiday, heat dome or
  promotion moves the expectation of every region and is not a regional discovery. Last a region x
  day factor, the median SKU's observed / expected that day (traffic, weather that keeps shoppers
  home; a group of co-rising SKUs does not move a median).
* A SKU rises in a region on a day (or over a span of days) when its demand is as unlikely as
  ``riser_z`` one-sided standard errors under a negative binomial (the region x SKU overdispersion
  estimated robustly from the baseline days, plus the shock's and the level's own uncertainty) and
  ``min_lift`` times the expectation. Labeled event windows (``lead_days`` before start to the end)
  and promo days are not scanned.
* A region-day is a hypothesis: its count of rising SKUs against a binomial with the region's
  background rate of risers. The chain as a whole is scanned too (every region's demand against the
  calendar baselines pooled, on days when at least half the regions are free of labeled events), so
  a spike in every region at once is found once, as region ``ALL``. Every region x day and chain x
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
  report per spike (``discovery_rows.one_report_per_spike``): a chain window whose SKUs are mostly
  regional discoveries of the same days is dropped (it is their sum, already reported), and so is
  a regional window whose SKUs are mostly those of a chain window
  kept (the chain-wide spike's local echo). A window's days are trimmed to those on which its SKUs
  together ran ``min_lift`` and a third of their peak excess above expectation (a 3-day span reaches
  past the spike).

Everything is a handful of array passes over the cube (cumulative sums, bincounts): the scan costs
regions x SKUs x days, not rows x windows x SKUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

import numpy as np
import polars as pl
from pydantic import BaseModel, Field
from scipy import stats

from data_contracts.schemas import CHAIN_WIDE


class DiscoverySettings(BaseModel):
    """Scanning for unlabeled events."""

    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="BH level over every region x day scanned.")
    lead_days: int = Field(7, ge=0, description="Days before a labeled event's start it still covers.")
    baseline_days: int = Field(28, ge=7, description="Days either side of a day its local level uses.")
    guard_days: int = Field(3, ge=0, description="Days either side of a day left out of its level.")
    min_expected: float = Field(0.5, gt=0, description="Fewest expected units for a SKU-day to be scanned.")
    riser_z: float = Field(3.5, gt=0, description="Standard errors above expectation that make a riser.")
    min_lift: float = Field(1.5, ge=1, description="Smallest observed / expected of a rising SKU.")
    min_skus: int = Field(3, ge=2, description="Fewest SKUs rising together for a discovered window.")
    merge_gap_days: int = Field(1, ge=0, description="Significant days this close form one window.")
    span_days: tuple[int, ...] = Field((1, 3), description="Lengths of the day spans scanned.")
    shock_prior_units: float = Field(5.0, ge=0, description="Pseudo-units shrinking the shock toward 1.")


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


def _windowed(a: np.ndarray, half: int, guard: int) -> np.ndarray:
    """Sum of ``a`` along the last axis over [t - half, t + half] without [t - guard, t + guard]."""
    n = a.shape[-1]
    cs = np.concatenate([np.zeros((*a.shape[:-1], 1)), np.cumsum(a, axis=-1)], axis=-1)
    t = np.arange(n)

    def span(h: int) -> np.ndarray:
        return cs[..., np.minimum(t + h + 1, n)] - cs[..., np.maximum(t - h, 0)]

    return span(half) - span(guard)


def _factor(num: np.ndarray, den: np.ndarray, codes: np.ndarray, prior: float) -> np.ndarray:
    """Per row of the 2-D ``num`` / ``den`` (rows x days) and level of ``codes`` (one per day): the
    shrunk ratio (sum num + prior) / (sum den + prior), returned per row and day."""
    n = int(codes.max()) + 1
    flat = (np.arange(num.shape[0])[:, None] * n + codes[None, :]).ravel()
    size = num.shape[0] * n
    top = np.bincount(flat, weights=num.ravel(), minlength=size).reshape(-1, n)
    bottom = np.bincount(flat, weights=den.ravel(), minlength=size).reshape(-1, n)
    return ((top + prior) / (bottom + prior))[:, codes]


def _median(x: np.ndarray, axis: int) -> np.ndarray:
    """Median along ``axis`` ignoring NaN (NaN where a slice has no value), without numpy's slow
    per-slice nanmedian: the NaNs become -inf and +inf in turn, which leaves the middle in place
    (to half a rank)."""
    nan = np.isnan(x)
    side = np.cumsum(nan, axis=axis) % 2 == 0
    with np.errstate(invalid="ignore"):  # -inf + inf where a slice is mostly NaN: NaN, as it should be
        med = np.median(np.where(nan, np.where(side, np.inf, -np.inf), x), axis=axis)
    return np.where(nan.all(axis=axis) | ~np.isfinite(med), np.nan, med)


def calendar_baseline(
    cube: Cube, keep: np.ndarray, *, half: int, guard: int, sweeps: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Expected units (R, K, T) from each region x SKU's own history: local level x weekday x day of
    month (per SKU and per region). ``keep`` marks the cells the fit may learn from.

    The level of a day is y / calendar over the narrowest of ``half``, 2 x and 4 x ``half`` days
    either side (its guard days left out) holding ``half`` / 2 learnable days, else over the whole
    history: a day hemmed in by labeled events still gets a level from further away. Returns the
    baseline and its relative variance from that reach (``LEVEL_DRIFT`` per ``half`` days beyond
    the first ``half``)."""
    y, w = cube.y, keep.astype(np.float64)
    dates = cube.dates
    dow = ((dates.astype(np.int64) + 3) % 7).astype(np.int64)
    dom = (dates - dates.astype("datetime64[M]")).astype(np.int64)
    yw = y * w
    widths = (4 * half, 2 * half, half)
    # what does not change between sweeps: the learnable days and the units around each day
    enough = [_windowed(w, h, guard) >= half / 2 for h in widths]
    units = [_windowed(yw, h, guard) + 0.1 for h in widths]

    def level(cal: np.ndarray) -> np.ndarray:
        cw = cal * w
        out = np.broadcast_to(
            (yw.sum(axis=2, keepdims=True) + 0.1) / (cw.sum(axis=2, keepdims=True) + 0.1), y.shape
        )
        for h, ok, u in zip(widths, enough, units, strict=True):
            out = np.where(ok, u / (_windowed(cw, h, guard) + 0.1), out)
        return out

    # how far the level had to reach: its relative variance grows with the width (drift, seasons)
    spread = np.full(y.shape, LEVEL_DRIFT * (y.shape[2] / half - 1))
    for h, ok in zip(widths, enough, strict=True):
        spread = np.where(ok, LEVEL_DRIFT * (h / half - 1), spread)

    cal = np.ones_like(y)
    for _ in range(sweeps):
        base = level(cal) * cal
        for codes in (dow, dom):
            # per SKU (all regions pooled), then per region (all SKUs pooled)
            f_k = _factor(yw.sum(axis=0), (base * w).sum(axis=0), codes, 20.0)
            cal, base = cal * f_k[None], base * f_k[None]
            f_r = _factor(yw.sum(axis=1), (base * w).sum(axis=1), codes, 200.0)
            cal, base = cal * f_r[:, None, :], base * f_r[:, None, :]
    return level(cal) * cal, spread


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
    base: np.ndarray  # (R, K, T) the calendar baseline, before the shock


CHAIN_SHARE = 0.5  # most of a chain window's excess one region may hold, for it to be chain-wide
LEVEL_DRIFT = 0.01  # relative variance a level gains per extra ``baseline_days`` it reaches out
UNKNOWN_SHOCK = 0.05  # relative variance of a day's chain-wide shock when no other region shows it
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
            ok = np.expand_dims(_median(r2 / (e + a * e * e + 1e-9), axis=axis), axis) <= target
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid + 1)
    return ALPHAS[lo]


def _day_factor(y: np.ndarray, e: np.ndarray, free: np.ndarray, prior: float, *, axis: int) -> np.ndarray:
    """Per day, the median over SKUs (``axis``) of (observed + prior) / (expected + prior) among the
    free cells expecting at least a unit; 1 where there are none."""
    ratio = np.where(free & (e >= 1.0), (y + prior) / (e + prior), np.nan)
    return np.expand_dims(np.nan_to_num(_median(ratio, axis=axis), nan=1.0), axis)


def expectation(cube: Cube, settings: DiscoverySettings) -> Expectation:
    """The counterfactual of every cell (see the module docstring), in two passes: the second leaves
    out of the baseline the cells that stood out in the first."""
    free = ~cube.labeled[:, None, :] & ~cube.promo
    keep = free.copy()
    for _ in range(2):
        base, spread = calendar_baseline(cube, keep, half=settings.baseline_days, guard=settings.guard_days)
        alpha = _overdispersion(cube.y, base, keep, axis=2)
        z = (cube.y - base) / np.sqrt(base + (alpha + spread) * base**2 + 1e-9)
        keep = free & (z < settings.riser_z)
    # chain-wide shock: the median over the other regions' free cells that day of observed / baseline
    # (a median, so a spike in one or two other regions does not hide this region's own)
    on = free.astype(np.float64)
    prior = settings.shock_prior_units
    ratio = np.where(free, (cube.y + prior) / (base + prior), np.nan)
    shock = np.ones_like(base)
    for r in range(len(cube.regions)):
        others = np.delete(ratio, r, axis=0)
        if len(others):
            shock[r] = np.nan_to_num(_median(others, axis=0), nan=1.0)
    # the region's own day (traffic, weather that keeps shoppers home) moves every SKU: the median
    # SKU's observed / expected that day, so one group of co-rising SKUs cannot move it
    expected = base * shock * _day_factor(cube.y, base * shock, free, prior, axis=1)
    y_all, b_all = (cube.y * on).sum(axis=0), (base * on).sum(axis=0)
    b_other = b_all[None] - base * on
    n_other = free.sum(axis=0)[None] - free
    # the shock's own noise (relative variance): one other region's counts and overdispersion over
    # the number of other regions, x pi/2 for a median; with no other region free, a chain-wide
    # shock of unknown size (UNKNOWN_SHOCK)
    per_region = 1 / (b_other / np.maximum(n_other, 1) + prior) + alpha
    rel = np.where(n_other > 0, np.pi / 2 * per_region / np.maximum(n_other, 1), UNKNOWN_SHOCK)
    var = expected + (alpha + spread + rel) * expected**2
    scanned = free & (expected >= settings.min_expected)
    n_free = (~cube.labeled).sum(axis=0)
    chain_free = (n_free * 2 >= len(cube.regions))[None, :] & ~(cube.promo.any(axis=0))
    chain_e = b_all  # the chain has no other regions to take a shock from: the calendar alone
    chain_alpha = _overdispersion(y_all, chain_e, chain_free, axis=1)
    return Expectation(
        expected=expected,
        var=var,
        scanned=scanned,
        chain_y=y_all,
        chain_e=chain_e,
        chain_var=chain_e + chain_alpha * chain_e**2 + (spread * (base * on) ** 2).sum(axis=0),
        base=base,
        chain_scanned=chain_free & (b_all >= settings.min_expected),
    )


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


def _risers(y: np.ndarray, e: np.ndarray, var: np.ndarray, scanned: np.ndarray, s: DiscoverySettings):
    """Cells rising ``riser_z`` standard errors (as a one-sided tail probability) and ``min_lift`` above
    expectation."""
    rising = scanned & (y >= s.min_lift * e) & (y - e >= 1.5 * np.sqrt(var))
    idx = np.flatnonzero(rising)
    p = tail_p(y.ravel()[idx], e.ravel()[idx], var.ravel()[idx])
    out = np.zeros(y.size, dtype=bool)
    out[idx[p <= stats.norm.sf(s.riser_z)]] = True
    return out.reshape(y.shape)


def _day_pvalues(count: np.ndarray, active: np.ndarray, tested: np.ndarray) -> np.ndarray:
    """One-sided binomial p of each day's riser count, against the background rate of its row (rows
    are regions, or the chain); the rate is a trimmed mean over the row's tested days."""
    rate = np.where(active > 0, count / np.maximum(active, 1), np.nan)
    rate = np.where(tested, rate, np.nan)
    with np.errstate(all="ignore"):
        cut = np.nanquantile(rate, 0.98, axis=1, keepdims=True)
        trimmed = np.where(rate <= cut, rate, np.nan)
        p0 = np.nan_to_num(np.nanmean(trimmed, axis=1, keepdims=True), nan=0.0)
    p0 = np.clip(p0, 1e-4, 0.5)
    return np.where(tested & (active > 0), stats.binom.sf(count - 1, active, p0), 1.0)


def _bh(p: np.ndarray) -> np.ndarray:
    return stats.false_discovery_control(np.clip(p, 0.0, 1.0), method="bh") if len(p) else p


def _runs(days: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Sorted day indexes cut into (first, last) runs whose neighbours are at most ``gap`` days apart."""
    if not len(days):
        return []
    cuts = np.flatnonzero(np.diff(days) > gap + 1)
    starts, ends = np.r_[0, cuts + 1], np.r_[cuts, len(days) - 1]
    return [(int(days[a]), int(days[b])) for a, b in zip(starts, ends, strict=True)]


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
    }
)


def _window_skus(*arrays: np.ndarray, level: float, s: DiscoverySettings) -> dict[str, np.ndarray]:
    """Per SKU over a window's days (arrays K x days): lift, interval and p; the SKUs that pass BH at
    ``level`` with lift >= min_lift."""
    y, e, var, scanned = arrays
    yw, ew, vw = (np.where(scanned, a, 0.0).sum(axis=1) for a in (y, e, var))
    tested = scanned.any(axis=1) & (ew > 0)
    p = np.where(tested, tail_p(yw, ew, vw), 1.0)
    lift = (yw + 0.5) / (ew + 0.5)
    # log-scale standard error: the delta method on the variance of observed - expected
    se = np.sqrt(vw / np.maximum(ew, 1e-9) ** 2 / np.maximum(lift, 1e-9) ** 2 + 1e-12)
    q = np.ones_like(p)
    q[tested] = _bh(p[tested])
    keep = tested & (q <= level) & (lift >= s.min_lift)
    return {"keep": keep, "lift": lift, "se": se, "p": p, "y": yw, "e": ew}


def _rolling(a: np.ndarray, days: int) -> np.ndarray:
    """Sum of ``a`` over [t, t + days - 1] along the last axis (0 past the end)."""
    if days == 1:
        return a.astype(np.float64)
    cs = np.concatenate([np.zeros((*a.shape[:-1], 1)), np.cumsum(a, axis=-1, dtype=np.float64)], axis=-1)
    n = a.shape[-1]
    t = np.arange(n)
    return cs[..., np.minimum(t + days, n)] - cs[..., t]


def _significant_days(y, e, var, scanned, free, s: DiscoverySettings) -> tuple[np.ndarray, np.ndarray, int]:
    """Per row and day: covered by a significant span, and the span's q; plus the number of spans tested.

    A span is ``days`` consecutive days (each of ``s.span_days``) of one row; its riser count (SKUs
    rising over the span's total) is tested against the row's background rate. One BH over all."""
    ps, counts, tests = [], [], []
    for days in s.span_days:
        span_free = _rolling(free, days) >= days
        scanned_l = (_rolling(scanned, days) >= days) & span_free[:, None, :]
        rise = _risers(_rolling(y, days), _rolling(e, days), _rolling(var, days), scanned_l, s)
        count, active = rise.sum(axis=1), scanned_l.sum(axis=1)
        tested = span_free & (active > 0)
        ps.append(_day_pvalues(count, active, tested))
        counts.append(count)
        tests.append(tested)
    p, count, tested = np.stack(ps), np.stack(counts), np.stack(tests)
    q = np.ones_like(p)
    q[tested] = _bh(p[tested])
    sig = tested & (q <= s.fdr_alpha) & (count >= s.min_skus)
    hit = np.zeros(free.shape, dtype=bool)
    best = np.ones(free.shape)
    for i, days in enumerate(s.span_days):
        for d in range(days):  # a significant span covers each of its days
            hit[:, d:] |= sig[i][:, : free.shape[1] - d]
            best[:, d:] = np.minimum(best[:, d:], np.where(sig[i], q[i], 1.0)[:, : free.shape[1] - d])
    return hit, best, int(tested.sum())


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
    hit, q, _ = _significant_days(y, e, var, scanned, free, settings)
    rows = [*cube.regions, CHAIN_WIDE]
    windows = [
        (i, a, b) for i in range(len(rows)) for a, b in _runs(np.flatnonzero(hit[i]), settings.merge_gap_days)
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
        pooled = _rolling(y[i, ks, a : b + 1], 1).sum(axis=0) / (e[i, ks, a : b + 1].sum(axis=0) + 1e-9)
        up = np.flatnonzero(pooled - 1 >= max(settings.min_lift - 1, (pooled.max() - 1) / 3))
        if len(up) and (up[0] > 0 or up[-1] < b - a):
            a, b = a + int(up[0]), a + int(up[-1])
            w = _window_skus(*(x[i, :, a : b + 1] for x in (y, e, var, scanned)), level=level, s=settings)
            ks = np.flatnonzero(w["keep"])
            if len(ks) < settings.min_skus:
                continue
        if i == len(cube.regions) and not _spread_out(cube, ex.base, ks, a, b):
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
                }
            )
        )
    found = pl.concat(out) if out else pl.DataFrame(schema=WINDOW_SKU_SCHEMA)
    return found.select(WINDOW_SKU_SCHEMA.names()).cast(WINDOW_SKU_SCHEMA)


def _spread_out(cube: Cube, base: np.ndarray, ks: np.ndarray, a: int, b: int) -> bool:
    """Whether a chain window's excess demand (SKUs ``ks``, days a..b) is spread over the regions:
    no single region holds more than ``CHAIN_SHARE`` of it."""
    free = ~cube.labeled[:, None, a : b + 1]
    excess = np.where(free, cube.y[:, ks, a : b + 1] - base[:, ks, a : b + 1], 0.0).sum(axis=(1, 2))
    positive = np.maximum(excess, 0.0)
    return bool(positive.sum() > 0 and positive.max() <= CHAIN_SHARE * positive.sum())
