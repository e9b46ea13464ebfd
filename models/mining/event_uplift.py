"""Event uplift: how much more a SKU sells in a region around an event type than it would without it.

Method (per event instance = one event_id in one region, then across instances):

* Expected demand: each store x SKU pair's baseline rate over the ``baseline_days`` before the event
  window (days inside any event window of that region and stockout days left out), day-of-week adjusted
  with the SKU's chain-wide weekday index. Only pairs on sale over the whole baseline and still on sale
  when the window opens count, so a listing or delisting does not look like an event.
* Observed demand: the same pairs' units over the window [start - lead_days, end], stockout days left
  out of observed and expected alike, summed over the region's stores.
* Per instance: log ratio l = log((O + 0.5) / (E + 0.5)). Stores hit by one event share its weather,
  news and supply, so the *event* is the independent observation, not the store.
* Two windows per hypothesis: [start - lead_days, end] and [start, end]; see
  ``event_uplift_hypotheses``.
* Across instances of an event type in a region: one-sided t-test of mean(l) > 0 with n - 1 degrees of
  freedom; the variance is floored at the Poisson sampling variance (1/O + 1/baseline units) so two
  events that happen to agree closely do not look infinitely precise. lift = exp(mean l) (the typical
  event's ratio), 95% CI = exp(mean l +- t * se).
* Peak offset: the day offset from start_date with the highest pooled observed/expected ratio, among
  offsets that at least half of the events reach.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import stats

from features.signals import event_baseline_days, event_instances, event_window_days, sku_dow_factors
from models.mining.settings import MiningSettings

INSTANCE_KEYS = ("event_id", "event_type", "region", "sku")
HYPOTHESIS_KEYS = ("event_type", "region", "sku")


def usable_instances(
    events: pl.LazyFrame, regions: pl.LazyFrame, *, first: date, as_of: date, settings: MiningSettings
) -> pl.LazyFrame:
    """Event instances whose window ends by ``as_of`` and whose baseline starts on or after ``first``.

    Returns the columns of ``features.signals.event_instances``.
    """
    return event_instances(events, regions, lead_days=settings.event_lead_days).filter(
        (pl.col("end_date") <= as_of)
        & (pl.col("window_start") - timedelta(days=settings.event_baseline_days) >= first)
    )


def _baseline_pairs(
    sales: pl.LazyFrame, instances: pl.LazyFrame, dow: pl.LazyFrame, *, baseline_days: int
) -> pl.LazyFrame:
    """Store x SKU pairs with a positive day-of-week adjusted baseline rate for each instance.

    Returns columns event_id, event_type, region, store_id, sku, rate (units per average weekday),
    base_units.
    """
    base_days = event_baseline_days(instances, baseline_days=baseline_days)
    # weekday-weighted count of usable baseline days, per instance and SKU
    weight_all = (
        base_days.group_by("event_id", "region", "dow")
        .agg(pl.len().alias("n"))
        .join(dow, on="dow")
        .group_by("event_id", "region", "sku")
        .agg((pl.col("n") * pl.col("dow_factor")).sum().alias("w_all"))
    )
    per_pair = (
        sales.join(base_days.select("event_id", "region", "date"), on=["region", "date"])
        .join(dow, on=["sku", "dow"], how="left")
        .group_by("event_id", "region", "store_id", "sku")
        .agg(
            pl.col("units").filter(~pl.col("stockout")).sum().alias("base_units"),
            pl.col("dow_factor").fill_null(1.0).filter(pl.col("stockout")).sum().alias("w_stock"),
        )
    )
    span = sales.group_by("store_id", "sku").agg(
        pl.col("date").min().alias("first_sold"), pl.col("date").max().alias("last_sold")
    )
    return (
        per_pair.join(weight_all, on=["event_id", "region", "sku"])
        .join(instances.select("event_id", "event_type", "region", "window_start"), on=["event_id", "region"])
        .join(span, on=["store_id", "sku"])
        .filter(
            (pl.col("first_sold") <= pl.col("window_start") - timedelta(days=baseline_days))
            & (pl.col("last_sold") >= pl.col("window_start"))
            & (pl.col("base_units") > 0)
            & (pl.col("w_all") > pl.col("w_stock"))
        )
        .select(
            "event_id",
            "event_type",
            "region",
            "store_id",
            "sku",
            (pl.col("base_units") / (pl.col("w_all") - pl.col("w_stock"))).alias("rate"),
            "base_units",
        )
    )


def event_daily_demand(
    sales: pl.LazyFrame, instances: pl.LazyFrame, *, baseline_days: int
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Observed and expected units per instance, SKU and window day.

    ``sales`` is ``features.signals.clean_store_sales`` output. Returns (daily, baseline): daily has
    columns event_id, event_type, region, sku, offset, observed, expected; baseline has event_id,
    event_type, region, sku, base_units (the baseline units behind ``expected``).
    """
    dow = sku_dow_factors(sales)
    pairs = _baseline_pairs(sales, instances, dow, baseline_days=baseline_days)
    window = event_window_days(instances).drop("event_type")
    censored = pl.col("stockout").fill_null(False)
    daily = (
        pairs.join(window, on=["event_id", "region"])
        .join(dow, on=["sku", "dow"], how="left")
        .join(
            sales.select("store_id", "sku", "date", "units", "stockout"),
            on=["store_id", "sku", "date"],
            how="left",
        )
        .with_columns(
            pl.when(censored).then(0.0).otherwise(pl.col("units").fill_null(0.0)).alias("observed"),
            pl.when(censored)
            .then(0.0)
            .otherwise(pl.col("rate") * pl.col("dow_factor").fill_null(1.0))
            .alias("expected"),
        )
        .group_by(*INSTANCE_KEYS, "offset")
        .agg(pl.col("observed").sum(), pl.col("expected").sum())
    )
    baseline = pairs.group_by(*INSTANCE_KEYS).agg(pl.col("base_units").sum())
    return daily, baseline


def _peak_offsets(daily: pl.DataFrame) -> pl.DataFrame:
    """Per hypothesis, the offset with the highest pooled observed/expected ratio (ties: earliest day)."""
    per_offset = (
        daily.group_by(*HYPOTHESIS_KEYS, "offset")
        .agg(
            pl.col("observed").sum(),
            pl.col("expected").sum(),
            pl.col("event_id").n_unique().alias("n_events"),
        )
        .with_columns(pl.col("n_events").max().over(HYPOTHESIS_KEYS).alias("n_max"))
        # late offsets reached by only one long event are too noisy to call a peak
        .filter((pl.col("n_events") * 2 >= pl.col("n_max")) & (pl.col("expected") > 0))
        .with_columns((pl.col("observed") / pl.col("expected")).alias("ratio"))
        .sort([*HYPOTHESIS_KEYS, "offset"])
    )
    return per_offset.group_by(HYPOTHESIS_KEYS).agg(
        pl.col("offset").get(pl.col("ratio").arg_max()).alias("peak_offset_days")
    )


def _per_event(daily: pl.DataFrame, baseline: pl.DataFrame, *, from_offset: int) -> pl.DataFrame:
    """Per instance and SKU over window days with offset >= ``from_offset``: observed, expected, the log
    ratio ``l`` and its Poisson variance ``pois_var``."""
    return (
        daily.filter(pl.col("offset") >= from_offset)
        .group_by(INSTANCE_KEYS)
        .agg(pl.col("observed").sum(), pl.col("expected").sum())
        .join(baseline, on=list(INSTANCE_KEYS))
        .filter(pl.col("expected") > 0)
        .with_columns(
            ((pl.col("observed").clip(lower_bound=0) + 0.5) / (pl.col("expected") + 0.5)).log().alias("l"),
            (1 / (pl.col("observed").clip(lower_bound=0) + 0.5) + 1 / (pl.col("base_units") + 0.5)).alias(
                "pois_var"
            ),
        )
    )


def _t_across_events(per_event: pl.DataFrame, *, min_support: int) -> pl.DataFrame:
    """One-sided t-test of mean log ratio > 0 per hypothesis (see the module docstring)."""
    grouped = (
        per_event.group_by(HYPOTHESIS_KEYS)
        .agg(
            pl.len().alias("support"),
            pl.col("l").mean().alias("mean_l"),
            pl.col("l").var(ddof=1).fill_null(0.0).fill_nan(0.0).alias("var_l"),
            pl.col("pois_var").mean(),
            pl.col("observed").sum().alias("observed_units"),
            pl.col("expected").sum().alias("expected_units"),
        )
        .filter(pl.col("support") >= min_support)
        .sort(HYPOTHESIS_KEYS)
    )
    n = grouped["support"].to_numpy().astype(float)
    mean_l = grouped["mean_l"].to_numpy()
    se = np.sqrt(np.maximum(grouped["var_l"].to_numpy(), grouped["pois_var"].to_numpy()) / n)
    # one event: no spread to estimate, fall back to the normal with the Poisson variance
    df = np.maximum(n - 1, 1)
    crit = np.where(n > 1, stats.t.ppf(0.975, df), stats.norm.ppf(0.975))
    p = np.where(n > 1, stats.t.sf(mean_l / se, df), stats.norm.sf(mean_l / se))
    return grouped.with_columns(
        pl.Series("lift", np.exp(mean_l)),
        pl.Series("ci_low", np.exp(mean_l - crit * se)),
        pl.Series("ci_high", np.exp(mean_l + crit * se)),
        pl.Series("p_value", p),
    )


def score_event_uplift(
    daily: pl.DataFrame, baseline: pl.DataFrame, *, min_support: int, window_starts: tuple[int, ...] = (0,)
) -> pl.DataFrame:
    """Test every (event_type, region, sku) seen in at least ``min_support`` events, once per window.

    ``window_starts`` are offsets from start_date where a tested window begins (it always ends on
    end_date): e.g. (-7, 0) tests "the week before and during" and "during" as separate hypotheses.
    Returns columns event_type, region, sku, window_start_offset_days, lift, ci_low, ci_high, support,
    p_value (one-sided, lift > 1), peak_offset_days (over the whole daily frame), observed_units,
    expected_units.
    """
    tested = [
        _t_across_events(_per_event(daily, baseline, from_offset=w), min_support=min_support).with_columns(
            pl.lit(w, dtype=pl.Int64).alias("window_start_offset_days")
        )
        for w in sorted(set(window_starts))
    ]
    return (
        pl.concat(tested)
        .join(_peak_offsets(daily), on=list(HYPOTHESIS_KEYS), how="left")
        .select(
            *HYPOTHESIS_KEYS,
            "window_start_offset_days",
            "lift",
            "ci_low",
            "ci_high",
            "support",
            "p_value",
            "peak_offset_days",
            "observed_units",
            "expected_units",
        )
    )


def event_uplift_hypotheses(
    sales: pl.LazyFrame, events: pl.LazyFrame, regions: pl.LazyFrame, *, as_of: date, settings: MiningSettings
) -> pl.DataFrame:
    """Every event uplift hypothesis tested, with its statistics (see ``score_event_uplift``).

    Two windows are tested per (event_type, region, sku): the settings' window [start - lead, end]
    (pre-event buying counts) and the event days alone [start, end] (a lift confined to the event is
    not diluted by quiet lead days). Both enter the FDR family, so picking the better one later is paid
    for. ``sales`` is ``features.signals.clean_store_sales`` output; ``regions`` has a ``region`` column
    (the regions an ``ALL`` event reaches).
    """
    windows = (-settings.event_lead_days, 0)
    first = sales.select(pl.col("date").min()).collect().item()
    if first is None:
        empty = pl.DataFrame(schema=dict.fromkeys(INSTANCE_KEYS, pl.String))
        return score_event_uplift(
            empty.with_columns(
                pl.lit(0, pl.Int64).alias("offset"),
                pl.lit(0.0).alias("observed"),
                pl.lit(0.0).alias("expected"),
            ),
            empty.with_columns(pl.lit(0.0).alias("base_units")),
            min_support=settings.min_event_support,
            window_starts=windows,
        )
    instances = usable_instances(events, regions, first=first, as_of=as_of, settings=settings)
    daily, baseline = event_daily_demand(sales, instances, baseline_days=settings.event_baseline_days)
    daily_df, baseline_df = pl.collect_all([daily, baseline])
    return score_event_uplift(
        daily_df, baseline_df, min_support=settings.min_event_support, window_starts=windows
    )
