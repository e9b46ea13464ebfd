"""Lagged demand features: the pair's own history and cross-sectional signals that exist without it.

Every feature of a row dated ``d`` ends at ``d - lag`` with ``lag >= horizon`` (direct forecasting),
so the same column is honest on a training row and on any forecast day up to the horizon, and the
forecast never feeds on its own predictions. The panel must come from ``features.panel.build_panel``
(dense per pair, null units on censored and future days).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from features.naming import feature_name

_PAIR = ("store_id", "sku")


def _by_pair(expr: pl.Expr) -> pl.Expr:
    """``expr`` evaluated along each pair's days (row n back = n days back on a dense panel)."""
    return expr.over(*_PAIR, order_by="date")


def own_history_names(*, lags: Sequence[int], lag: int, windows: Sequence[int]) -> list[str]:
    """Return the own-history feature columns: the ones that are null for a never-sold pair."""
    return [feature_name("units", lag=n) for n in lags] + [
        feature_name("units_mean", lag=lag, window=w) for w in windows
    ]


def add_own_lags(lf: pl.LazyFrame, *, lags: Sequence[int]) -> pl.LazyFrame:
    """Return ``lf`` with units ``n`` days earlier for each n in ``lags`` (null before the first sale)."""
    return lf.with_columns(
        _by_pair(pl.col("units").shift(n)).alias(feature_name("units", lag=n)) for n in lags
    )


def add_own_rolling(lf: pl.LazyFrame, *, lag: int, windows: Sequence[int]) -> pl.LazyFrame:
    """Return ``lf`` with the pair's mean units per uncensored day over each window ending ``lag`` days
    back, plus helper columns ``_own_sum_w`` / ``_own_days_w`` (0 without history) used to leave the
    pair out of the cross-sectional rates."""
    sums = [
        _by_pair(pl.col("units").shift(lag).rolling_sum(w, min_samples=1))
        .fill_null(0.0)
        .alias(f"_own_sum_{w}")
        for w in windows
    ]
    days = [
        _by_pair(pl.col("units").is_not_null().cast(pl.Float64).shift(lag).rolling_sum(w, min_samples=1))
        .fill_null(0.0)
        .alias(f"_own_days_{w}")
        for w in windows
    ]
    means = [
        _ratio(pl.col(f"_own_sum_{w}"), pl.col(f"_own_days_{w}")).alias(
            feature_name("units_mean", lag=lag, window=w)
        )
        for w in windows
    ]
    return lf.with_columns(*sums, *days).with_columns(means)


def dow_mean_names(*, lag: int, weeks: Sequence[int]) -> list[str]:
    """Return the same-weekday mean columns add_dow_means makes, in order."""
    return [feature_name("units_dow_mean", lag=_weeks_back(lag) * 7, window=7 * w) for w in weeks]


def _weeks_back(lag: int) -> int:
    """Whole weeks back to the latest same weekday at least ``lag`` days before a row."""
    return -(-lag // 7)


def add_dow_means(lf: pl.LazyFrame, *, lag: int, weeks: Sequence[int]) -> pl.LazyFrame:
    """Return ``lf`` with the pair's mean units on the row's weekday over the last ``w`` weeks for each
    w in ``weeks``, the latest of those days at least ``lag`` days back (censored days left out).

    On a dense panel a pair's same-weekday days are consecutive rows of its (pair, weekday) group, so a
    shift by k rows there is k weeks.
    """
    if not weeks:
        return lf
    k = _weeks_back(lag)
    by = pl.col("date").dt.weekday()
    return lf.with_columns(
        pl.col("units").shift(k).rolling_mean(w, min_samples=1).over(*_PAIR, by, order_by="date").alias(name)
        for w, name in zip(weeks, dow_mean_names(lag=lag, weeks=weeks), strict=True)
    )


PRICE_MAX_DAYS = 365  # the price's recent high is taken over a year (a forecast row's reach covers it)


def price_feature_names(*, lag: int, window: int) -> list[str]:
    """Return the price feature columns add_price_features makes, in order."""
    return [
        "price_ratio_regular",
        "price_discount",
        feature_name("price_ratio_mean", lag=lag, window=window),
        "price_ratio_max",
    ]


def add_price_features(lf: pl.LazyFrame, *, lag: int, window: int) -> pl.LazyFrame:
    """Return ``lf`` with the shelf price (panel column ``price``: actual, last known over the forecast
    days) relative to the regular price, its discount depth (1 - price / regular, >= 0), relative to
    the pair's mean price over ``window`` days ending ``lag`` days back (a fresh price change), and
    relative to the highest price of the pair over the last PRICE_MAX_DAYS (M5's normalised price)."""
    recent = _by_pair(pl.col("price").shift(lag).rolling_mean(window, min_samples=1))
    ratio_regular = _ratio(pl.col("price"), pl.col("regular_price"))
    names = price_feature_names(lag=lag, window=window)
    return lf.with_columns(
        ratio_regular.alias(names[0]),
        (1.0 - ratio_regular).clip(lower_bound=0.0).alias(names[1]),
        _ratio(pl.col("price"), recent).alias(names[2]),
        _ratio(pl.col("price"), _by_pair(pl.col("price").rolling_max(PRICE_MAX_DAYS, min_samples=1))).alias(
            names[3]
        ),
    )


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den, null where den is not positive (no evidence is not zero demand)."""
    return pl.when(den > 0).then(num / den).otherwise(None)


def dense_daily(daily: pl.LazyFrame, keys: Sequence[str]) -> pl.LazyFrame:
    """Return ``daily`` (keys, date, _u, _d) with every day between each key's first and last date, the
    missing ones at zero, so a row shift is a day shift even where delisted pairs leave gaps."""
    keys = list(keys)
    grid = (
        daily.group_by(keys)
        .agg(pl.col("date").min().alias("_lo"), pl.col("date").max().alias("_hi"))
        .select(*keys, pl.date_ranges("_lo", "_hi").alias("date"))
        .explode("date")
    )
    return grid.join(daily, on=[*keys, "date"], how="left").with_columns(pl.col("_u", "_d").fill_null(0.0))


def _level_window_sums(
    lf: pl.LazyFrame, keys: Sequence[str], *, lag: int, windows: Sequence[int], prefix: str
) -> pl.LazyFrame:
    """Return keys, date and, per window, the units sum and uncensored row-days of the level over the
    window ending ``lag`` days before date (columns ``{prefix}_sum_{w}``, ``{prefix}_days_{w}``).

    The level's daily totals are made dense between its first and last date first, so a row shift is
    a day shift even where delisted pairs leave gaps.
    """
    keys = list(keys)
    daily = lf.group_by(*keys, "date").agg(
        pl.col("units").sum().alias("_u"), pl.col("units").is_not_null().sum().cast(pl.Float64).alias("_d")
    )
    dense = dense_daily(daily, keys)

    def roll(col: str, w: int) -> pl.Expr:
        return pl.col(col).shift(lag).rolling_sum(w, min_samples=1).over(keys, order_by="date").fill_null(0.0)

    return dense.select(
        *keys,
        "date",
        *(roll("_u", w).alias(f"{prefix}_sum_{w}") for w in windows),
        *(roll("_d", w).alias(f"{prefix}_days_{w}") for w in windows),
    )


def cross_sectional_names(*, lag: int, windows: Sequence[int]) -> list[str]:
    """Return the cross-sectional feature columns add_cross_sectional makes, in order."""
    wide = max(windows)
    return (
        [feature_name("sku_chain_rate", lag=lag, window=w) for w in windows]
        + [feature_name("sku_region_rate", lag=lag, window=w) for w in windows]
        + [
            feature_name("store_rate", lag=lag, window=wide),
            feature_name("store_index", lag=lag, window=wide),
        ]
    )


def add_cross_sectional(lf: pl.LazyFrame, *, lag: int, windows: Sequence[int]) -> pl.LazyFrame:
    """Return ``lf`` with signals that exist even for a pair with no history of its own.

    ``sku_chain_rate`` / ``sku_region_rate``: the SKU's mean units per carrying store-day in the other
    stores of the chain / of the row's region (leave-one-out, so a training row does not see its own
    history through them and a masked row looks exactly like a real cold start). ``store_rate``: the
    store's mean units per carried SKU-day; ``store_index``: that over the chain's (its volume scale).
    Needs ``add_own_rolling`` first (its helper columns), and drops them.
    """
    wide = max(windows)
    lf = lf.cache()  # one panel feeds four aggregates and the join: compute it once
    chain = _level_window_sums(lf, ["sku"], lag=lag, windows=windows, prefix="_chain")
    region = _level_window_sums(lf, ["region", "sku"], lag=lag, windows=windows, prefix="_region")
    store = _level_window_sums(lf, ["store_id"], lag=lag, windows=[wide], prefix="_store")
    total = _level_window_sums(
        lf.with_columns(pl.lit(0).alias("_all")), ["_all"], lag=lag, windows=[wide], prefix="_total"
    )
    out = (
        lf.join(chain, on=["sku", "date"], how="left")
        .join(region, on=["region", "sku", "date"], how="left")
        .join(store, on=["store_id", "date"], how="left")
        .join(total.drop("_all"), on="date", how="left")
    )

    def loo(level: str, w: int) -> pl.Expr:
        own_sum, own_days = pl.col(f"_own_sum_{w}"), pl.col(f"_own_days_{w}")
        return _ratio(pl.col(f"{level}_sum_{w}") - own_sum, pl.col(f"{level}_days_{w}") - own_days)

    store_rate = _ratio(pl.col(f"_store_sum_{wide}"), pl.col(f"_store_days_{wide}"))
    total_rate = _ratio(pl.col(f"_total_sum_{wide}"), pl.col(f"_total_days_{wide}"))
    names = cross_sectional_names(lag=lag, windows=windows)
    exprs = [loo("_chain", w) for w in windows] + [loo("_region", w) for w in windows]
    exprs += [store_rate, store_rate / total_rate]
    helpers = [c for c in out.collect_schema().names() if c.startswith("_")]
    return out.with_columns(e.alias(n) for e, n in zip(exprs, names, strict=True)).drop(helpers)


def online_names(*, lag: int, windows: Sequence[int]) -> list[str]:
    """Return the online-demand feature columns add_online_demand makes, in order."""
    return [feature_name("online_units", lag=lag, window=w) for w in windows]


def online_daily(online_orders: pl.LazyFrame, postal_regions: pl.DataFrame) -> pl.LazyFrame:
    """Return region, sku, date, units: online units ordered per day, by the ship-to region.

    Only sale lines (units > 0) count: a cancellation says nothing about where demand is. Lines whose
    postal code maps to no region are left out (ingest reports their share).
    """
    regions = postal_regions.lazy().select(pl.col("postal_code").alias("ship_postal_code"), "region")
    return (
        online_orders.filter(pl.col("units") > 0)
        .join(regions, on="ship_postal_code", how="inner")
        .group_by("region", "sku", pl.col("order_date").alias("date"))
        .agg(pl.col("units").sum())
    )


def add_online_demand(
    lf: pl.LazyFrame,
    online: pl.LazyFrame | pl.DataFrame,
    stores: pl.DataFrame,
    *,
    lag: int,
    windows: Sequence[int],
) -> pl.LazyFrame:
    """Return ``lf`` with the region's online units of the SKU per day and per store of the region,
    over each window ending ``lag`` days back (0 where none were ordered; ``online`` as from
    ``online_daily``, already cut at the as-of date by the caller). A collected ``online`` without
    rows (a chain that sells no online) gives the zeros without the window sums."""
    n_stores = stores.group_by("region").agg(pl.len().cast(pl.Float64).alias("_n_stores")).lazy()
    names = online_names(lag=lag, windows=windows)
    if isinstance(online, pl.DataFrame) and online.height == 0:  # every window sums to 0
        zeros = lf.join(n_stores, on="region", how="left", maintain_order="left")
        return zeros.with_columns((pl.lit(0.0) / pl.col("_n_stores")).alias(n) for n in names).drop(
            "_n_stores"
        )
    lf = lf.cache()  # feeds the key set and the join: compute it once
    keys = lf.select("region", "sku", "date").unique().with_columns(pl.lit(0.0).alias("units"))
    both = pl.concat([online.lazy().select("region", "sku", "date", pl.col("units").cast(pl.Float64)), keys])
    both = both.join(keys.select("region", "sku").unique(), on=["region", "sku"], how="semi")
    sums = _level_window_sums(both, ["region", "sku"], lag=lag, windows=windows, prefix="_online")
    out = lf.join(sums, on=["region", "sku", "date"], how="left").join(n_stores, on="region", how="left")
    exprs = (pl.col(f"_online_sum_{w}").fill_null(0.0) / w / pl.col("_n_stores") for w in windows)
    helpers = [f"_online_{k}_{w}" for k in ("sum", "days") for w in windows] + ["_n_stores"]
    return out.with_columns(e.alias(n) for e, n in zip(exprs, names, strict=True)).drop(helpers)
