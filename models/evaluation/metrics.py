"""Forecast accuracy per backtest fold, model and aggregation level (M5-style scaled errors).

Definitions (y actual, f forecast, over every day and series of a level in a fold):

- wape: sum |y - f| / sum y
- mae: mean |y - f| per series-day
- bias: (sum f - sum y) / sum y; positive = over-forecast
- rmsse: per series, sqrt(mean((y - f)^2) / scale), scale = the mean squared one-step naive error
  (y_t - y_{t-1})^2 of that series' history up to the cutoff; averaged over the level's series.
  A series with a flat history (scale 0) has no RMSSE and is left out of the mean.
- wrmsse (total level only): M5's weighted RMSSE, over store x SKU series, weights = each series'
  revenue in the 28 days up to the cutoff.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from data_contracts.outputs import FORECAST_METRICS_COLUMNS
from data_contracts.tables import LakeTables
from features.panel import PAIR, build_panel

LEVELS: dict[str, tuple[str, ...]] = {
    "total": ("_all",),
    "region": ("region",),
    "category": ("category",),
    "store": ("store_id",),
}
KEY_COLUMNS = ("cutoff", *PAIR, "date", "y")
INTERVAL_COLUMNS = ("p10", "p90")  # the main model's interval: kept beside the forecasts, not a model
WEIGHT_DAYS = 28  # revenue window behind the WRMSSE weights
METRIC_SCHEMA = FORECAST_METRICS_COLUMNS


def point_errors(df: pl.DataFrame, model: str) -> dict[str, float | None]:
    """Return wape, mae and bias of column ``model`` against ``y`` over all rows of ``df``."""
    err = pl.col(model) - pl.col("y")
    row = df.select(
        (err.abs().sum() / pl.col("y").sum()).alias("wape"),
        err.abs().mean().alias("mae"),
        (err.sum() / pl.col("y").sum()).alias("bias"),
    ).row(0, named=True)
    total = df.get_column("y").sum()
    return row if total > 0 else {**row, "wape": None, "bias": None}


def naive_scales(history: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Return keys, scale: each series' mean squared one-step naive error over its history.

    ``history`` holds keys, date, y (one row per series-day, consecutive days; null y = unknown).
    """
    return (
        history.sort(*keys, "date")
        .with_columns(pl.col("y").diff().over(keys).pow(2).alias("_sq"))
        .group_by(keys)
        .agg(pl.col("_sq").mean().alias("scale"))
    )


def series_rmsse(df: pl.DataFrame, scales: pl.DataFrame, keys: list[str], model: str) -> pl.DataFrame:
    """Return keys, rmsse of column ``model`` per series (null where the scale is 0 or unknown)."""
    per = df.group_by(keys).agg(((pl.col(model) - pl.col("y")) ** 2).mean().alias("_mse"))
    per = per.join(scales, on=keys, how="left")
    return per.select(
        *keys, pl.when(pl.col("scale") > 0).then((pl.col("_mse") / pl.col("scale")).sqrt()).alias("rmsse")
    )


def _history(tables: LakeTables, pairs: pl.DataFrame, *, cutoff: date) -> pl.DataFrame:
    """Return store_id, sku, date, y, region, category: each pair's demand from its first sale to cutoff."""
    panel = build_panel(
        tables.store_sales,
        stores=tables.stores,
        products=tables.products,
        assortment=pairs,
        as_of=cutoff,
    )
    return (
        panel.join(pairs.lazy(), on=list(PAIR), how="semi")
        .select(*PAIR, "date", pl.col("units").alias("y"), "region", "category")
        .collect()
    )


def _revenue_weights(tables: LakeTables, pairs: pl.DataFrame, *, cutoff: date) -> pl.DataFrame:
    """Return store_id, sku, weight: revenue share in the WEIGHT_DAYS up to ``cutoff`` (0 if none)."""
    recent = (
        tables.store_sales.filter(
            pl.col("date") <= cutoff, pl.col("date") > cutoff - timedelta(days=WEIGHT_DAYS)
        )
        .group_by(*PAIR)
        .agg(pl.col("revenue").sum().clip(lower_bound=0.0).alias("revenue"))
        .collect()
    )
    w = pairs.join(recent, on=list(PAIR), how="left").with_columns(pl.col("revenue").fill_null(0.0))
    return w.select(*PAIR, (pl.col("revenue") / pl.col("revenue").sum()).alias("weight"))


def wrmsse(rmsse_pairs: pl.DataFrame, weights: pl.DataFrame) -> float | None:
    """Return sum(weight x rmsse) over store x SKU series with an RMSSE, weights renormalised over them."""
    both = rmsse_pairs.join(weights, on=list(PAIR), how="inner").drop_nulls(["rmsse", "weight"])
    total = float(both.get_column("weight").sum())
    if both.height == 0 or not total > 0:
        return None
    return float((both.get_column("rmsse") * both.get_column("weight")).sum()) / total


def _fold_metrics(
    fold: pl.DataFrame, hist: pl.DataFrame, models: list[str], pair_w: pl.DataFrame
) -> list[dict]:
    """Return one metrics record per model and level for one fold (``fold`` and ``hist`` carry
    region, category and _all)."""
    pair_scales = naive_scales(hist, list(PAIR))
    records: list[dict] = []
    for level, keys_t in LEVELS.items():
        keys = list(keys_t)
        sums = [pl.col("y").sum(), *(pl.col(m).sum() for m in models)]
        series = fold.group_by(*keys, "date").agg(sums)
        scales = naive_scales(hist.group_by(*keys, "date").agg(pl.col("y").sum()), keys)
        for model in models:
            rec: dict = {"model": model, "level": level, **point_errors(series, model)}
            rec["rmsse"] = series_rmsse(series, scales, keys, model).get_column("rmsse").mean()
            rec["wrmsse"] = None
            if level == "total":
                rec["wrmsse"] = wrmsse(series_rmsse(fold, pair_scales, list(PAIR), model), pair_w)
            records.append(rec)
    return records


def forecast_metrics(cv: pl.DataFrame, tables: LakeTables) -> pl.DataFrame:
    """Return per cutoff (fold), model and level (total, region, category, store): wape, mae, bias,
    rmsse, and wrmsse at the total level (null elsewhere); columns as METRIC_SCHEMA. ``cv`` is
    cross_validate's long format: every column besides cutoff, store_id, sku, date, y and the p10/p90
    interval is a model."""
    models = [c for c in cv.columns if c not in (*KEY_COLUMNS, *INTERVAL_COLUMNS)]
    labelled = (
        cv.join(tables.stores.select("store_id", "region"), on="store_id", how="left")
        .join(tables.products.select("sku", "category"), on="sku", how="left")
        .with_columns(pl.lit("all").alias("_all"))
    )
    rows: list[dict] = []
    for cutoff in labelled.get_column("cutoff").unique().sort().to_list():
        fold = labelled.filter(pl.col("cutoff") == cutoff)
        pairs = fold.select(*PAIR).unique()
        hist = _history(tables, pairs, cutoff=cutoff).with_columns(pl.lit("all").alias("_all"))
        weights = _revenue_weights(tables, pairs, cutoff=cutoff)
        rows += [{"cutoff": cutoff, **r} for r in _fold_metrics(fold, hist, models, weights)]
    if not rows:
        return pl.DataFrame(schema=METRIC_SCHEMA)
    return pl.DataFrame(rows).select(list(METRIC_SCHEMA)).cast(METRIC_SCHEMA)
