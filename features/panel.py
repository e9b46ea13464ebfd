"""The daily store x SKU demand panel every demand feature is computed on.

One row per (store_id, sku, date), dense from the pair's first sale to the forecast end, so that a
shift by ``n`` rows within a pair is exactly ``n`` days. Demand is what the shelf would have sold:
returns (units < 0) clip to 0, and stockout days (``on_hand == 0`` and ``units <= 0``) are censored,
i.e. their units are null (unknown), never 0. Days after ``as_of`` carry null units (the future).

``price`` is the actual shelf price, revenue / units on days with a sale, carried forward over days
without one; over the forecast days it is the last price known at ``as_of`` (the store's price plans
are not in the drop), and a never-sold pair gets its regular price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

from features.calendar import add_calendar, add_event_features, calendar_feature_names, event_feature_names
from features.lags import (
    PRICE_MAX_DAYS,
    add_cross_sectional,
    add_dow_means,
    add_online_demand,
    add_own_lags,
    add_own_rolling,
    add_price_features,
    cross_sectional_names,
    dow_mean_names,
    online_daily,
    online_names,
    own_history_names,
    price_feature_names,
)

if TYPE_CHECKING:  # a plain bundle of frames; features never read the lake themselves
    from data_contracts.tables import LakeTables

PAIR = ("store_id", "sku")


def daily_demand(store_sales: pl.LazyFrame, *, as_of: date) -> pl.LazyFrame:
    """Return store_id, sku, date, units (>= 0, null when censored), censored, promo, price (revenue /
    units, null without a sale) for dates <= as_of.

    Rows are summed per (store_id, sku, date) so a hand-made or re-exported frame with split rows
    still yields one day per pair.
    """
    daily = (
        store_sales.filter(pl.col("date") <= as_of)
        .group_by("store_id", "sku", "date")
        .agg(
            pl.col("units").sum().alias("net_units"),
            pl.col("revenue").sum().alias("revenue"),
            pl.col("on_hand").min().alias("on_hand"),
            pl.col("promo").fill_null(False).any().alias("promo"),
        )
    )
    # A stockout hides demand: the shelf was empty and nothing sold, so 0 would be a lie.
    censored = (pl.col("on_hand") == 0) & (pl.col("net_units") <= 0)
    return daily.select(
        "store_id",
        "sku",
        "date",
        pl.when(censored.fill_null(False))
        .then(None)
        .otherwise(pl.col("net_units").clip(lower_bound=0.0))
        .alias("units"),
        censored.fill_null(False).alias("censored"),
        pl.col("promo").cast(pl.Float64),
        pl.when((pl.col("net_units") > 0) & (pl.col("revenue") > 0))
        .then(pl.col("revenue") / pl.col("net_units"))
        .alias("price"),
    )


def pair_spans(
    daily: pl.LazyFrame, assortment: pl.DataFrame, *, as_of: date, stale_days: int
) -> pl.LazyFrame:
    """Return store_id, sku, first_date, end_date: the dates each pair with sales is on the shelf.

    A pair runs to ``as_of`` if the store carries it today (assortment) or sold it in the last
    ``stale_days``; otherwise it was delisted and runs to ``stale_days`` after its last sale, so
    months of "not carried" are not taught to the model as zero demand.
    """
    carried = assortment.lazy().select(*PAIR).unique().with_columns(pl.lit(True).alias("carried"))
    spans = (
        daily.filter(pl.col("units") > 0)
        .group_by(*PAIR)
        .agg(pl.col("date").min().alias("first_date"), pl.col("date").max().alias("last_sale"))
        .join(carried, on=list(PAIR), how="left")
    )
    stale_end = pl.min_horizontal(pl.col("last_sale") + timedelta(days=stale_days), pl.lit(as_of))
    return spans.select(
        *PAIR,
        "first_date",
        pl.when(pl.col("carried").fill_null(False))
        .then(pl.lit(as_of))
        .otherwise(stale_end)
        .alias("end_date"),
    )


def build_panel(
    store_sales: pl.LazyFrame,
    *,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    assortment: pl.DataFrame,
    as_of: date,
    horizon: int = 0,
    pairs: pl.DataFrame | None = None,
    start: date | None = None,
    stale_days: int = 91,
) -> pl.LazyFrame:
    """Return the dense panel: store_id, sku, date, units, censored, promo, price, is_future, region
    (and the store's format), category, regular_price (and subcategory, brand where products has them);
    sorted by store_id, sku, date.

    History rows (<= as_of) cover every pair with a sale. With ``horizon`` > 0 the pairs in ``pairs``
    (store_id, sku) also get rows as_of+1 .. as_of+horizon with null units; a pair never sold there
    (cold start) gets only those future rows. ``start`` drops earlier rows (forecasting needs only the
    lags' reach), keeping each pair's rows contiguous.
    """
    daily = daily_demand(store_sales, as_of=as_of)
    spans = pair_spans(daily, assortment, as_of=as_of, stale_days=stale_days)
    if horizon > 0 and pairs is not None:
        wanted = pairs.lazy().select(*PAIR).unique().with_columns(pl.lit(True).alias("wanted"))
        spans = spans.join(wanted, on=list(PAIR), how="full", coalesce=True).select(
            *PAIR,
            pl.col("first_date").fill_null(as_of + timedelta(days=1)),
            pl.when(pl.col("wanted").fill_null(False))
            .then(pl.lit(as_of + timedelta(days=horizon)))
            .otherwise(pl.col("end_date"))
            .alias("end_date"),
        )
    if start is not None:
        spans = spans.with_columns(pl.max_horizontal("first_date", pl.lit(start)).alias("first_date"))
    grid = (
        spans.filter(pl.col("first_date") <= pl.col("end_date"))
        .select(*PAIR, pl.date_ranges("first_date", "end_date").alias("date"))
        .explode("date")
    )
    future = pl.col("date") > as_of
    panel = grid.join(daily, on=[*PAIR, "date"], how="left").with_columns(
        _units_expr(future),
        pl.col("censored").fill_null(False),
        pl.when(future).then(0.0).otherwise(pl.col("promo").fill_null(0.0)).alias("promo"),
        future.alias("is_future"),
    )
    store_cols = [c for c in ("region", *OPTIONAL_STORE) if c in stores.columns]
    product_cols = [c for c in ("category", "regular_price", *OPTIONAL_PRODUCT) if c in products.columns]
    # last known price over days without a sale and over the forecast days; a promotion's price only on
    # promotion days: carried past its end it reads as a discount without a promotion, which in history
    # marks the unsold days after a promotion, and the model forecast a pair on promotion at as_of at
    # a fifth of its demand (medium demo, 2025-06-02: 3,375 units against 16,226 with the promo cleared)
    last_price = pl.col("price").forward_fill().over(*PAIR, order_by="date")
    last_regular = pl.when(pl.col("promo") == 0).then("price").forward_fill().over(*PAIR, order_by="date")
    price = pl.coalesce("price", pl.when(pl.col("promo") > 0).then(last_price).otherwise(last_regular))
    return (
        panel.with_columns(price)
        .join(stores.lazy().select("store_id", *store_cols), on="store_id", how="left")
        .join(products.lazy().select("sku", *product_cols), on="sku", how="left")
        .with_columns(pl.col("price").fill_null(pl.col("regular_price")))
        .sort(*PAIR, "date")
    )


OPTIONAL_STORE = ("format",)  # store attributes the model takes as categoricals where present
OPTIONAL_PRODUCT = ("subcategory", "brand")


def _units_expr(future: pl.Expr) -> pl.Expr:
    """Units of a panel row: null in the future and on censored days, 0 on an absent shelf day."""
    return (
        pl.when(future)
        .then(None)
        .when(pl.col("censored").fill_null(False))
        .then(None)
        .otherwise(pl.col("units").fill_null(0.0))
        .alias("units")
    )


@dataclass(frozen=True)
class FeatureSpec:
    """Which demand features exist: data (from settings and the events table), not code edits.

    ``horizon`` is the lag floor: every history feature of a row ends at least that many days before
    it, so one model with this spec honestly serves the days 1 .. horizon after the as-of date.
    """

    lags: tuple[int, ...]  # own lags, each >= horizon
    windows: tuple[int, ...]  # rolling windows, all ending `horizon` days back
    horizon: int  # the shortest lag: the farthest day ahead these features can honestly serve
    event_types: tuple[str, ...] = ()
    event_lead_days: int = 7
    stale_days: int = 91
    dow_weeks: tuple[int, ...] = ()  # same-weekday means over this many weeks, ending >= horizon back
    price_window: int = 0  # days of the recent-price mean the price is compared with (0: no price)
    categorical: tuple[str, ...] = ("region", "category")  # panel columns the model takes as levels
    planned_event_types: tuple[str, ...] = ()  # types whose future events are known (holidays, SNAP)

    def __post_init__(self) -> None:
        if not self.windows or any(n < self.horizon for n in self.lags):
            raise ValueError(f"Need windows and lags >= horizon {self.horizon}: {self.lags}, {self.windows}")

    @property
    def reach(self) -> int:
        """Days of history a forecast row's features look back over."""
        dow = 7 * (-(-self.horizon // 7) + max(self.dow_weeks, default=0))
        price = max(self.horizon + self.price_window, PRICE_MAX_DAYS) if self.price_window else 0
        return max([*self.lags, self.horizon + max(self.windows), dow, price])

    def own_history(self) -> list[str]:
        """Return the features a never-sold pair lacks (masked in training to teach cold start)."""
        return own_history_names(lags=self.lags, lag=self.horizon, windows=self.windows) + dow_mean_names(
            lag=self.horizon, weeks=self.dow_weeks
        )

    def event_features(self) -> list[str]:
        """Return the event feature columns (neutralised for the no-event counterfactual)."""
        return event_feature_names(self.event_types)

    def feature_names(self) -> list[str]:
        """Return every model feature column, in the order the model sees them."""
        return [
            *calendar_feature_names(),
            *self.categorical,
            "regular_price",
            "promo",
            *(price_feature_names(lag=self.horizon, window=self.price_window) if self.price_window else []),
            *self.own_history(),
            *cross_sectional_names(lag=self.horizon, windows=self.windows),
            *online_names(lag=self.horizon, windows=self.windows),
            *self.event_features(),
        ]


CATEGORICAL = ("region", "category")


def demand_base(
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    horizon: int = 0,
    pairs: pl.DataFrame | None = None,
    start: date | None = None,
) -> pl.LazyFrame:
    """Return the panel with the features no lag changes (calendar, events); with ``pairs`` and
    ``horizon`` > 0 the rows as_of+1 .. as_of+horizon of those pairs are added (the forecast rows).
    ``add_history_features`` adds the rest; several lag floors can share one base."""
    panel = build_panel(
        tables.store_sales,
        stores=tables.stores,
        products=tables.products,
        assortment=tables.assortment,
        as_of=as_of,
        horizon=horizon if pairs is not None else 0,
        pairs=pairs,
        start=start,
        stale_days=spec.stale_days,
    )
    regions = tables.stores.get_column("region").drop_nulls().unique().sort().to_list()
    return panel.pipe(add_calendar).pipe(
        add_event_features,
        tables.events,
        types=spec.event_types,
        lead_days=spec.event_lead_days,
        as_of=as_of,
        regions=regions,
        planned=spec.planned_event_types,
    )


def add_history_features(
    base: pl.LazyFrame,
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    start: date | None = None,
    also: Sequence[FeatureSpec] = (),
) -> pl.LazyFrame:
    """Return ``base`` (from demand_base) with the history features of ``spec`` (each ending
    ``spec.horizon`` days back), as store_id, sku, date, units, is_future, censored and
    ``spec.feature_names()``; then those of every spec in ``also`` that ``spec`` lacks (other lag
    floors, one horizon block each: every block's columns from one shared panel)."""
    ordered = online_daily(tables.online_orders.filter(pl.col("order_date") <= as_of), tables.postal_regions)
    if start is not None:
        ordered = ordered.filter(pl.col("date") >= start)
    online = ordered.collect()  # small (region x SKU x day), and read once, not once per block
    keys = [*PAIR, "date"]
    base = base.cache() if also else base  # one panel feeds every block's features
    out, done = None, set(keys)
    for one in (spec, *also):
        # each block alone on the shared base, joined on the keys (chaining the blocks' window
        # functions one after the other made polars recompute the earlier ones: CPU doubled per block)
        lf = (
            base.pipe(add_own_lags, lags=one.lags)
            .pipe(add_own_rolling, lag=one.horizon, windows=one.windows)
            .pipe(add_dow_means, lag=one.horizon, weeks=one.dow_weeks)
        )
        if one.price_window:
            lf = lf.pipe(add_price_features, lag=one.horizon, window=one.price_window)
        lf = lf.pipe(add_cross_sectional, lag=one.horizon, windows=one.windows).pipe(
            add_online_demand, online, tables.stores, lag=one.horizon, windows=one.windows
        )
        if out is None:
            out = lf.select(
                list(dict.fromkeys([*keys, "units", "censored", "is_future", *one.feature_names()]))
            )
            done |= set(out.collect_schema().names())
            continue
        new = [n for n in dict.fromkeys(one.feature_names()) if n not in done]
        out = out.join(lf.select(*keys, *new), on=keys, how="left", maintain_order="left")
        done |= set(new)
    assert out is not None
    return out


def demand_features(
    tables: LakeTables,
    spec: FeatureSpec,
    *,
    as_of: date,
    pairs: pl.DataFrame | None = None,
    start: date | None = None,
    also: Sequence[FeatureSpec] = (),
) -> pl.LazyFrame:
    """Return the panel with every feature of ``spec``: store_id, sku, date, units, is_future, censored
    and ``spec.feature_names()`` (then the other columns of the specs in ``also``: shorter lag floors,
    built on the same panel). Uses only facts dated <= as_of (and the events table).

    With ``pairs`` the rows as_of+1 .. as_of+spec.horizon of those pairs are added (the forecast rows).
    """
    base = demand_base(tables, spec, as_of=as_of, horizon=spec.horizon, pairs=pairs, start=start)
    return add_history_features(base, tables, spec, as_of=as_of, start=start, also=also)
