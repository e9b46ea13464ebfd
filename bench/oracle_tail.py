"""The null tail of the oracle's test (bench/mining_oracle.py, issue 8): the upper tail of a window's
observed units under no event effect, by a saddlepoint approximation.

Store-day units are a negative binomial demand (size ``NB_SIZE``, the demo's gamma noise on a Poisson
mean) censored at the shelf stock; online units are compound Poisson (lines of 1 + Poisson units).
The window's total is their sum; its tail comes from the sum's cumulant generating function
(Lugannani-Rice with Daniels' continuity correction), computed over each store-day's support.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows.demo import facts  # noqa: E402

NB_SIZE = 4.0  # facts._demand: gamma(4, 0.25) noise on the Poisson mean
LINE_EXTRA = facts.UNITS_PER_LINE - 1  # online units per line: 1 + Poisson(0.25)
TAIL = 1e-14  # store-day supports are cut where the negative binomial's upper tail is below this
CHUNK = 4_000_000  # support points per saddlepoint pass


def _supports(m0: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat support of each store-day's null min(D0, c): values y, log probabilities, cell starts."""
    p = NB_SIZE / (NB_SIZE + m0)
    top = np.minimum(c, stats.nbinom.isf(TAIL, NB_SIZE, p).astype(np.int64) + 1)
    length = top + 1
    starts = np.cumsum(length) - length
    cell = np.repeat(np.arange(len(m0)), length)
    y = np.arange(int(length.sum())) - starts[cell]
    logp = stats.nbinom.logpmf(y, NB_SIZE, p[cell])
    last = starts + top
    logp[last] = stats.nbinom.logsf(top - 1, NB_SIZE, p)  # P(D0 >= top): the sold-out mass
    return y.astype(np.float64), logp, starts


def _store_cgf(
    s: np.ndarray, y: np.ndarray, logp: np.ndarray, starts: np.ndarray, cell: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell K(s), K'(s), K''(s) of the censored null distribution (s per cell)."""
    a = logp + s[cell] * y
    amax = np.maximum.reduceat(a, starts)
    e = np.exp(a - amax[cell])
    s0 = np.add.reduceat(e, starts)
    s1 = np.add.reduceat(e * y, starts) / s0
    s2 = np.add.reduceat(e * y * y, starts) / s0
    return amax + np.log(s0), s1, np.maximum(s2 - s1 * s1, 0.0)


def _online_cgf(s: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K, K', K'' of a compound Poisson(mu) sum of 1 + Poisson(0.25) units."""
    es = np.exp(s)
    ku = s + LINE_EXTRA * (es - 1)
    d1 = 1 + LINE_EXTRA * es
    g = mu * np.exp(ku)
    return g - mu, g * d1, g * (d1 * d1 + LINE_EXTRA * es)


def cell_means(m0: np.ndarray, c: np.ndarray) -> np.ndarray:
    """E[min(D0, c)] of each store-day under the null (chunked over the flat supports)."""
    out = np.empty(len(m0))
    step = max(1, CHUNK // 64)
    for a in range(0, len(m0), step):
        y, logp, starts = _supports(m0[a : a + step], c[a : a + step])
        cell = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(y))))
        out[a : a + step] = _store_cgf(np.zeros(len(starts)), y, logp, starts, cell)[1]
    return out


def saddlepoint_p(
    h_store: np.ndarray,
    m0: np.ndarray,
    c: np.ndarray,
    h_online: np.ndarray,
    mu: np.ndarray,
    observed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """P(T >= observed) under the null per hypothesis (T = sum of its store cells' min(D0, c) and its
    online units), and the null mean of T. Lugannani-Rice with Daniels' second continuity correction."""
    n_h = len(observed)
    target = observed - 0.5
    s = np.zeros(n_h)
    lo, hi = np.full(n_h, -30.0), np.full(n_h, 5.0)
    order = np.argsort(h_store, kind="stable")
    h_store, m0, c = h_store[order], m0[order], c[order]
    # chunks of whole hypotheses, at most CHUNK support points each (memory)
    approx = np.minimum(c, m0 * 8 + 40) + 1
    bounds = np.searchsorted(h_store, np.arange(n_h + 1))
    cum = np.concatenate([[0], np.cumsum(approx)])
    chunks, a = [], 0
    while a < n_h:
        b = max(a + 1, int(np.searchsorted(cum[bounds], cum[bounds[a]] + CHUNK, side="right")) - 1)
        chunks.append((a, min(b, n_h)))
        a = min(b, n_h)
    supports = []
    for a, b in chunks:
        sel = slice(bounds[a], bounds[b])
        if bounds[b] == bounds[a]:
            continue
        y, logp, starts = _supports(m0[sel], c[sel])
        cell = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(y))))
        supports.append((a, b, sel, y, logp, starts, cell))

    def cgf(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k0, k1, k2 = _online_cgf(s[h_online], mu)
        out = [np.bincount(h_online, v, minlength=n_h) for v in (k0, k1, k2)]
        for _a, _b, sel, y, logp, starts, cell in supports:
            hs = h_store[sel]
            v = _store_cgf(s[hs], y, logp, starts, cell)
            for i in range(3):
                out[i] += np.bincount(hs, v[i], minlength=n_h)
        return out[0], out[1], out[2]

    _, mean, var0 = cgf(np.zeros(n_h))
    for _ in range(80):
        k0, k1, k2 = cgf(s)
        done = np.abs(k1 - target) <= 1e-9 * (1 + np.abs(target))
        if np.all(done):
            break
        below = k1 < target
        lo = np.where(below, s, lo)
        hi = np.where(below, hi, s)
        step = s - (k1 - target) / np.maximum(k2, 1e-300)
        s = np.where(done, s, np.where((step > lo) & (step < hi), step, (lo + hi) / 2))
    k0, k1, k2 = cgf(s)
    w = np.sign(s) * np.sqrt(np.maximum(2 * (s * target - k0), 0.0))
    u = 2 * np.sinh(s / 2) * np.sqrt(k2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = stats.norm.sf(w) + stats.norm.pdf(w) * (1 / u - 1 / w)
    near = np.abs(s) < 1e-3
    p[near] = stats.norm.sf((target[near] - mean[near]) / np.sqrt(np.maximum(var0[near], 1e-300)))
    unreachable = np.abs(k1 - target) > 1e-6 * (1 + np.abs(target))  # beyond the support: tiny
    p[unreachable & (target > mean)] = 1e-300
    p[observed <= 0] = 1.0
    return np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0), mean
