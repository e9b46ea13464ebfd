"""Pure polars pipes behind pattern mining: cleaned daily sales, weekly totals, online demand by region,
the region x SKU x day demand panel the event miner fits, event instances, their window days and
clusters.

Every function takes and returns LazyFrames (reference tables are passed as LazyFrames too, call
``.lazy()`` on a DataFrame); nothing here reads files or collects. Weeks start on Monday
(``date.dt.truncate("1w")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from data_contracts.schemas import CHAIN_WIDE

WEEK = "1w"


def week_of(col: str = "date") -> pl.Expr:
    """Monday of the week of date column ``col``."""
    return pl.col(col).dt.truncate(WEEK)


def clean_store_sales(sales: pl.LazyFrame, stores: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Store sales up to ``as_of`` with the store's region.

    Returns columns date, week, dow (1 = Monday), store_id, region, sku, units (float), censored (bool),
    stockout (bool). ``censored`` marks days that ended with an empty shelf (on_hand == 0): demand was
    at least the units sold, maybe more. ``stockout`` marks the censored days with nothing sold (the
    shelf was empty all day): demand there is unknown, so weekly callers leave those days out of both
    observed and expected demand.
    """
    on_hand = pl.col("on_hand") if "on_hand" in sales.collect_schema().names() else pl.lit(None)
    return (
        sales.filter(pl.col("date") <= as_of)
        .join(stores.select("store_id", "region"), on="store_id", how="inner")
        .select(
            "date",
            week_of("date").alias("week"),
            pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"),
            "store_id",
            "region",
            "sku",
            pl.col("units").cast(pl.Float64).fill_null(0.0),
            (on_hand.cast(pl.Float64) == 0).fill_null(False).alias("censored"),
            ((on_hand.cast(pl.Float64) == 0) & (pl.col("units") <= 0)).fill_null(False).alias("stockout"),
        )
    )


def full_weeks(lf: pl.LazyFrame, *, first: date, as_of: date) -> pl.LazyFrame:
    """Rows of ``lf`` (with a ``week`` column) whose whole week lies in [first, as_of].

    Partial weeks at either end would understate weekly rates, so they are dropped.
    """
    return lf.filter((pl.col("week") >= first) & (pl.col("week") + timedelta(days=6) <= as_of))


def in_periods(lf: pl.LazyFrame, *, first: date, as_of: date, weeks: int) -> pl.LazyFrame:
    """Rows of ``lf`` (with a ``week`` column) in the full weeks of [first, as_of], their ``week`` moved
    to the Monday that starts its period of ``weeks`` weeks (periods counted from the first Monday on
    or after ``first``), with ``weeks``: the period's full weeks (the last may hold fewer)."""
    start = first + timedelta(days=(7 - first.weekday()) % 7)
    last_sunday = as_of - timedelta(days=(as_of.weekday() + 1) % 7)
    n_full = ((last_sunday - start).days + 1) // 7
    span = 7 * weeks
    period = pl.lit(start) + pl.duration(days=(pl.col("week") - pl.lit(start)).dt.total_days() // span * span)
    return (
        full_weeks(lf, first=first, as_of=as_of)
        .with_columns(period.alias("week"))
        .with_columns(
            pl.min_horizontal(pl.lit(weeks), n_full - (pl.col("week") - pl.lit(start)).dt.total_days() // 7)
            .cast(pl.Int64)
            .alias("weeks")
        )
    )


def weekly_store_units(clean_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Units per store, region, SKU and week (stockout days contribute nothing).

    Returns columns store_id, region, sku, week, units.
    """
    return (
        clean_sales.filter(~pl.col("stockout"))
        .group_by("store_id", "region", "sku", "week")
        .agg(pl.col("units").sum())
    )


def carried_weeks(clean_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Every week a store carried a SKU: from the first to the last week the pair shows up in sales.

    A week with no sale inside that span is a zero-demand week, not a week off the shelf. Returns
    columns store_id, region, sku, week.
    """
    return (
        clean_sales.group_by("store_id", "region", "sku")
        .agg(pl.col("week").min().alias("first"), pl.col("week").max().alias("last"))
        .with_columns(pl.date_ranges("first", "last", WEEK).alias("week"))
        .explode("week")
        .select("store_id", "region", "sku", "week")
    )


def online_region_units(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online units per ship-to region, SKU and week, up to ``as_of`` (returns net of return lines).

    Lines whose postal code maps to no region are left out. Returns columns region, sku, week, units.
    """
    return (
        orders.filter(pl.col("order_date") <= as_of)
        .join(
            postal_regions.select(pl.col("postal_code").alias("ship_postal_code"), "region"),
            on="ship_postal_code",
            how="inner",
        )
        .with_columns(week_of("order_date").alias("week"))
        .group_by("region", "sku", "week")
        .agg(pl.col("units").cast(pl.Float64).sum())
    )


def _buyers(orders: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Sale lines up to ``as_of`` with their buyer (the customer, or the order for a guest checkout)
    and week."""
    return orders.filter((pl.col("order_date") <= as_of) & (pl.col("units") > 0)).with_columns(
        pl.coalesce("customer_key", "order_id").alias("buyer"), week_of("order_date").alias("week")
    )


def _region_buyers(
    lines: pl.LazyFrame, postal_regions: pl.LazyFrame, *, period: pl.Expr, also: Sequence[pl.Expr] = ()
) -> pl.LazyFrame:
    """Buyers per ship-to region, SKU and ``period`` (a column of ``lines``, ``_buyers``' sale lines),
    with the ``also`` aggregations."""
    return (
        lines.join(
            postal_regions.select(pl.col("postal_code").alias("ship_postal_code"), "region"),
            on="ship_postal_code",
            how="inner",
        )
        .group_by("region", "sku", period)
        .agg(*also, pl.col("buyer").n_unique().cast(pl.Float64).alias("buyers"))
    )


def online_region_buyers(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online buyers per ship-to region, SKU and week: how many buyers (customers, a guest's order
    each) bought the SKU that week, whatever the units. Returns columns region, sku, week, buyers."""
    return _region_buyers(_buyers(orders, as_of=as_of), postal_regions, period=pl.col("week"))


def online_period_buyers(
    orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, first: date, as_of: date, weeks: int
) -> pl.LazyFrame:
    """Online buyers per ship-to region, SKU and period of ``weeks`` full weeks (``in_periods``): how
    many buyers bought the SKU in the period, each once however many weeks they came back in.
    Returns columns region, sku, week (the period's first Monday), weeks (its full weeks), buyers."""
    lines = in_periods(_buyers(orders, as_of=as_of), first=first, as_of=as_of, weeks=weeks)
    return _region_buyers(lines, postal_regions, period=pl.col("week"), also=[pl.col("weeks").first()])


def buyer_dispersion(
    orders: pl.LazyFrame, *, as_of: date, first: date | None = None, weeks: int = 1
) -> pl.LazyFrame:
    """Per SKU, how lumpy its online demand is: over its buyers, sum x^2 / sum x, for x a buyer's
    units (``units_dispersion``) and the periods the buyer bought it in (``repeat_dispersion``): weeks,
    or with ``first`` the periods of ``weeks`` full weeks of ``in_periods``.

    If buyers come as a Poisson stream and each brings x, the total's variance is sum x^2: the ratio
    times its mean. 1 when every buyer takes one unit once; a SKU that a few wholesale customers
    reorder by the case reads in the hundreds in units, a few in weeks. Sale lines up to ``as_of``
    (returns left out). Returns columns sku, units_dispersion, repeat_dispersion (each >= 1).
    """
    lines = _buyers(orders, as_of=as_of)
    if first is not None:
        lines = in_periods(lines, first=first, as_of=as_of, weeks=weeks)
    lumpy = [
        ((pl.col(x) ** 2).sum() / pl.col(x).sum()).clip(lower_bound=1.0).alias(f"{name}_dispersion")
        for x, name in (("units", "units"), ("periods", "repeat"))
    ]
    return (
        lines.group_by("sku", "buyer")
        .agg(
            pl.col("units").cast(pl.Float64).sum(),
            pl.col("week").n_unique().cast(pl.Float64).alias("periods"),
        )
        .group_by("sku")
        .agg(*lumpy)
    )


def event_instances(events: pl.LazyFrame, regions: pl.LazyFrame, *, lead_days: int) -> pl.LazyFrame:
    """One row per (event_id, region) hit, with ``ALL`` expanded to every region in ``regions``.

    Returns columns event_id, event_type, region, start_date, end_date, window_start
    (start_date - lead_days), chain_wide (the event was listed for ``ALL`` regions).
    """
    everywhere = (
        events.filter(pl.col("region") == CHAIN_WIDE)
        .drop("region")
        .join(regions.select("region").unique(), how="cross")
    )
    named = events.filter(pl.col("region") != CHAIN_WIDE)
    cols = ["event_id", "event_type", "region", "start_date", "end_date"]
    return (
        pl.concat(
            [
                named.select(cols).with_columns(pl.lit(False).alias("chain_wide")),
                everywhere.select(cols).with_columns(pl.lit(True).alias("chain_wide")),
            ]
        )
        .unique(["event_id", "region"], keep="first", maintain_order=True)
        .with_columns((pl.col("start_date") - timedelta(days=lead_days)).alias("window_start"))
    )


def event_window_days(instances: pl.LazyFrame) -> pl.LazyFrame:
    """Every day of every instance's window [window_start, end_date].

    Returns columns event_id, event_type, region, date, dow, offset (days from start_date; negative =
    before the event starts).
    """
    return (
        instances.with_columns(pl.date_ranges("window_start", "end_date", "1d").alias("date"))
        .explode("date")
        .select(
            "event_id",
            "event_type",
            "region",
            "date",
            pl.col("date").dt.weekday().cast(pl.Int8).alias("dow"),
            (pl.col("date") - pl.col("start_date")).dt.total_days().cast(pl.Int64).alias("offset"),
        )
    )


def pair_weights(clean_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Per store x SKU: region, first and last sale date and weight (mean units per uncensored day).

    The weight is how much of its region's demand for the SKU a store takes: a day on which the store
    is out of stock takes its weight out of the region's exposure. Returns columns store_id, region,
    sku, first, last, weight.
    """
    return (
        clean_sales.group_by("store_id", "region", "sku")
        .agg(
            pl.col("date").min().alias("first"),
            pl.col("date").max().alias("last"),
            pl.col("units").filter(~pl.col("censored")).sum().clip(lower_bound=0).alias("units"),
            pl.col("censored").sum().alias("censored_days"),
        )
        .with_columns(
            ((pl.col("last") - pl.col("first")).dt.total_days() + 1 - pl.col("censored_days")).alias("days")
        )
        .select(
            "store_id",
            "region",
            "sku",
            "first",
            "last",
            ((pl.col("units") + 0.5) / (pl.col("days").clip(lower_bound=0) + 1)).alias("weight"),
        )
    )


def daily_online_units(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online units per ship-to region, SKU and order date (net of returns, never below 0).

    Returns columns region, sku, date, units.
    """
    return (
        orders.filter(pl.col("order_date") <= as_of)
        .join(
            postal_regions.select(pl.col("postal_code").alias("ship_postal_code"), "region"),
            on="ship_postal_code",
            how="inner",
        )
        .group_by("region", "sku", pl.col("order_date").alias("date"))
        .agg(pl.col("units").cast(pl.Float64).sum().clip(lower_bound=0))
    )


def daily_online_buyers(orders: pl.LazyFrame, postal_regions: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Online buyers per ship-to region, SKU and order date: customers (a guest checkout's order each)
    with a sale line of the SKU that day, whatever their units. The miner's online demand signal: a
    business that orders 60 of a SKU is one buyer, as a shopper who takes one.

    Returns columns region, sku, date, buyers.
    """
    return _region_buyers(
        _buyers(orders, as_of=as_of), postal_regions, period=pl.col("order_date").alias("date")
    )


def _online_weights(online: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Per region x SKU bought online: first day of online trade in the chain and mean daily units."""
    start = online.select(pl.col("date").min().alias("first"))
    return (
        online.group_by("region", "sku")
        .agg(pl.col("units").sum())
        .filter(pl.col("units") > 0)
        .join(start, how="cross")
        .with_columns(
            pl.lit(as_of).alias("last"),
            (pl.col("units") / ((pl.lit(as_of) - pl.col("first")).dt.total_days() + 1)).alias("weight"),
        )
        .select("region", "sku", "first", "last", "weight")
    )


def daily_panel(
    clean_sales: pl.LazyFrame, online: pl.LazyFrame | None, *, as_of: date
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Region x SKU x day demand panel, and the censored store parts of its rows.

    A row's ``y`` is the units of its uncensored stores plus the region's online units; ``exposure`` is
    the weight of the stores carrying the SKU that day and not out of stock all day, plus the region's
    online weight. A store that sold some units and ended the day with an empty shelf is a censored
    part: its demand was at least what it sold (the second frame: region, sku, date, sold, weight).
    ``square_weight`` is the sum of the squared weights of the stores whose demand the row observes in
    full (carrying the SKU, the shelf not empty at the end of the day), a day without a sales row
    counting as a day with none sold: what the store-day dispersion needs
    (``models.mining.dispersion``).
    Returns (panel with columns region, sku, date, y, exposure, square_weight; censored parts).
    """
    weights = pair_weights(clean_sales)
    spans = [weights.select("region", "sku", "first", "last", "weight", pl.lit(True).alias("store"))]
    if online is not None:
        spans.append(_online_weights(online, as_of=as_of).with_columns(pl.lit(False).alias("store")))
    span = pl.concat(spans)
    square = pl.col("weight").pow(2).filter(pl.col("store"))
    starts = span.group_by("region", "sku", pl.col("first").alias("date")).agg(
        pl.col("weight").sum().alias("up"), square.sum().alias("up2")
    )
    ends = span.group_by("region", "sku", (pl.col("last") + timedelta(days=1)).alias("date")).agg(
        pl.col("weight").sum().alias("down"), square.sum().alias("down2")
    )
    flagged = clean_sales.join(weights.select("store_id", "sku", "weight"), on=["store_id", "sku"])
    out_all_day = (
        flagged.filter(pl.col("censored"))
        .group_by("region", "sku", "date")
        .agg(
            pl.col("weight").filter(pl.col("units") <= 0).sum().alias("out"),
            pl.col("weight").pow(2).sum().alias("out2"),
        )
    )
    store_units = (
        clean_sales.filter(~pl.col("censored"))
        .group_by("region", "sku", "date")
        .agg(pl.col("units").sum().clip(lower_bound=0).alias("store_units"))
    )
    grid = (
        span.group_by("region", "sku")
        .agg(pl.col("first").min())
        .with_columns(pl.date_ranges("first", pl.lit(as_of), "1d").alias("date"))
        .explode("date")
        .select("region", "sku", "date")
    )
    keys = ["region", "sku", "date"]
    panel = (
        grid.join(starts, on=keys, how="left")
        .join(ends, on=keys, how="left")
        .join(out_all_day, on=keys, how="left")
        .join(store_units, on=keys, how="left")
        .sort(keys)
        .with_columns(
            (pl.col(f"up{i}").fill_null(0.0) - pl.col(f"down{i}").fill_null(0.0))
            .cum_sum()
            .over("region", "sku")
            .alias(f"w{i}")
            for i in ("", "2")
        )
        .with_columns(
            (pl.col("w") - pl.col("out").fill_null(0.0)).alias("exposure"),
            (pl.col("w2") - pl.col("out2").fill_null(0.0)).clip(lower_bound=0.0).alias("square_weight"),
        )
    )
    if online is not None:
        panel = panel.join(online.rename({"units": "online_units"}), on=keys, how="left")
    else:
        panel = panel.with_columns(pl.lit(None, pl.Float64).alias("online_units"))
    panel = panel.select(
        *keys,
        (pl.col("store_units").fill_null(0.0) + pl.col("online_units").fill_null(0.0)).alias("y"),
        "exposure",
        "square_weight",
    ).filter(pl.col("exposure") > 1e-9)
    parts = flagged.filter(pl.col("censored") & (pl.col("units") > 0)).select(
        *keys, pl.col("units").alias("sold"), "weight"
    )
    return panel, parts


PHASES = ("during", "lead", "after")  # a day's phase; where windows overlap, the first one wins


def promo_shares(
    promo: pl.LazyFrame, clean_sales: pl.LazyFrame, panel: pl.LazyFrame, *, as_of: date
) -> pl.LazyFrame:
    """``panel`` (``daily_panel``) with ``promo_share``: the part of each row's
    exposure in stores that had the SKU on promotion that day (0 .. 1; the online part counts as not
    on promotion, so a store-only promotion of a region with online orders reads below 1).

    ``promo`` has store_id, sku, date, promo (store sales as dropped); stores' weights as in the panel
    (``pair_weights``). A promotion may be regional or chain-wide: the counterfactual
    learns one effect per SKU and promo state from every region's promoted days.
    """
    weights = pair_weights(clean_sales).select("store_id", "sku", "region", "weight")
    flagged = (
        promo.filter((pl.col("date") <= as_of) & pl.col("promo").fill_null(False))
        .select("store_id", "sku", "date")
        .unique()
        .join(weights, on=["store_id", "sku"])
        .group_by("region", "sku", "date")
        .agg(pl.col("weight").sum().alias("promo_weight"))
    )
    share = (pl.col("promo_weight").fill_null(0.0) / pl.col("exposure")).clip(0.0, 1.0)
    return (
        panel.join(flagged, on=["region", "sku", "date"], how="left")
        .with_columns(share.alias("promo_share"))
        .drop("promo_weight")
    )


def event_days(instances: pl.LazyFrame, *, cluster_gap_days: int, after_days: int = 0) -> pl.LazyFrame:
    """Each day inside a window of an event type in a region, with its offset, phase and cluster.

    ``instances`` is ``event_instances`` output (with chain_wide). A window runs from window_start to
    end_date (phases ``lead`` before start_date, ``during`` from it), followed by ``after_days`` days
    of wake (phase ``after``: the days right after an event are not a normal baseline either). Where
    windows of one type overlap, a day belongs to the event it falls during, else to the nearest
    event's lead, else to a wake. Events of one type in one region whose days lie at most
    ``cluster_gap_days`` apart (start after the previous end; lead days do not count) form one cluster
    (they share weather, news and stock, so they are one independent observation); the cluster is
    named by its first window day. Returns columns event_type, region, date,
    offset (from start_date), phase, cluster (date), chain_wide.
    """
    ordered = instances.sort("event_type", "region", "start_date")
    prev_end = pl.col("end_date").cum_max().shift(1).over("event_type", "region")
    gap = (pl.col("start_date") - prev_end).dt.total_days()
    clusters = ordered.with_columns(
        (gap.fill_null(cluster_gap_days + 1) > cluster_gap_days)
        .cast(pl.Int32)
        .cum_sum()
        .over("event_type", "region")
        .alias("run")
    ).with_columns(pl.col("window_start").min().over("event_type", "region", "run").alias("cluster"))
    phase = (
        pl.when(pl.col("date") < pl.col("start_date"))
        .then(pl.lit("lead"))
        .when(pl.col("date") <= pl.col("end_date"))
        .then(pl.lit("during"))
        .otherwise(pl.lit("after"))
    )
    last = pl.col("end_date") + pl.duration(days=after_days)
    return (
        clusters.with_columns(pl.date_ranges("window_start", last, "1d").alias("date"))
        .explode("date")
        .with_columns(
            (pl.col("date") - pl.col("start_date")).dt.total_days().cast(pl.Int32).alias("offset"),
            phase.alias("phase"),
        )
        .sort(
            "event_type",
            "region",
            "date",
            pl.col("phase").replace_strict(list(PHASES), list(range(len(PHASES)))),
            pl.col("offset").abs(),
        )
        .unique(["event_type", "region", "date"], keep="first", maintain_order=True)
        .select("event_type", "region", "date", "offset", "phase", "cluster", "chain_wide")
    )
