"""Rolling-origin cross-validation of the demand model against simple baselines (mlforecast vocabulary).

Each window trains on facts dated <= its cutoff only and forecasts the ``h`` days after it, for the
pairs on the shelf at the cutoff. Today's assortment is not used (it would tell a past cutoff what is
carried later): a pair counts as on the shelf when it sold within the model's stale-days before the
cutoff. Stockout days in the held-out window are left out: their actual demand is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

import polars as pl

from data_contracts.tables import LakeTables
from features.panel import PAIR, build_panel, daily_demand, pair_spans
from models.demand import DemandSettings, feature_spec, fit_demand_model, forecast_demand
from models.evaluation.metrics import INTERVAL_COLUMNS

MODELS = ("lightgbm", "seasonal_naive", "moving_average")
MA_WINDOW = 28  # days in the moving-average baseline
SEASON = 7  # days in the seasonal-naive baseline's season


@dataclass(frozen=True)
class BacktestConfig:
    """n_windows windows of h days; consecutive cutoffs step_size days apart; the last ends on the
    last date with store sales."""

    n_windows: int = 3
    h: int = 28
    step_size: int = 28


def cutoffs(last: date, config: BacktestConfig) -> list[date]:
    """Return the cutoffs, oldest first, so that the last window ends on ``last``."""
    return [
        last - timedelta(days=config.h + config.step_size * k) for k in range(config.n_windows - 1, -1, -1)
    ]


def shelf_pairs(tables: LakeTables, *, cutoff: date, stale_days: int) -> pl.DataFrame:
    """Return store_id, sku of the pairs on the shelf at ``cutoff`` (sold within ``stale_days``)."""
    daily = daily_demand(tables.store_sales, as_of=cutoff)
    no_assortment = tables.assortment.clear()
    spans = pair_spans(daily, no_assortment, as_of=cutoff, stale_days=stale_days)
    return spans.filter(pl.col("end_date") == cutoff).select(*PAIR).sort(*PAIR).collect()


def actuals(tables: LakeTables, pairs: pl.DataFrame, *, cutoff: date, h: int) -> pl.DataFrame:
    """Return store_id, sku, date, y for each pair and day cutoff+1 .. cutoff+h: demand (returns
    clipped to 0, absent days 0); censored stockout days are left out."""
    end = cutoff + timedelta(days=h)
    days = pl.DataFrame({"date": pl.date_range(cutoff + timedelta(days=1), end, eager=True)})
    sold = daily_demand(tables.store_sales, as_of=end).filter(pl.col("date") > cutoff).collect()
    grid = pairs.join(days, how="cross").join(sold, on=[*PAIR, "date"], how="left")
    return grid.filter(~pl.col("censored").fill_null(False)).select(
        *PAIR, "date", pl.col("units").fill_null(0.0).alias("y")
    )


def baselines(tables: LakeTables, pairs: pl.DataFrame, *, cutoff: date, h: int) -> pl.DataFrame:
    """Return store_id, sku, date, seasonal_naive, moving_average for the h days after ``cutoff``.

    moving_average: mean demand over the last 28 uncensored days. seasonal_naive: demand on the same
    weekday of the last week before the cutoff (the moving average where that day was censored).
    """
    history = build_panel(
        tables.store_sales,
        stores=tables.stores,
        products=tables.products,
        assortment=pairs,
        as_of=cutoff,
        start=cutoff - timedelta(days=MA_WINDOW - 1),
    ).collect()
    history = history.join(pairs, on=list(PAIR), how="semi")
    ma = history.group_by(*PAIR).agg(pl.col("units").mean().alias("moving_average"))
    last_week = history.filter(pl.col("date") > cutoff - timedelta(days=SEASON)).select(
        *PAIR, pl.col("date").dt.weekday().alias("dow"), pl.col("units").alias("seasonal_naive")
    )
    days = pl.DataFrame(
        {"date": pl.date_range(cutoff + timedelta(days=1), cutoff + timedelta(days=h), eager=True)}
    )
    return (
        pairs.join(days, how="cross")
        .with_columns(pl.col("date").dt.weekday().alias("dow"))
        .join(ma, on=list(PAIR), how="left")
        .join(last_week, on=[*PAIR, "dow"], how="left")
        .select(
            *PAIR,
            "date",
            pl.col("seasonal_naive").fill_null(pl.col("moving_average")).fill_null(0.0),
            pl.col("moving_average").fill_null(0.0),
        )
    )


def cross_validate(
    tables: LakeTables,
    *,
    config: BacktestConfig,
    settings: DemandSettings,
    windows: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Return long-format backtest results: cutoff, store_id, sku, date, y (actual demand), lightgbm,
    seasonal_naive, moving_average, p10, p90 (lightgbm's interval, for the backtest page); one row per
    window, shelf pair and uncensored day. Each window's model is trained on data dated <= its cutoff
    only, with horizon h. ``windows``: only these windows (0 the oldest; each is independent of the
    others, so windows run apart and concatenated give the whole result)."""
    last = tables.store_sales.select(pl.col("date").max()).collect().item()
    if last is None:
        raise ValueError("No store sales: nothing to backtest.")
    window_settings = settings.model_copy(update={"horizon": config.h})
    stale = feature_spec(window_settings, tables.events).stale_days
    # no peeking: today's assortment says what is carried after the cutoffs
    blind = replace(tables, assortment=tables.assortment.clear())
    frames = []
    for k, cutoff in enumerate(cutoffs(last, config)):
        if windows is not None and k not in windows:
            continue
        pairs = shelf_pairs(blind, cutoff=cutoff, stale_days=stale)
        if pairs.height == 0:
            continue
        model = fit_demand_model(blind, as_of=cutoff, settings=window_settings)
        fc = forecast_demand(model, blind, pairs, horizon=config.h).select(
            *PAIR, "date", pl.col("units").alias("lightgbm"), "p10", "p90"
        )
        frames.append(
            actuals(blind, pairs, cutoff=cutoff, h=config.h)
            .join(fc, on=[*PAIR, "date"], how="left")
            .join(baselines(blind, pairs, cutoff=cutoff, h=config.h), on=[*PAIR, "date"], how="left")
            .with_columns(pl.lit(cutoff).alias("cutoff"))
        )
    schema = pl.Schema(
        {"cutoff": pl.Date, "store_id": pl.String, "sku": pl.String, "date": pl.Date, "y": pl.Float64}
        | dict.fromkeys(MODELS, pl.Float64)
        | dict.fromkeys(INTERVAL_COLUMNS, pl.Float64)
    )
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(schema.names()).cast(schema).sort("cutoff", *PAIR, "date")
