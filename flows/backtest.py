"""The `localshelf-backtest` flow: did the model and the advice beat simple baselines on held-out time?"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from data_contracts.tables import LakeTables
from flows import tasks
from flows.lake.outputs import OutPaths, write_table
from flows.lake.paths import LakePaths, load_tables
from flows.pipeline import package_versions
from flows.settings import Settings, load_settings


class BacktestParams(BaseModel):
    """What one backtest is told."""

    drop: Path
    out: Path
    lake: Path | None = Field(None, description="The lake; default: OUT/lake.")
    folds: int = Field(3, gt=0, description="Held-out windows (n_windows).")
    horizon: int | None = Field(
        None,
        gt=0,
        description="Days per window (h, also the step between cutoffs); default: settings.horizon.",
    )


def fold_cutoffs(as_of: date, *, folds: int, horizon: int) -> list[date]:
    """Cutoffs, oldest first, so that the last window ends on ``as_of``."""
    return [as_of - timedelta(days=horizon * k) for k in range(folds, 0, -1)]


def _advise_at(settings: Settings):
    """The whole advice pipeline (patterns -> model -> candidates -> assortment) as of a cutoff."""
    from models.advice.assortment import candidate_pairs, recommend_assortment
    from models.demand import fit_demand_model, forecast_demand
    from models.mining.patterns import mine_patterns

    def advise(tables: LakeTables, cutoff: date) -> pl.DataFrame:
        patterns = mine_patterns(tables, as_of=cutoff, settings=settings.mining)
        model = fit_demand_model(tables, as_of=cutoff, settings=settings.demand())
        candidates = candidate_pairs(tables, patterns)
        fc = forecast_demand(model, tables, candidates.select("store_id", "sku"), horizon=settings.horizon)
        return recommend_assortment(tables, candidates, fc, patterns, settings=settings.assortment)

    return advise


@task(name="forecast-backtest", cache_policy=NO_CACHE)
def forecast_backtest(lake: LakePaths, out: OutPaths, settings: Settings, folds: int, horizon: int) -> Path:
    """Cross-validate LightGBM against seasonal-naive and moving-average baselines."""
    from models.evaluation.forecast_backtest import BacktestConfig, cross_validate
    from models.evaluation.metrics import forecast_metrics

    tables = load_tables(lake)
    cv = cross_validate(
        tables,
        config=BacktestConfig(n_windows=folds, h=horizon, step_size=horizon),
        settings=settings.demand(),
    )
    path = out.backtest / "forecast_metrics.parquet"
    write_table(forecast_metrics(cv, tables), path)
    return path


@task(name="event-backtest", cache_policy=NO_CACHE)
def event_backtest(lake: LakePaths, out: OutPaths, settings: Settings) -> Path:
    """Precision/recall of pre-stock flags on held-out events."""
    from models.evaluation.advice_backtest import event_backtest as run_event_backtest
    from models.mining.patterns import mine_patterns

    result = run_event_backtest(
        load_tables(lake),
        mine=lambda t, cutoff: mine_patterns(t, as_of=cutoff, settings=settings.mining),
        min_lift=settings.mining.min_lift,
        lead_days=settings.mining.event_lead_days,
        baseline_days=settings.mining.event_baseline_days,
        fdr_alpha=settings.mining.fdr_alpha,
    )
    path = out.backtest / "event_backtest.parquet"
    write_table(result, path)
    return path


@task(name="assortment-backtest", cache_policy=NO_CACHE)
def assortment_backtest(
    lake: LakePaths, out: OutPaths, settings: Settings, cutoffs: list[date], horizon: int
) -> Path:
    """Demand the advised assortment would have carried, beside today's and a chain-wide standard."""
    from models.evaluation.advice_backtest import assortment_backtest as run_assortment_backtest

    result = run_assortment_backtest(
        load_tables(lake), cutoffs=cutoffs, horizon=horizon, advise=_advise_at(settings)
    )
    path = out.backtest / "assortment_backtest.parquet"
    write_table(result, path)
    return path


@flow(name="localshelf-backtest", log_prints=True)
def localshelf_backtest(params: BacktestParams, settings: Settings | None = None) -> str:
    """Load the drop, then backtest forecasts, event flags and assortments; returns backtest/report.html."""
    settings = settings or load_settings(horizon=params.horizon)
    horizon = params.horizon or settings.horizon
    lake = LakePaths(params.lake or params.out / "lake")
    out = OutPaths(params.out)
    out.backtest.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(stage: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args)
        timings[stage] = round(time.perf_counter() - start, 3)
        return result

    loaded = timed("ingest", tasks.ingest, params.drop, lake, settings, None)
    timed("validate", tasks.validate, lake, settings, None, loaded.get("changed_partitions"))
    as_of = tasks.resolve_as_of(lake, None)
    cutoffs = fold_cutoffs(as_of, folds=params.folds, horizon=horizon)
    get_run_logger().info(f"backtest cutoffs {[c.isoformat() for c in cutoffs]}, horizon {horizon}")
    timed("forecast", forecast_backtest, lake, out, settings, params.folds, horizon)
    timed("events", event_backtest, lake, out, settings)
    timed("assortment", assortment_backtest, lake, out, settings, cutoffs, horizon)

    from flows.report.report import render_backtest_report

    info = {
        "as_of": as_of.isoformat(),
        "cutoffs": [c.isoformat() for c in cutoffs],
        "horizon": horizon,
        "versions": package_versions(),
        "tables": loaded["tables"],
        "timings_s": timings,
    }
    return str(render_backtest_report(out.backtest, info))
