"""Order-ready pre-stock plans: how many units each store orders, and by when, for an event.

For every event (listed upcoming, or one a planner asks about), every significant event_uplift pattern
of its type in its region (lift > 1, q <= fdr_alpha; ``ALL`` patterns and events reach every region) and
every store of the region that carries or is advised to carry the SKU:

* window: from the day the pattern's lift was measured from (``window_start_offset_days``, else
  ``lead_days`` before the start) to the event's end_date;
* baseline_units: the forecast over the window's days (its mean day beyond the forecast's horizon);
* extra_units = baseline x (lift - 1), with the lift capped at ``prestock_max_lift``;
* buffer = baseline x (lift at ``service_level`` - lift): the lift's quantile from its 95% interval,
  read as a log-normal spread, so an uncertain lift gets more buffer;
* stock on hand: where ``on_hand`` is known, the last count minus the forecast demand until the window
  opens is the stock expected on hand; what exceeds the window's own baseline (which regular
  replenishment covers) is netted off the extra units;
* order_units: extra + buffer - that surplus, rounded up to whole units, or whole cases where
  products.csv has ``case_pack``; never negative;
* stock_by: the earlier of the window's first day and the peak day, less ``lead_time_days``; never before
  the day after as_of.

Rows are sorted by stock_by, so the first line is the first order to place.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from scipy import stats

from data_contracts.outputs import PRESTOCK_COLUMNS, conform
from models.advice.reasons import units
from models.advice.settings import AssortmentSettings
from models.demand import NO_EVENT

ALL_REGIONS = "ALL"  # events.csv: an event hitting every region
EVENT_COLUMNS = ("event_id", "event_type", "name", "region", "start_date", "end_date")


def significant_event_patterns(patterns: pl.DataFrame, *, fdr_alpha: float = 0.05) -> pl.DataFrame:
    """Return (event_type, region, sku, lift, ci_low, ci_high, support, peak_offset_days,
    window_start_offset_days): the event_uplift patterns that raise demand (lift > 1) and pass the
    false-discovery filter (a null q_value counts as passed: patterns.parquet holds only those)."""
    offset = (
        pl.col("window_start_offset_days")
        if "window_start_offset_days" in patterns.columns
        else pl.lit(None, pl.Int64)
    )
    return (
        patterns.filter(
            (pl.col("kind") == "event_uplift")
            & pl.col("event_type").is_not_null()
            & (pl.col("lift") > 1.0)
            & (pl.col("q_value").is_null() | (pl.col("q_value") <= fdr_alpha))
        )
        .select(
            "event_type",
            "region",
            "sku",
            "lift",
            "ci_low",
            "ci_high",
            "support",
            "peak_offset_days",
            window_start_offset_days=offset.cast(pl.Int64),
        )  # fmt: skip
        .sort("lift", descending=True)
        .unique(["event_type", "region", "sku"], keep="first", maintain_order=True)
    )


def expand_regions(frame: pl.DataFrame, regions: pl.Series) -> pl.DataFrame:
    """Return ``frame`` with each row of region ALL repeated once for every region in ``regions``."""
    chain_wide = pl.col("region") == ALL_REGIONS
    every = pl.DataFrame({"_region": regions.unique().sort()})
    spread = frame.filter(chain_wide).join(every, how="cross").with_columns(region=pl.col("_region"))
    return pl.concat([frame.filter(~chain_wide), spread.drop("_region")]).unique(maintain_order=True)


def latest_on_hand(store_sales: pl.LazyFrame, *, as_of: date, days: int = 14) -> pl.DataFrame:
    """Return (store_id, sku, on_hand, on_hand_date): each pair's last end-of-day stock count within the
    ``days`` up to as_of (pairs without a count are absent)."""
    return (
        store_sales.filter(
            pl.col("date").is_between(pl.lit(as_of - timedelta(days=days - 1)), pl.lit(as_of))
            & pl.col("on_hand").is_not_null()
        )
        .group_by("store_id", "sku")
        .agg(
            on_hand=pl.col("on_hand").sort_by("date").last().cast(pl.Float64),
            on_hand_date=pl.col("date").max(),
        )
        .collect()
    )


def _demand_between(rows: pl.DataFrame, forecast: pl.DataFrame, lo: str, hi: str, name: str) -> pl.DataFrame:
    """Add column ``name``: forecast units of each row's store x SKU over days lo..hi inclusive (days
    beyond the forecast's reach count at its mean day; an empty range is 0)."""
    keys = ["_row", "store_id", "sku"]
    days = ((pl.col(hi) - pl.col(lo)).dt.total_days() + 1).clip(lower_bound=0)
    covered = (
        rows.select(*keys, lo, hi)
        .join(forecast.select("store_id", "sku", "date", "units"), on=["store_id", "sku"])
        .filter(pl.col("date").is_between(pl.col(lo), pl.col(hi)))
        .group_by("_row")
        .agg(_sum=pl.col("units").clip(lower_bound=0).sum(), _n=pl.len())
    )
    return (
        rows.join(covered, on="_row", how="left")
        .with_columns(
            (
                pl.col("_sum").fill_null(0.0)
                + pl.col("daily_units") * (days - pl.col("_n").fill_null(0)).clip(lower_bound=0)
            ).alias(name)
        )
        .drop("_sum", "_n")
    )


def _quantities(rows: pl.DataFrame, s: AssortmentSettings) -> pl.DataFrame:
    """Add extra_units, buffer_units, surplus_units and order_units (see the module docstring)."""
    z = float(stats.norm.ppf(s.service_level))
    sigma = (pl.col("ci_high").log() - pl.col("ci_low").log()) / (2 * 1.959964)
    lift = pl.col("lift").clip(upper_bound=s.prestock_max_lift)
    lift_sl = (pl.col("lift") * (z * sigma.fill_null(0.0).fill_nan(0.0)).exp()).clip(
        lower_bound=lift, upper_bound=s.prestock_max_lift
    )
    surplus = (pl.col("expected_on_hand") - pl.col("baseline_units")).clip(lower_bound=0.0).fill_null(0.0)
    rows = rows.with_columns(
        extra_units=pl.col("baseline_units") * (lift - 1),
        buffer_units=pl.col("baseline_units") * (lift_sl - lift),
        surplus_units=surplus,
    )
    need = (pl.col("extra_units") + pl.col("buffer_units") - pl.col("surplus_units")).clip(lower_bound=0.0)
    case = pl.col("case_pack").fill_null(1).clip(lower_bound=1).cast(pl.Float64)
    # a hair below an integer is that integer (float noise must not order one unit more)
    cases = ((need / case) - 1e-9).ceil().clip(lower_bound=0.0)
    return rows.with_columns(order_units=(cases * case).cast(pl.Int64), cases=cases.cast(pl.Int64))


def _reason(r: dict) -> str:
    """One sentence per line, quoting the row's own numbers once each."""
    words = r["event_type"].replace("_", " ")
    peak = ""
    if r["peak_offset_days"] is not None and r["peak_offset_days"] < 0:
        peak = f", peaking {-r['peak_offset_days']} days before the start"
    ci = ""
    if r["ci_low"] is not None and r["ci_high"] is not None:
        ci = f" (95% CI {r['ci_low']:.1f}-{r['ci_high']:.1f}x)"
    support = f"{r['support']} past" if r["support"] is not None else "past"
    on_hand = ""
    if r["expected_on_hand"] is not None:
        spare = units(r["surplus_units"]) if r["surplus_units"] > 0 else "nothing"
        on_hand = f", less {spare} on hand beyond normal needs"
    cases = f" ({r['cases']} cases of {r['case_pack']})" if r["case_pack"] else ""
    event = f"A {words}" if r["event_name"] == r["event_type"] else f"{r['event_name']} ({words})"
    return (
        f"{event} in {r['region']}, {r['start_date']} to {r['end_date']}: around "
        f"{support} {words} events this item sold {r['lift']:.1f}x normal{ci}{peak}. For "
        f"{r['window_start']} to {r['window_end']} expect {units(r['baseline_units'])} units without "
        f"the event; stock {units(r['extra_units'])} extra + {units(r['buffer_units'])} buffer "
        f"({r['service_level']:.0%} service level){on_hand}: order {r['order_units']}{cases} "
        f"by {r['stock_by']}."
    )


def plan_events(
    events: pl.DataFrame,
    patterns: pl.DataFrame,
    forecast: pl.DataFrame,
    pairs: pl.DataFrame,
    products: pl.DataFrame,
    *,
    as_of: date,
    settings: AssortmentSettings,
    on_hand: pl.DataFrame | None = None,
    lead_days: int = 7,
    fdr_alpha: float = 0.05,
) -> pl.DataFrame:
    """Return the order-ready plan (PRESTOCK_COLUMNS, then event_id, the product's name, buffer_units,
    expected_on_hand, case_pack) for ``events`` (EVENT_COLUMNS; region ALL = every region of ``pairs``),
    one row per event x store x SKU with a significant uplift of the event's type in the store's region
    and the SKU in ``pairs`` (store_id, region, sku: carried or advised). Sorted by stock_by.

    The baseline is demand without events: ``forecast``'s ``units_no_event`` where the demand model gave
    one (its ``units`` already hold the known events' uplift, which the lift would count twice)."""
    if NO_EVENT in forecast.columns:
        forecast = forecast.with_columns(pl.col(NO_EVENT).alias("units"))
    regions = pairs["region"]
    sig = expand_regions(significant_event_patterns(patterns, fdr_alpha=fdr_alpha), regions)
    events = expand_regions(events.select(EVENT_COLUMNS), regions)
    daily = forecast.group_by("store_id", "sku").agg(
        daily_units=pl.col("units").clip(lower_bound=0.0).mean().cast(pl.Float64)
    )
    product_cols = [c for c in ("sku", "name", "case_pack") if c in products.columns]
    lead = (-pl.col("window_start_offset_days")).fill_null(lead_days)
    rows = (
        events.rename({"name": "event_name"})
        .join(sig, on=["event_type", "region"])
        .join(pairs.select("store_id", "region", "sku").unique(), on=["region", "sku"])
        .join(daily, on=["store_id", "sku"], how="left")
        .join(products.select(product_cols), on="sku", how="left")
        .with_columns(
            pl.col("daily_units").fill_null(0.0),
            event_name=pl.coalesce("event_name", pl.col("event_type")),
            window_start=pl.col("start_date") - pl.duration(days=lead),
            window_end=pl.col("end_date"),
            peak=pl.col("start_date") + pl.duration(days=pl.col("peak_offset_days").fill_null(0)),
            _row=pl.int_range(pl.len()),
        )
    )
    rows = rows.with_columns(
        pl.lit(None, dtype).alias(c) for c, dtype in (("name", pl.String), ("case_pack", pl.Int64))
        if c not in rows.columns
    )  # fmt: skip
    tomorrow = as_of + timedelta(days=1)
    rows = rows.with_columns(
        stock_by=pl.max_horizontal(
            pl.min_horizontal("window_start", "peak") - pl.duration(days=settings.lead_time_days),
            pl.lit(tomorrow),
        ),
        _before=pl.col("window_start") - pl.duration(days=1),
    )
    rows = _demand_between(rows, forecast, "window_start", "window_end", "baseline_units")
    rows = _with_on_hand(rows, forecast, on_hand)
    plan = (
        _quantities(rows.filter(pl.col("baseline_units") > 0), settings)
        .with_columns(service_level=pl.lit(settings.service_level))
        .sort(
            # a total order (ties broken down to the event), so the same inputs give the same file
            ["stock_by", "region", "store_id", "extra_units", "sku", "event_type", "event_id"],
            descending=[False, False, False, True, False, False, False],
        )  # fmt: skip
    )
    plan = plan.with_columns(
        reason=pl.Series([_reason(r) for r in plan.iter_rows(named=True)], dtype=pl.String)
    )
    extra = ["event_id", "name", "buffer_units", "expected_on_hand", "case_pack"]
    return conform(plan, PRESTOCK_COLUMNS).select(*PRESTOCK_COLUMNS.names(), *extra)


def _with_on_hand(rows: pl.DataFrame, forecast: pl.DataFrame, on_hand: pl.DataFrame | None) -> pl.DataFrame:
    """Add expected_on_hand: the last stock count less forecast demand until the window opens (null
    where no count is known)."""
    if on_hand is None or on_hand.height == 0:
        return rows.with_columns(expected_on_hand=pl.lit(None, pl.Float64))
    rows = rows.join(on_hand, on=["store_id", "sku"], how="left").with_columns(
        _after=pl.col("on_hand_date") + pl.duration(days=1)
    )
    rows = _demand_between(rows, forecast, "_after", "_before", "_used")
    return rows.with_columns(
        expected_on_hand=(pl.col("on_hand") - pl.col("_used")).clip(lower_bound=0.0)
    ).drop("_after", "_used", "on_hand", "on_hand_date")


def upcoming_events(events: pl.DataFrame, *, as_of: date) -> pl.DataFrame:
    """Return the listed events that start after as_of (EVENT_COLUMNS)."""
    return events.filter(pl.col("start_date") > as_of).select(EVENT_COLUMNS)


def hypothetical_event(
    event_type: str, region: str, start: date, end: date, name: str | None
) -> pl.DataFrame:
    """Return one EVENT_COLUMNS row for an event a planner asks about (name: the type when not given)."""
    return pl.DataFrame(
        {
            "event_id": [f"{event_type}-{region}-{start.isoformat()}"],
            "event_type": [event_type],
            "name": [name or event_type],
            "region": [region],
            "start_date": [start],
            "end_date": [end],
        },
        schema={
            "event_id": pl.String,
            "event_type": pl.String,
            "name": pl.String,
            "region": pl.String,
            "start_date": pl.Date,
            "end_date": pl.Date,
        },  # fmt: skip
    )
