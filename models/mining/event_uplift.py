"""Event uplift: how much more a SKU is demanded in a region around an event type than it would be
without the event.

Method (imputation event study, after Borusyak, Jaravel and Spiess 2024):

* Panel: demand per region x SKU x day (``features.signals.daily_panel``): units of the stores that
  were not out of stock, plus the region's online buyers (``daily_online_buyers``: a business's
  order by the case is one buyer), over an exposure (the weight of the stores carrying the SKU that
  day, plus online). A store-day that ended with an empty shelf is censored:
  its demand was at least what it sold, and it enters by EM (``models.mining.effects``).
* Counterfactual, per event type: a Poisson model with fixed effects, region x SKU level, region x
  SKU x ``event_block_days`` block (season, trend, local drift), SKU x weekday and SKU x day of month
  (paydays), plus lead / during effects of every *other* event type, fitted on the days outside this
  type's windows only; then a SKU x date effect fitted on the regions outside the windows that
  day (chain-wide shocks: weather, holidays, promotions, the economy), shrunk by empirical Bayes as
  far as the regions' shared day-to-day variance against their own noise asks
  (``models.mining.dispersion.shock_prior``). The type's window days are
  predicted from these effects. Regions the event did not hit on the same dates are the control
  group (difference in differences); a chain-wide event has none, and its days are predicted from
  the block, weekday and day-of-month effects (the same weeks' level and the calendar).
* Observed / expected per window day; lift = sum(observed) / sum(expected) over the window, the
  *mean* lift (each day and event weighted by its expected demand): extra units = expected x
  (lift - 1) holds on average, which is what pre-stock plans with.
* Independent observations: windows of one type in one region less than ``event_cluster_gap_days``
  apart form one cluster (they share weather, news and stock). The log lift has a cluster-robust
  variance, moderated by empirical Bayes across the type's hypotheses, plus an empirical-null
  variance of the bias the type's counterfactual shares across a hypothesis's events (per region),
  and is tested > 0 with a t distribution (``models.mining.stats.moderated_ratio_test``), its
  variance never below the data's own noise: Poisson, the store-days' negative binomial excess
  (``nb_excess``), and the same-day shock the counterfactual could not see (``dispersion.shock_left``:
  a chain-wide day, with no control region, keeps all of it, shared by the regions it pools).
* Two windows per hypothesis: [start - lead_days, end] and [start, end]; both enter the FDR family.
* Chain-wide event types (``ALL`` rows in events.csv) are also tested for the chain as a whole (region
  ``ALL``), pooling every region's demand per event.
* Peak offset: the day from start_date with the highest pooled observed / expected among the days
  that at least half of the clusters reach.
"""

from __future__ import annotations

from datetime import date
from typing import cast

import numpy as np
import polars as pl

from data_contracts.schemas import CHAIN_WIDE
from features.signals import daily_panel, event_days, event_instances, promo_shares
from models.mining.dispersion import shared_shock_variance, shock_left, shock_prior, uncensored_store_days
from models.mining.effects import Effect, fill_censored, fill_own_lift, fit_effects, linear_predictor
from models.mining.event_design import Design, build_design, with_dispersion
from models.mining.settings import MiningSettings
from models.mining.stats import moderated_ratio_test, peak_offsets

HYPOTHESIS_KEYS = ("event_type", "region", "sku")
CELL_SCHEMA = pl.Schema(
    {
        "event_type": pl.String,
        "region": pl.String,
        "sku": pl.String,
        "cluster": pl.Date,
        "offset": pl.Int32,
        "chain_wide": pl.Boolean,
        "observed": pl.Float64,
        "expected": pl.Float64,
        # the observed demand's variance beyond Poisson, under no event: the negative binomial part,
        # sum over the cell's stores of (share x expected)^2 / size (``nb_excess``), plus expected^2 x
        # the variance the same-day shock's estimate leaves (``dispersion.shock_left``)
        "excess": pl.Float64,
        # expected x that shock's sd: the regions of a chain-wide day share it (``score_cells``)
        "shock": pl.Float64,
    }
)


def usable_instances(
    events: pl.LazyFrame, regions: pl.LazyFrame, *, first: date, as_of: date, settings: MiningSettings
) -> pl.LazyFrame:
    """Event instances whose window ends by ``as_of`` and starts on or after ``first``."""
    return event_instances(events, regions, lead_days=settings.event_lead_days).filter(
        (pl.col("end_date") <= as_of) & (pl.col("window_start") >= first)
    )


def counterfactuals(design: Design, *, max_sweeps: int = 100) -> dict[str, np.ndarray]:
    """Per event type: expected demand on each of its window rows had the type not happened
    (``counterfactuals_and_shocks``' first part)."""
    return counterfactuals_and_shocks(design, max_sweeps=max_sweeps)[0]


def counterfactuals_and_shocks(
    design: Design, *, max_sweeps: int = 100
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per event type: expected demand on each of its window rows had the type not happened, and the
    variance of the log same-day shock left in that expectation (``dispersion.shock_left``).

    A first fit over all rows (every type with its own lead / during effect) is the starting point of
    one fit per type on the rows outside that type's windows, so an event's own days never shape its
    baseline; the type's rows are then predicted, with a shrunk SKU x date effect of the rows outside
    the type's windows that day.
    """
    types = sorted(design.windows)
    offset = float(np.log(max(design.y.sum(), 1e-9) / max(design.exposure.sum(), 1e-9)))
    start = {
        e.name: e for e in design.fitted or design.effects([*design.base, *(f"event:{t}" for t in types)])
    }
    if not design.fitted:
        fit_effects(design.y, design.exposure, list(start.values()), censored=design.censored, offset=offset)
    every = np.arange(len(design.y))
    tau2, phi = _shock_variance(design, list(start.values()), offset)
    gamma = design.codes["gamma"]
    out: dict[str, np.ndarray] = {}
    left: dict[str, np.ndarray] = {}
    for t in types:
        rows = design.windows[t]["row"].to_numpy()
        outside = np.ones(len(design.y), dtype=bool)
        outside[rows] = False
        effects = design.effects([*design.base, *(f"event:{o}" for o in types if o != t)], start)
        fit_effects(
            design.y,
            design.exposure,
            effects,
            mask=outside,
            censored=design.censored,
            offset=offset,
            max_sweeps=max_sweeps,
        )
        eta = linear_predictor(effects, every, offset)
        mu = design.exposure * np.exp(eta)
        levels = int(gamma.max()) + 1
        prior = shock_prior(mu[outside], gamma[outside], tau2, phi, levels=levels)
        left[t] = shock_left(mu[outside], gamma[outside], tau2, phi, levels=levels)[gamma[rows]]
        shock = Effect("gamma", gamma, prior)
        # the sold-out control stores' demand counts too (their censored parts, filled under the fit)
        fit_effects(
            design.y,
            mu,
            [shock],
            mask=outside,
            censored=design.censored,
            max_sweeps=1,
        )
        out[t] = design.exposure[rows] * np.exp(eta[rows] + shock.on(rows))
    return out, left


def _shock_variance(design: Design, effects: list[Effect], offset: float) -> tuple[float, float]:
    """The shared SKU x day shock's variance across regions and the regions' own excess variance
    (``models.mining.dispersion.shared_shock_variance``), on the rows outside every event window
    under the fit of every effect (sold-out parts filled under it)."""
    rows = design.outside_windows()
    mu = design.exposure * np.exp(linear_predictor(effects, np.arange(len(design.y)), offset))
    counts = fill_censored(design.y.astype(np.float64), mu, design.censored)
    return shared_shock_variance(counts[rows], mu[rows], design.codes["gamma"][rows])


def window_cells(
    design: Design,
    expected: dict[str, np.ndarray],
    shocks: dict[str, np.ndarray] | None = None,
    *,
    em_rounds: int = 200,
    tol: float = 1e-4,
) -> pl.DataFrame:
    """Observed and expected demand per event type, region, SKU, cluster and offset (CELL_SCHEMA).

    A censored store part on a window day counts at its expected demand given that it sold out, under
    the lift of its own row (region, SKU, day) estimated so far: the row's stores that did not sell
    out and its online orders, which do not run out, tell how far demand rose that day (EM, until no
    row's lift moves by more than ``tol`` in log, at most ``em_rounds`` rounds). A lift pooled over a
    type's events reads the peaks of the strong ones low, where most of the sell-outs are.
    """
    frames = [pl.DataFrame(schema=CELL_SCHEMA)]
    busy = np.zeros((len(design.windows), len(design.y)), dtype=bool)
    for i, w in enumerate(design.windows.values()):
        busy[i, w.filter(pl.col("phase") != "after")["row"].to_numpy()] = True
    for i, (t, w) in enumerate(design.windows.items()):
        rows, e = w["row"].to_numpy(), expected[t]
        # a day inside another type's window too says little about either alone: not scored
        alone = (
            ~cast(np.ndarray, np.delete(busy, i, axis=0).any(axis=0))[rows]
            if len(busy) > 1
            else np.ones(len(rows), bool)
        )
        local = np.full(len(design.y), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        cens = design.censored.take(local[design.censored.row] >= 0, local)
        observed = fill_own_lift(design.y[rows].astype(np.float64), e, cens, rounds=em_rounds, tol=tol)
        shock = e * np.sqrt(shocks[t]) if shocks is not None else np.zeros(len(rows))
        excess = nb_excess(design, rows, e) + shock**2
        frame = (
            w.select("region", "sku", "offset", "phase", "cluster", "chain_wide")
            .with_columns(
                pl.lit(t).alias("event_type"),
                pl.Series("observed", observed),
                pl.Series("expected", e),
                pl.Series("excess", excess),
                pl.Series("shock", shock),
            )
            .filter((pl.col("phase") != "after") & pl.Series(alone))  # the wake is not scored
            .group_by("event_type", "region", "sku", "cluster", "offset", "chain_wide")
            .agg(*(pl.col(c).sum() for c in ("observed", "expected", "excess", "shock")))
        )
        frames.append(frame.select(CELL_SCHEMA.names()).cast(CELL_SCHEMA))
    return pl.concat(frames)


def nb_excess(design: Design, rows: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per window row, the variance of its observed demand beyond Poisson under ``expected``: its
    stores' demand is negative binomial, so a store of share s adds (s x expected)^2 / its size: the
    row's ``square_kappa`` (``with_dispersion``), else its ``square_share`` / the design's size (sold-out
    stores and online orders count as Poisson). Zeros without store-days or with a Poisson size."""
    if len(design.square_kappa):
        return expected**2 * design.square_kappa[rows]
    size = design.censored.size
    if not len(design.square_share) or not np.isfinite(size):
        return np.zeros(len(rows))
    return expected**2 * design.square_share[rows] / size


def score_cells(cells: pl.DataFrame, *, lead_days: int, min_support: int) -> pl.DataFrame:
    """Test every (event_type, region, sku) on two windows, [-lead_days, end] and [0, end].

    Regions are tested on their own; event types with chain-wide events also for the chain (region
    ``ALL``, every region's demand pooled per event). Returns event_type, region, sku, support
    (clusters), lift, ci_low, ci_high, p_value, observed_units, expected_units,
    window_start_offset_days, peak_offset_days.
    """
    keys = list(HYPOTHESIS_KEYS)
    # the regions of a chain-wide day share its shock: their covariances join the pooled variance
    shared = pl.col("shock").sum() ** 2 - (pl.col("shock") ** 2).sum()
    chain = (
        cells.filter(pl.col("chain_wide"))
        .group_by("event_type", "sku", "cluster", "offset")
        .agg(pl.col("observed").sum(), pl.col("expected").sum(), pl.col("excess").sum() + shared)
        .with_columns(pl.lit(CHAIN_WIDE).alias("region"))
    )
    cols = ["event_type", "region", "sku", "cluster", "offset", "observed", "expected", "excess"]
    both = pl.concat([cells.select(cols), chain.select(cols)])
    tested = []
    for w in sorted({-lead_days, 0}):
        per_cluster = (
            both.filter(pl.col("offset") >= w)
            .group_by(*keys, "cluster")
            .agg(pl.col("observed").sum(), pl.col("expected").sum(), pl.col("excess").sum())
        )
        t = moderated_ratio_test(per_cluster, keys, family=["event_type"], null_by=["event_type", "region"])
        t = t.drop("df").filter(pl.col("support") >= min_support)
        tested.append(t.with_columns(pl.lit(w, pl.Int64).alias("window_start_offset_days")))
    return pl.concat(tested).join(peak_offsets(both, keys), on=keys, how="left")


def event_cells(
    sales: pl.LazyFrame,
    online: pl.LazyFrame | None,
    events: pl.LazyFrame,
    regions: pl.LazyFrame,
    *,
    as_of: date,
    settings: MiningSettings,
    promo: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Every scored window cell (``CELL_SCHEMA``: observed demand and the counterfactual's expected
    demand per event type, region, SKU, day), what ``score_cells`` tests; arguments as in
    ``event_uplift_hypotheses``."""
    first = sales.select(pl.col("date").min()).collect().item()
    cells = pl.DataFrame(schema=CELL_SCHEMA)
    if first is not None:
        instances = usable_instances(events, regions, first=first, as_of=as_of, settings=settings)
        days = event_days(
            instances, cluster_gap_days=settings.event_cluster_gap_days, after_days=settings.event_after_days
        )
        panel, parts = daily_panel(sales, online if settings.event_use_online else None, as_of=as_of)
        if promo is not None and "promo" in promo.collect_schema().names():
            panel = promo_shares(promo, sales, panel, as_of=as_of)
        panel_df, parts_df, days_df, stores_df = pl.collect_all(
            [panel, parts, days, uncensored_store_days(sales)]
        )
        if days_df.height and panel_df.height:
            design = build_design(
                panel_df,
                parts_df,
                days_df,
                first=min(first, panel_df["date"].min()),
                block_days=settings.event_block_days,
                stores=stores_df,
            )
            design = with_dispersion(design)
            cells = window_cells(design, *counterfactuals_and_shocks(design))
    return cells


def event_uplift_hypotheses(
    sales: pl.LazyFrame,
    online: pl.LazyFrame | None,
    events: pl.LazyFrame,
    regions: pl.LazyFrame,
    *,
    as_of: date,
    settings: MiningSettings,
    promo: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Every event uplift hypothesis tested, with its statistics (see ``score_cells``).

    ``sales`` is ``features.signals.clean_store_sales`` output, ``online`` is
    ``features.signals.daily_online_units`` output (None: stores only), ``regions`` has a ``region``
    column (the regions an ``ALL`` event reaches), ``promo`` the store sales as dropped (store_id,
    sku, date, promo; None or no ``promo`` column: no promotion in the counterfactual).
    """
    cells = event_cells(sales, online, events, regions, as_of=as_of, settings=settings, promo=promo)
    return score_cells(cells, lead_days=settings.event_lead_days, min_support=settings.min_event_support)
