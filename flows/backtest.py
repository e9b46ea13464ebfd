"""The `localshelf-backtest` flow: did the model and the advice beat simple baselines on held-out time?"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BeforeValidator, Field

from data_contracts.tables import LakeTables
from flows import tasks
from flows.lake.outputs import OutPaths, write_table
from flows.lake.paths import LakePaths, load_tables
from flows.pipeline import HOUR, DropDir, OutDir, StageTimer, not_empty, package_versions
from flows.runners import fan_out
from flows.runtime import one_writer, with_hmac_secret
from flows.settings import Settings, load_settings

LakeDir = Annotated[
    Path | None, BeforeValidator(not_empty), Field(description="The lake; default: OUT/lake.")
]
Folds = Annotated[int, Field(gt=0, description="Held-out windows (n_windows).")]
Horizon = Annotated[
    int | None,
    Field(gt=0, description="Days per window (h, also the step between cutoffs); default: settings.horizon."),
]


def fold_cutoffs(as_of: date, *, folds: int, horizon: int) -> list[date]:
    """Cutoffs, oldest first, so that the last window ends on ``as_of``."""
    return [as_of - timedelta(days=horizon * k) for k in range(folds, 0, -1)]


def _advise_at(settings: Settings):
    """The whole advice pipeline (patterns -> model -> candidates -> assortment) as of a cutoff."""
    from models.advice.advise import advise_at

    def advise(tables: LakeTables, cutoff: date) -> pl.DataFrame:
        return advise_at(
            tables, as_of=cutoff, horizon=settings.horizon, settings=settings.assortment,
            mining=settings.mining, demand=settings.demand(),
        ).assortment  # fmt: skip

    return advise


@task(name="forecast-backtest", timeout_seconds=6 * HOUR, cache_policy=NO_CACHE)
def forecast_backtest(lake: LakePaths, out: OutPaths, settings: Settings, folds: int, horizon: int) -> Path:
    """Cross-validate LightGBM against seasonal-naive and moving-average baselines."""
    from flows.fanout import cross_validate  # on Dask: one window per worker
    from flows.report.inputs import FORECAST_BACKTEST_FILE
    from models.evaluation.forecast_backtest import BacktestConfig
    from models.evaluation.metrics import forecast_metrics

    tables = load_tables(lake)
    cv = cross_validate(
        tables,
        config=BacktestConfig(n_windows=folds, h=horizon, step_size=horizon),
        settings=settings.demand(),
    )
    # the predictions beside the actuals, per fold: the backtest page draws them against what sold
    write_table(cv, out.backtest / FORECAST_BACKTEST_FILE)
    path = out.backtest / "forecast_metrics.parquet"
    write_table(forecast_metrics(cv, tables), path)
    return path


@task(name="event-backtest", timeout_seconds=4 * HOUR, cache_policy=NO_CACHE)
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


@task(name="assortment-backtest", timeout_seconds=8 * HOUR, cache_policy=NO_CACHE)
def assortment_backtest(
    lake: LakePaths, out: OutPaths, settings: Settings, cutoffs: list[date], horizon: int
) -> Path:
    """Demand the advised assortment would have carried, beside today's and a chain-wide standard: on
    each store's own held-out demand (the ``store`` measure, the headline), and on the older ``region``
    measure beside it; the ``demand_measure`` column says which (models/evaluation/held_out.py)."""
    from flows.fanout import assortment_backtest as run_assortment_backtest  # on Dask: a cutoff per worker
    from models.evaluation.advice_backtest import DEMAND_MEASURES

    result = run_assortment_backtest(
        load_tables(lake),
        cutoffs=cutoffs,
        horizon=horizon,
        advise=_advise_at(settings),
        settings=settings.assortment,
        measures=DEMAND_MEASURES,
    )
    path = out.backtest / "assortment_backtest.parquet"
    write_table(result, path)
    return path


@flow(name="localshelf-backtest", log_prints=True, timeout_seconds=24 * HOUR)
def localshelf_backtest(
    drop: DropDir, out: OutDir, lake: LakeDir = None, folds: Folds = 3, horizon: Horizon = None
) -> str:
    """Load the drop, then backtest forecasts, event flags and assortments; returns backtest/report.html.
    Holds the writer slot of the lake and of the output folder while it runs."""
    settings = with_hmac_secret(load_settings(horizon=horizon))
    horizon = horizon or settings.horizon
    lake_paths = LakePaths(lake or Path(out) / "lake")
    out_paths = OutPaths(out)
    with one_writer({"lake": lake_paths.root, "out": out_paths.root}):
        return _backtest(Path(drop), lake_paths, out_paths, settings, folds, horizon)


def _backtest(
    drop: Path, lake: LakePaths, out: OutPaths, settings: Settings, folds: int, horizon: int
) -> str:
    out.backtest.mkdir(parents=True, exist_ok=True)
    stage = StageTimer()
    loaded = stage("ingest", tasks.ingest, drop, lake, settings, None)
    stage("validate", tasks.validate, lake, settings, None, loaded)
    as_of = tasks.resolve_as_of(lake, None)
    cutoffs = fold_cutoffs(as_of, folds=folds, horizon=horizon)
    get_run_logger().info(f"backtest cutoffs {[c.isoformat() for c in cutoffs]}, horizon {horizon}")
    # independent: one after the other locally, side by side on Dask (flows/runners.py)
    fan_out(
        stage,
        ("forecast", forecast_backtest, (lake, out, settings, folds, horizon)),
        ("events", event_backtest, (lake, out, settings)),
        ("assortment", assortment_backtest, (lake, out, settings, cutoffs, horizon)),
    )

    from flows.report.report import render_backtest_report

    info = {
        "as_of": as_of.isoformat(),
        "cutoffs": [c.isoformat() for c in cutoffs],
        "horizon": horizon,
        "versions": package_versions(),
        "tables": loaded.tables,
        "timings_s": stage.timings,
    }
    return str(render_backtest_report(out.backtest, info))
