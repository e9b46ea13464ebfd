"""Shared statistics of the miner.

``clustered_ratio_test``: a ratio of observed to expected totals (the estimand every pattern
reports), tested with a cluster-robust variance across independent clusters (events, blocks of weeks).

``moderated_ratio_test``: the same ratio with the cluster-robust variance moderated by empirical Bayes
(Smyth 2004, the ``limma`` moderated t): with a handful of clusters a hypothesis's own variance is a
poor estimate (3 degrees of freedom for 4 events), so it is pooled with a prior variance fitted on
every hypothesis of its family, and the t test gets the prior's degrees of freedom on top of its own.

``median_variance``: how much less the median of n estimates varies than one of them (the
affinity's reference is the median other region).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from scipy import optimize, special, stats

Alternative = Literal["two-sided", "greater"]


def clustered_ratio_test(
    clusters: pl.DataFrame, keys: Sequence[str], *, alternative: Alternative = "greater"
) -> pl.DataFrame:
    """Test lift = sum(observed) / sum(expected) = 1 per group of ``keys``, across its clusters.

    ``clusters`` has ``keys``, observed, expected, one row per independent cluster. The lift is the
    ratio estimator (a mean of per-cluster ratios weighted by expected units); its log has the
    cluster-robust (sandwich) variance G/(G-1) sum_g (O_g - lift E_g)^2 / sum(O)^2 over G clusters,
    floored at the Poisson variance 1/sum(O) (clusters that happen to agree are not infinitely
    precise), tested with a t distribution on G - 1 degrees of freedom. Returns ``keys``, support (G),
    lift, ci_low, ci_high (95%), se_log, p_value, observed_units, expected_units.
    """
    keys = list(keys)
    grouped = _ratio_groups(clusters, keys)
    g = grouped["support"].to_numpy().astype(float)
    o = grouped["observed_units"].to_numpy() + 0.5
    se = np.sqrt(np.maximum(grouped["ss"].to_numpy() * g / np.maximum(g - 1, 1) / o**2, 1 / o))
    df = np.maximum(g - 1, 1)
    return _t_result(grouped, keys, se, df, alternative).drop("df")


def _t_result(
    grouped: pl.DataFrame, keys: list[str], se: np.ndarray, df: np.ndarray, alternative: str
) -> pl.DataFrame:
    """The groups' log lift tested with a t on ``df`` degrees of freedom and standard error ``se``:
    ``keys``, support, lift, observed / expected units, ci_low, ci_high (95%), se_log, df, p_value."""
    log_lift = np.log(grouped["lift"].to_numpy())
    t_stat = log_lift / se
    p = stats.t.sf(t_stat, df) if alternative == "greater" else 2 * stats.t.sf(np.abs(t_stat), df)
    crit = stats.t.ppf(0.975, df)
    return grouped.select(*keys, "support", "lift", "observed_units", "expected_units").with_columns(
        pl.Series("ci_low", np.exp(log_lift - crit * se)),
        pl.Series("ci_high", np.exp(log_lift + crit * se)),
        pl.Series("se_log", se),
        pl.Series("df", df),
        pl.Series("p_value", np.minimum(p, 1.0)),
    )


@functools.cache
def median_variance(n: int) -> float:
    """The variance of the median of ``n`` independent standard normals (1 for one, 1/2 for two,
    0.449 for three, about pi / 2n for many): the order statistics' density integrated on a grid (for
    an even ``n`` the median is the mean of the middle two, whose joint density is integrated), in
    logs and normalised on the grid, so a large ``n`` neither overflows nor underflows."""
    if n < 1:
        raise ValueError(f"the median of {n} values")
    # the grid spans 15 of the median's standard deviations (about sqrt(pi / 2n)) or +-8, if less
    half = min(8.0, 15.0 * math.sqrt(math.pi / (2 * n)))
    x = np.linspace(-half, half, 1601)
    log_cdf, log_sf, log_pdf = stats.norm.logcdf(x), stats.norm.logsf(x), stats.norm.logpdf(x)
    m = n // 2
    if n % 2:  # the (m + 1)-th of n: density proportional to F^m (1 - F)^m f
        log_density = m * (log_cdf + log_sf) + log_pdf
        density = np.exp(log_density - log_density.max())
        return float((density * x**2).sum() / density.sum())
    # the m-th at x below the (m + 1)-th at y: proportional to F(x)^(m-1) f(x) (1 - F(y))^(m-1) f(y)
    log_joint = ((m - 1) * log_cdf + log_pdf)[:, None] + ((m - 1) * log_sf + log_pdf)[None, :]
    log_joint = np.where(np.triu(np.ones_like(log_joint, dtype=bool)), log_joint, -np.inf)
    joint = np.exp(log_joint - log_joint.max())
    joint = np.triu(joint, 1) + np.diag(np.diag(joint)) / 2  # x < y, half the diagonal's cell
    mid = (x[:, None] + x[None, :]) / 2
    return float((joint * mid**2).sum() / joint.sum())


BLOCK_WEEKS = 4  # weeks of one region move together (a good month follows a good month)


def week_block() -> pl.Expr:
    """The ``week`` column's block of ``BLOCK_WEEKS`` consecutive weeks of the frame (0 for the first):
    the clusters of the weekly tests (local affinity, latent demand)."""
    return (pl.col("week").rank("dense") - 1).floordiv(BLOCK_WEEKS).alias("block")


ASH_GRID_STEP = math.sqrt(2.0)  # ratio of neighbouring prior sds of the mixture's grid
ASH_ITERATIONS = 500


def adaptive_shrink(estimate: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes posterior mean and variance of effects ``estimate`` (normal, sampling variance
    ``var``) under a prior that is a mixture of N(0, s^2) over a grid of sds from a point mass at 0
    up to the largest estimate, its weights fitted by maximum likelihood (EM) over all of them: the
    adaptive shrinkage of Stephens (2017). Where a few effects are large and most are near 0, a
    single normal prior (its variance the mean of all) pulls the large ones far toward 0; the mixture
    learns both, and still shrinks a noisy estimate hard."""
    if len(estimate) == 0:
        return estimate.copy(), var.copy()
    v = np.maximum(var, 1e-12)
    top = max(float(np.sqrt(np.max(estimate**2 - v, initial=0.0))), float(np.sqrt(v.min())))
    sds = [0.0]
    s = float(np.sqrt(v.min())) / 10
    while s < 2 * top:
        sds.append(s)
        s *= ASH_GRID_STEP
    prior_var = np.array(sds) ** 2
    total = v[:, None] + prior_var[None, :]
    loglik = -0.5 * (np.log(2 * np.pi * total) + estimate[:, None] ** 2 / total)
    lik = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    weights = np.full(len(sds), 1.0 / len(sds))
    for _ in range(ASH_ITERATIONS):
        resp = lik * weights
        resp /= resp.sum(axis=1, keepdims=True)
        new = resp.mean(axis=0)
        if np.abs(new - weights).max() < 1e-8:
            weights = new
            break
        weights = new
    resp = lik * weights
    resp /= resp.sum(axis=1, keepdims=True)
    factor = prior_var[None, :] / total  # within a component: a normal prior's shrinkage
    mean_j = factor * estimate[:, None]
    var_j = factor * v[:, None]
    post = (resp * mean_j).sum(axis=1)
    post_var = (resp * (var_j + mean_j**2)).sum(axis=1) - post**2
    return post, np.maximum(post_var, 0.0)


MIN_PRIOR_HYPOTHESES = 30  # fewer usable hypotheses in a family: the prior borrows from all of them
# fewer expected units: a hypothesis's variance still gets the prior and the empirical null, but
# shapes neither. The prior's model, s2 ~ prior x chi2(G - 1) / (G - 1), holds for sums of many
# units; a slow seller's few discrete units give sample variances far more spread than a chi2 (many
# exactly 0, left out, the others wide), and thousands of them read as a prior barely worth a handful
# of degrees of freedom (the demo's 450-day world: 3-9 instead of 20-70 with them left out). For the
# null, ``_null_variance``.
PRIOR_MIN_EXPECTED = 30.0
MIN_NULL_HYPOTHESES = 10  # fewer in a group: its empirical null is its family's
MAX_PRIOR_DF = 1e4  # prior degrees of freedom beyond this: the variances are the prior's


def _ratio_groups(clusters: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per group: support, lift, observed / expected units, the sandwich sum of squares, the
    Herfindahl index of the clusters' expected units (1/G for equal clusters) and the clusters'
    summed ``excess`` (0 without the column)."""
    ratio = (pl.col("observed").sum() + 0.5) / (pl.col("expected").sum() + 0.5)
    share = pl.col("expected") / pl.col("expected").sum().over(keys)
    return (
        clusters.with_columns(ratio.over(keys).alias("lift"), share.fill_nan(0.0).alias("share"))
        .group_by(keys)
        .agg(
            pl.len().alias("support"),
            pl.col("lift").first(),
            pl.col("observed").sum().alias("observed_units"),
            pl.col("expected").sum().alias("expected_units"),
            ((pl.col("observed") - pl.col("lift") * pl.col("expected")) ** 2).sum().alias("ss"),
            (pl.col("share") ** 2).sum().alias("herfindahl"),
            (pl.col("excess").sum() if "excess" in clusters.columns else pl.lit(0.0)).alias("excess"),
        )
        .sort(keys)
    )


def variance_prior(s2: np.ndarray, df: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Fit s2 ~ (x @ coef) * chi2_df / df over hypotheses (limma's ``fitFDist`` with a trend).

    ``s2``: each hypothesis's variance estimate on ``df`` degrees of freedom; ``x``: the trend's
    non-negative covariates (columns), the prior variance being a positive combination of them. The
    log variances, corrected for the bias of log chi2 (digamma), are fitted robustly (soft L1); the
    residual variance beyond the sampling variance of log chi2 (trigamma) gives the prior degrees of
    freedom d0 (inf: no spread beyond sampling). Returns (coef, d0), None with too few usable rows.
    """
    ok = (s2 > 0) & (df >= 1)
    if ok.sum() < MIN_PRIOR_HYPOTHESES:
        return None
    e = np.log(s2[ok]) - special.digamma(df[ok] / 2) + np.log(df[ok] / 2)
    xo = x[ok]

    def residual(theta: np.ndarray) -> np.ndarray:
        return e - np.log(xo @ np.exp(theta))

    start = float(np.median(e)) - np.log(2 * np.maximum(xo.mean(axis=0), 1e-12))
    fit = optimize.least_squares(residual, start, loss="soft_l1")
    spread = float(np.var(residual(fit.x), ddof=x.shape[1]) - np.mean(special.polygamma(1, df[ok] / 2)))
    if spread <= float(special.polygamma(1, MAX_PRIOR_DF / 2)):
        return np.exp(fit.x), MAX_PRIOR_DF
    # trigamma is decreasing: solve trigamma(d0 / 2) = spread
    d0 = optimize.brentq(lambda d: float(special.polygamma(1, d / 2)) - spread, 1e-6, MAX_PRIOR_DF)
    return np.exp(fit.x), float(d0)


def null_spread(log_lift: np.ndarray, var: np.ndarray, df: np.ndarray) -> float:
    """The variance b of a bias shared by a hypothesis's clusters, from the hypotheses' spread.

    The empirical null (Efron 2004) as a variance component: b >= 0 such that the median over the
    hypotheses of F(1, df).cdf(log_lift^2 / (var + b)) is 1/2, the median of a null t^2. The median
    is barely moved by the few real effects among many hypotheses (they only make b larger).
    """

    def excess(b: float) -> float:
        return float(np.median(stats.f.cdf(log_lift**2 / (var + b), 1, df))) - 0.5

    if len(log_lift) == 0 or excess(0.0) <= 0:
        return 0.0
    # at b = top every ratio lies at or below its F median, so the excess is <= 0
    top = float(np.max(log_lift**2) / np.min(stats.f.ppf(0.5, 1, df))) + 1.0
    return float(optimize.brentq(excess, 0.0, top))


def _codes(frame: pl.DataFrame, cols: list[str]) -> np.ndarray:
    return frame.select(pl.struct(cols).rank("dense")).to_series().to_numpy()


def null_scale(log_lift: np.ndarray, var: np.ndarray, floor: np.ndarray, df: np.ndarray) -> float:
    """The factor k in [0, 1] by which the hypotheses' variances are too wide, from their spread.

    The other side of ``null_spread`` (Efron's empirical null may be narrower than the theoretical
    one): where the log lifts spread less than ``var`` says, k such that the median over the
    hypotheses of F(1, df).cdf(log_lift^2 / max(k var, floor)) is 1/2. A variance never goes below
    ``floor``, the variance of the log ratio under the null (the observation noise). 1 where the
    spread is not narrower.
    """

    def excess(k: float) -> float:
        return float(np.median(stats.f.cdf(log_lift**2 / np.maximum(k * var, floor), 1, df))) - 0.5

    if len(log_lift) == 0 or excess(1.0) >= 0:
        return 1.0
    if excess(0.0) <= 0:  # narrower than the noise: the floor
        return 0.0
    return float(optimize.brentq(excess, 0.0, 1.0))


def _null_variance(
    grouped: pl.DataFrame,
    log_lift: np.ndarray,
    var: np.ndarray,
    floor: np.ndarray,
    df: np.ndarray,
    family: list[str],
    null_by: list[str],
    shaping: np.ndarray,
) -> np.ndarray:
    """Per hypothesis, its variance under the empirical null of its ``null_by`` group, or of its
    family where the group is small (``var`` where the family is small too): ``var`` plus the group's
    bias variance (``null_spread``) where the log lifts spread more than ``var`` says, ``var`` scaled
    down (``null_scale``, never below ``floor``) where they spread less. Both are read from the
    ``shaping`` hypotheses (at least ``PRIOR_MIN_EXPECTED`` expected units): the F reference of a
    squared t does not hold for a slow seller's few discrete units (their median lies far below it,
    which reads as variances too wide and would narrow the big sellers' too)."""
    out = var.copy()
    fam, grp = _codes(grouped, family), _codes(grouped, null_by)
    for codes in (fam, grp):  # the group's own where it is large enough, else the family's
        for c in np.unique(codes):
            rows = codes == c
            fit = rows & shaping
            if fit.sum() < MIN_NULL_HYPOTHESES:  # fewer: nothing to learn a spread from
                continue
            b = null_spread(log_lift[fit], var[fit], df[fit])
            if b > 0:
                out[rows] = var[rows] + b
            else:
                k = null_scale(log_lift[fit], var[fit], floor[fit], df[fit])
                out[rows] = np.maximum(k * var[rows], floor[rows])
    return out


def moderated_ratio_test(
    clusters: pl.DataFrame,
    keys: Sequence[str],
    *,
    family: Sequence[str],
    null_by: Sequence[str] | None = None,
    alternative: Alternative = "greater",
) -> pl.DataFrame:
    """``clustered_ratio_test`` with the cluster-robust variance moderated by empirical Bayes.

    Each hypothesis's sandwich variance s2 of the log lift (G - 1 degrees of freedom) is pooled with a
    prior variance phi N + tau2 H (the observation noise N = 1/O + X/E^2 over O observed and E
    expected units, X the clusters' summed ``excess`` variance beyond Poisson where ``clusters`` has
    that column: a negative binomial store-day's; plus event-to-event noise tau2 over the clusters'
    Herfindahl index H, 1/G for equal clusters) fitted per ``family`` on the hypotheses with at least
    ``PRIOR_MIN_EXPECTED`` expected units (a subset of ``keys``; a family with fewer than
    ``MIN_PRIOR_HYPOTHESES`` usable hypotheses uses the prior of all): s2~ = (d0 prior + (G - 1) s2)
    / (d0 + G - 1), floored at the null's observation variance 1/min(O, E) + X/E^2 (under the null
    the observed units scatter around the expected ones with variance E + X), tested with a t
    distribution on d0 + G - 1 degrees of freedom. With no usable prior at all it is
    ``clustered_ratio_test``.

    ``null_by`` (a subset of ``keys`` containing ``family``): a bias of the counterfactual that every
    cluster of a hypothesis shares is invisible to the cluster variance; its variance is estimated
    per ``null_by`` group from the spread of the log lifts (``null_spread``; a group with fewer
    than ``MIN_NULL_HYPOTHESES`` takes its family's, a small family has none) and added to each
    hypothesis's variance. Where the log lifts spread less than the variances say (the moderated
    variance is wide), the group's variances are scaled down instead (``null_scale``), never below
    the floor: the empirical null of Efron (2004) in both directions.
    Returns the columns of ``clustered_ratio_test`` plus df.
    """
    keys, family = list(keys), list(family)
    grouped = _ratio_groups(clusters, keys)
    g = grouped["support"].to_numpy().astype(float)
    o = grouped["observed_units"].to_numpy() + 0.5
    e = grouped["expected_units"].to_numpy() + 0.5
    d = np.maximum(g - 1, 0)
    s2 = grouped["ss"].to_numpy() * g / np.maximum(g - 1, 1) / o**2
    # the observation noise under no effect, (E + excess) / E^2: Poisson, plus the clusters' excess
    # variance beyond Poisson where they have one (a big seller's store-days are overdispersed)
    noise = 1 / o + grouped["excess"].to_numpy() / e**2
    x = np.column_stack([noise, grouped["herfindahl"].to_numpy()])
    prior, d0 = s2.copy(), np.zeros(len(g))
    shaping = grouped["expected_units"].to_numpy() >= PRIOR_MIN_EXPECTED
    fits = np.where(shaping, d, 0)  # 0 degrees of freedom: not in the fit
    every = variance_prior(s2, fits, x)
    if every is not None:
        prior, d0 = x @ every[0], np.full(len(g), every[1])
        codes = _codes(grouped, family)
        for c in np.unique(codes):
            rows = codes == c
            own = variance_prior(s2[rows], fits[rows], x[rows])
            if own is not None:
                prior[rows], d0[rows] = x[rows] @ own[0], own[1]
    # floor: the variance of the log ratio under the null, 1 / expected (a slow seller's few units
    # over a near-zero expectation are not precise) or 1 / observed where that is larger, plus the
    # excess over Poisson (the empirical null may narrow the variances, never below the data's noise)
    floor = np.maximum(1 / o, 1 / e) + grouped["excess"].to_numpy() / e**2
    var = np.maximum((d0 * prior + d * s2) / np.maximum(d0 + d, 1e-12), floor)
    df = np.maximum(d0 + d, 1)
    log_lift = np.log(grouped["lift"].to_numpy())
    if null_by is not None:
        var = _null_variance(grouped, log_lift, var, floor, df, family, list(null_by), shaping)
    return _t_result(grouped, keys, np.sqrt(var), df, alternative)


def peak_offsets(cells: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per group of ``keys``, the offset with the highest pooled observed / expected among the offsets
    that at least half of its clusters reach (ties: the earliest day): the event miner's peak day.
    ``cells`` has keys, offset, cluster, observed, expected."""
    per = (
        cells.group_by(*keys, "offset")
        .agg(pl.col("observed").sum(), pl.col("expected").sum(), pl.col("cluster").n_unique().alias("n"))
        .with_columns(pl.col("n").max().over(keys).alias("n_max"))
        .filter((pl.col("n") * 2 >= pl.col("n_max")) & (pl.col("expected") > 0))
        .with_columns((pl.col("observed") / pl.col("expected")).alias("ratio"))
        .sort(*keys, "offset")
    )
    return per.group_by(keys).agg(
        pl.col("offset").get(pl.col("ratio").arg_max()).cast(pl.Int64).alias("peak_offset_days")
    )
