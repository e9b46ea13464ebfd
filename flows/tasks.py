"""Prefect tasks: each one I/O step or one model step, handing on paths to Parquet, not frames.

I/O tasks (ingest, validate, report) retry with exponential backoff, but only on what another attempt
can fix (an OSError, a lake held by another load); never on a broken data contract, never after a
timeout. Every task has a timeout: a stuck run fails instead of holding its folders for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypedDict

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from data_contracts.outputs import (
    ASSORTMENT_COLUMNS,
    FORECAST_COLUMNS,
    PATTERN_COLUMNS,
    PRESTOCK_COLUMNS,
    conform,
)
from data_contracts.validate import ValidationSummary
from flows.lake.ingest import IngestReport
from flows.lake.outputs import OutPaths, write_table
from flows.lake.paths import LakePaths, load_tables
from flows.lake.readers import ContractError
from flows.settings import Settings

HOUR = 3600.0


# Retries of I/O tasks: 3 more attempts after 10, 20, 40 s (each +/- 50 %).
class _Retries(TypedDict):
    retries: int
    retry_delay_seconds: Callable[[int], list[float]]
    retry_jitter_factor: float


IO_RETRIES: _Retries = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(10),
    "retry_jitter_factor": 0.5,
}


@dataclass(frozen=True)
class TrainedModel:
    """The fitted demand model on disk and its validation metrics."""

    path: Path
    metrics: dict[str, float]


@dataclass(frozen=True)
class Forecasts:
    """The add/keep candidates and their daily forecast, both in the run's work folder."""

    candidates: Path
    forecast: Path


@dataclass(frozen=True)
class AdviceCounts:
    """How many pairs each action got, and how many pre-stock lines were planned."""

    actions: dict[str, int]
    prestock_lines: int

    def to_json(self) -> dict[str, int]:
        """Return the run.json "advice" block."""
        return {**self.actions, "prestock_lines": self.prestock_lines}


def _retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O failures only: re-reading input that breaks its contract cannot fix it, and a task
    that ran into its timeout would only run into it again."""
    from flows.lake.commit import LakeLockedError

    try:
        state.result()
    except TimeoutError:
        return False
    except (OSError, LakeLockedError):
        return True
    except Exception:
        return False
    return False


def _log(message: str) -> None:
    get_run_logger().info(message)


@task(
    name="ingest",
    timeout_seconds=6 * HOUR,
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
    **IO_RETRIES,
)
def ingest(drop: Path, lake: LakePaths, settings: Settings, as_of: date | None) -> IngestReport:
    """Load the drop into the lake; returns what happened to every row of every file."""
    from flows.lake.ingest import ingest_drop
    from flows.lake.remote import local_lake

    # keep_rows: the validate task checks the rows written from memory instead of reading them back;
    # a URL lake is loaded in its local copy and published by one ref switch (flows/lake/remote.py)
    with local_lake(lake, timeout_s=settings.ingest.lock_timeout_s) as target:
        report = ingest_drop(drop, target, settings, as_of=as_of, progress=_log, keep_rows=True)
    for name, counts in report.tables.items():
        n = {k: f"{counts.get(f'rows_{k}', 0):,}" for k in ("read", "loaded", "quarantined", "duplicate")}
        _log(
            f"ingest {name}: read {n['read']}, loaded {n['loaded']}, "
            f"quarantined {n['quarantined']}, duplicate {n['duplicate']}"
        )
    for warning in report.warnings:
        get_run_logger().warning(f"{warning.get('table')}: {warning.get('message')}")
    return report


@task(
    name="validate",
    timeout_seconds=4 * HOUR,
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
    **IO_RETRIES,
)
def validate(
    lake: LakePaths, settings: Settings, as_of: date | None, loaded: IngestReport
) -> ValidationSummary:
    """Run the Great Expectations suites over what the load touched and publish the load's artifacts;
    returns the summary. Raises ContractError (not retried) when the loaded data breaks its contract."""
    from flows.artifacts import publish_load
    from flows.fanout import validate_lake  # on Dask: in parts, one per worker
    from flows.lake.docs_offline import make_offline
    from flows.lake.remote import local_lake, publish_docs

    with local_lake(lake, timeout_s=settings.ingest.lock_timeout_s) as target:
        summary = validate_lake(
            target,
            as_of=as_of,
            min_date=settings.ingest.min_date,
            max_future_days=settings.ingest.max_future_days,
            partitions=loaded.changed_partitions,
            progress=_log,
            loaded=loaded,
        )
        make_offline(lake.docs)  # the Data Docs load their scripts from CDNs: point them at local copies
    publish_docs(lake)  # a URL lake's Data Docs go to URL/_docs
    if lake.url is not None and summary.docs_index is not None:  # name them there, not in the local copy
        summary.docs_index = f"{lake.url}/_docs/index.html"
    _log(f"validate: {'passed' if summary.success else 'FAILED'}; Data Docs at {summary.docs_index}")
    publish_load(loaded, summary)
    if not summary.success:
        failed = "; ".join(summary.failure_lines()[:20])
        raise ContractError("lake", "validation", f"{failed}. See Data Docs: {summary.docs_index}")
    return summary


@task(name="resolve-as-of", timeout_seconds=HOUR, cache_policy=NO_CACHE)
def resolve_as_of(lake: LakePaths, requested: date | None) -> date:
    """The forecast origin: the requested date, else the last store-sales date in the lake."""
    if requested is not None:
        return requested
    tables = load_tables(lake)
    last = tables.store_sales.select(pl.col("date").max()).collect().item()
    if last is None:
        raise ValueError(f"The lake at {lake.location} holds no store sales: nothing to forecast from.")
    return last


@task(name="train", timeout_seconds=6 * HOUR, cache_policy=NO_CACHE)
def train(lake: LakePaths, work: Path, settings: Settings, as_of: date) -> TrainedModel:
    """Fit the LightGBM demand model (features, then boosting) on history up to as_of."""
    from flows.fanout import train_demand  # lightgbm.dask over the memory budget on Dask
    from flows.runtime import heartbeat

    demand = settings.demand()
    _log(
        f"train: LightGBM on {demand.num_threads} thread(s) (settings num_threads), up to "
        f"{demand.model.num_boost_round} rounds, stopping after {demand.model.early_stopping_rounds} "
        "without gain"
    )
    with heartbeat("train"):
        model = train_demand(load_tables(lake), as_of=as_of, settings=demand)
    path = work / "demand_model"
    model.save(path)
    m = model.metrics
    _log(
        f"train: {len(model.feature_names)} features, {m.get('train_rows', 0):,.0f} rows, best iteration "
        f"{m.get('best_iteration', 0):.0f}, validation WAPE {m.get('valid_wape', float('nan')):.3f} "
        f"({m.get('features_s', 0):.0f} s features, {m.get('train_s', 0):.0f} s boosting)"
    )
    return TrainedModel(path, dict(model.metrics))


@task(name="mine", timeout_seconds=4 * HOUR, cache_policy=NO_CACHE)
def mine(lake: LakePaths, out: OutPaths, settings: Settings, as_of: date) -> Path:
    """Mine event uplift, local affinity and latent demand; writes patterns.parquet."""
    from flows.fanout import mine_patterns  # on Dask: its parts side by side, one FDR step

    patterns = conform(
        mine_patterns(load_tables(lake), as_of=as_of, settings=settings.mining), PATTERN_COLUMNS
    )
    write_table(patterns, out.patterns)
    counts = patterns.group_by("kind").len().sort("kind").rows()
    _log(f"mine: {patterns.height} significant patterns {dict(counts)}")
    return out.patterns


@task(name="forecast", timeout_seconds=4 * HOUR, cache_policy=NO_CACHE)
def forecast(
    lake: LakePaths, work: Path, settings: Settings, model: TrainedModel, patterns: Path
) -> Forecasts:
    """Forecast every carried pair and every add candidate into the work folder."""
    from flows.fanout import forecast_demand  # on Dask: a feature chunk per worker
    from models.advice.assortment import candidate_pairs
    from models.demand import DemandModel

    tables = load_tables(lake)
    candidates = candidate_pairs(tables, pl.read_parquet(patterns))
    result = Forecasts(work / "candidates.parquet", work / "forecast_candidates.parquet")
    write_table(candidates, result.candidates)
    fitted = DemandModel.load(model.path)
    fc = forecast_demand(
        fitted, tables, candidates.select("store_id", "sku"), horizon=settings.horizon,
        chunk_rows=settings.scale.chunk_rows(),
    )  # fmt: skip
    write_table(conform(fc, FORECAST_COLUMNS), result.forecast)
    _log(f"forecast: {candidates.height:,} store x SKU pairs x {settings.horizon} days")
    return result


@task(name="recommend", timeout_seconds=2 * HOUR, cache_policy=NO_CACHE)
def recommend(
    lake: LakePaths, out: OutPaths, settings: Settings, as_of: date, forecasts: Forecasts, patterns_path: Path
) -> AdviceCounts:
    """Choose each store's assortment and the pre-stock plan; writes assortment, prestock and forecast."""
    from models.advice.advise import advise

    tables = load_tables(lake)
    patterns = pl.read_parquet(patterns_path)
    fc_all = pl.read_parquet(forecasts.forecast)
    candidates = pl.read_parquet(forecasts.candidates)
    advised = advise(
        tables, patterns, fc_all, candidates, as_of=as_of, settings=settings.assortment,
        lead_days=settings.mining.event_lead_days, fdr_alpha=settings.mining.fdr_alpha,
    )  # fmt: skip
    advice = conform(advised.assortment, ASSORTMENT_COLUMNS)
    write_table(advice, out.assortment, csv=out.assortment_csv)
    plan = conform(advised.prestock, PRESTOCK_COLUMNS)
    write_table(plan, out.prestock, csv=out.prestock_csv)
    # The contract's forecast covers what each store carries today (keep, drop) or is advised to add.
    shown = advice.select("store_id", "sku")
    fc = fc_all.join(shown, on=["store_id", "sku"], how="semi").sort("store_id", "sku", "date")
    write_table(conform(fc, FORECAST_COLUMNS), out.forecast)
    counts = AdviceCounts({a: int(n) for a, n in advice.group_by("action").len().rows()}, plan.height)
    _log(f"recommend: {counts.actions}; pre-stock lines {plan.height:,}")
    return counts


@task(
    name="report", timeout_seconds=HOUR, retry_condition_fn=_retry_on_io, cache_policy=NO_CACHE, **IO_RETRIES
)
def report(
    out: OutPaths, run_info: dict[str, Any], lake: LakePaths | None = None, settings: Settings | None = None
) -> Path:
    """Write report.html from the output tables, run.json and the lake's sales history."""
    from flows.report.report import render_report

    path = render_report(out, run_info, lake=lake, settings=settings.report if settings else None)
    _log(f"report: {path}")
    return path
