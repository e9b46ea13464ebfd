"""The discovery scan's spans: which region-days (and chain-days) hold more rising SKUs than the row's
background rate makes likely, under one Benjamini-Hochberg family (``models.mining.discovery``'s
docstring has the method; this module holds its span passes).

A span is ``days`` consecutive days (each of ``DiscoverySettings.span_days``) of one row; a SKU rises
over it when its demand summed over the span is ``riser_z`` one-sided standard errors (as a tail
probability) and ``min_lift`` above expectation; the span's count of risers is tested against a
binomial at the row's background rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from models.mining.discovery_null import tail_inflation, tail_p

if TYPE_CHECKING:
    from models.mining.discovery_settings import DiscoverySettings


def risers(y: np.ndarray, e: np.ndarray, var: np.ndarray, scanned: np.ndarray, s: DiscoverySettings):
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


def bh(p: np.ndarray) -> np.ndarray:
    return stats.false_discovery_control(np.clip(p, 0.0, 1.0), method="bh") if len(p) else p


def runs(days: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Sorted day indexes cut into (first, last) runs whose neighbours are at most ``gap`` days apart."""
    if not len(days):
        return []
    cuts = np.flatnonzero(np.diff(days) > gap + 1)
    starts, ends = np.r_[0, cuts + 1], np.r_[cuts, len(days) - 1]
    return [(int(days[a]), int(days[b])) for a, b in zip(starts, ends, strict=True)]


def rolling(a: np.ndarray, days: int) -> np.ndarray:
    """Sum of ``a`` over [t, t + days - 1] along the last axis (0 past the end)."""
    if days == 1:
        return a.astype(np.float64)
    cs = np.concatenate([np.zeros((*a.shape[:-1], 1)), np.cumsum(a, axis=-1, dtype=np.float64)], axis=-1)
    n = a.shape[-1]
    t = np.arange(n)
    return cs[..., np.minimum(t + days, n)] - cs[..., t]


def significant_days(y, e, var, scanned, free, groups, s: DiscoverySettings) -> tuple[np.ndarray, np.ndarray]:
    """Per row and day: covered by a significant span, and the span's q.

    A span is ``days`` consecutive days (each of ``s.span_days``) of one row; its riser count (SKUs
    rising over the span's total, the test's tail calibrated per span length and per ``groups`` of
    rows by ``models.mining.discovery_null`` with ``s.empirical_null``) is tested against the row's
    background rate. One BH over all."""
    ps, counts, tests = [], [], []
    level = float(stats.norm.sf(s.riser_z))
    for days in s.span_days:
        span_free = rolling(free, days) >= days
        scanned_l = (rolling(scanned, days) >= days) & span_free[:, None, :]
        y_l, e_l, var_l = rolling(y, days), rolling(e, days), rolling(var, days)
        if s.empirical_null:
            kappa = tail_inflation(
                y_l, e_l, var_l, scanned_l, groups, days=days, level=level, min_lift=s.min_lift
            )
            var_l = e_l + kappa * (var_l - e_l)
        rise = risers(y_l, e_l, var_l, scanned_l, s)
        count, active = rise.sum(axis=1), scanned_l.sum(axis=1)
        tested = span_free & (active > 0)
        ps.append(_day_pvalues(count, active, tested))
        counts.append(count)
        tests.append(tested)
    p, count, tested = np.stack(ps), np.stack(counts), np.stack(tests)
    q = np.ones_like(p)
    q[tested] = bh(p[tested])
    sig = tested & (q <= s.fdr_alpha) & (count >= s.min_skus)
    hit = np.zeros(free.shape, dtype=bool)
    best = np.ones(free.shape)
    for i, days in enumerate(s.span_days):
        for d in range(days):  # a significant span covers each of its days
            hit[:, d:] |= sig[i][:, : free.shape[1] - d]
            best[:, d:] = np.minimum(best[:, d:], np.where(sig[i], q[i], 1.0)[:, : free.shape[1] - d])
    return hit, best
