"""Prefect tasks: each one I/O step or one model step, handing on paths to Parquet, not frames."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data_contracts.outputs import (
    ASSORTMENT_COLUMNS,
    FORECAST_COLUMNS,
    PATTERN_COLUMNS,
    PRESTOCK_COLUMNS,
    conform,
)
from flows.lake.outputs import OutPaths, write_table
from flows.lake.paths import LakePaths, load_tables
from flows.settings import Settings


def _no_retry_on_contract_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O failures, but never a broken data contract: re-reading bad input cannot fix it."""
    from flows.lake.ingest import ContractError

    try:
        state.result()
    except ContractError:
        return False
    except Exception:
        return True
    return False


def _log(message: str) -> None:
    get_run_logger().info(message)


@task(
    name="ingest",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_no_retry_on_contract_error,
    cache_policy=NO_CACHE,
)
def ingest(drop: Path, lake: LakePaths, settings: Settings, as_of: date | None) -> dict[str, Any]:
    """Load the drop into the lake; returns the ingest report as run.json-shaped dict (+ partitions)."""
    from flows.lake.ingest import ingest_drop

    report = ingest_drop(drop, lake, settings, as_of=as_of, progress=_log)
    for name, counts in report.tables.items():
        n = {k: f"{counts.get(f'rows_{k}', 0):,}" for k in ("read", "loaded", "quarantined", "duplicate")}
        _log(
            f"ingest {name}: read {n['read']}, loaded {n['loaded']}, "
            f"quarantined {n['quarantined']}, duplicate {n['duplicate']}"
        )
    for warning in report.warnings:
        get_run_logger().warning(f"{warning.get('table')}: {warning.get('message')}")
    result = report.to_json()
    result["changed_partitions"] = {k: [list(p) for p in v] for k, v in report.changed_partitions.items()}
    return result


@task(name="validate", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def validate(
    lake: LakePaths, settings: Settings, as_of: date | None, partitions: dict[str, list[list[int]]] | None
) -> dict[str, Any]:
    """Run the Great Expectations suites over what the load touched; stop the run if the contract broke."""
    from flows.lake.validation import validate_lake

    parts = None if partitions is None else {k: [tuple(p) for p in v] for k, v in partitions.items()}
    summary = validate_lake(
        lake,
        as_of=as_of,
        min_date=settings.ingest.min_date,
        max_future_days=settings.ingest.max_future_days,
        partitions=parts,
        progress=_log,
    )
    result = summary.to_json()
    _log(f"validate: {'passed' if summary.success else 'FAILED'}; Data Docs at {summary.docs_index}")
    if not summary.success:
        failed = {t: v.get("failed") for t, v in summary.tables.items() if not v.get("success", True)}
        raise RuntimeError(f"Loaded data breaks its contract: {failed}. See Data Docs: {summary.docs_index}")
    return result


@task(name="resolve-as-of", cache_policy=NO_CACHE)
def resolve_as_of(lake: LakePaths, requested: date | None) -> date:
    """The forecast origin: the requested date, else the last store-sales date in the lake."""
    if requested is not None:
        return requested
    tables = load_tables(lake)
    last = tables.store_sales.select(pl.col("date").max()).collect().item()
    if last is None:
        raise ValueError(f"The lake at {lake.root} holds no store sales: nothing to forecast from.")
    return last


@task(name="train", cache_policy=NO_CACHE)
def train(lake: LakePaths, out: OutPaths, settings: Settings, as_of: date) -> dict[str, Any]:
    """Fit the LightGBM demand model on history up to as_of; returns its path and metrics."""
    from models.demand import fit_demand_model

    model = fit_demand_model(load_tables(lake), as_of=as_of, settings=settings.demand())
    path = out.work / "demand_model"
    model.save(path)
    _log(f"train: {len(model.feature_names)} features, metrics {model.metrics}")
    return {"path": str(path), "metrics": model.metrics}


@task(name="mine", cache_policy=NO_CACHE)
def mine(lake: LakePaths, out: OutPaths, settings: Settings, as_of: date) -> Path:
    """Mine event uplift, local affinity and latent demand; writes patterns.parquet."""
    from models.mining.patterns import mine_patterns

    patterns = conform(
        mine_patterns(load_tables(lake), as_of=as_of, settings=settings.mining), PATTERN_COLUMNS
    )
    write_table(patterns, out.patterns)
    counts = patterns.group_by("kind").len().sort("kind").rows()
    _log(f"mine: {patterns.height} significant patterns {dict(counts)}")
    return out.patterns


@task(name="forecast", cache_policy=NO_CACHE)
def forecast(
    lake: LakePaths, out: OutPaths, settings: Settings, model_path: Path, patterns_path: Path
) -> Path:
    """Forecast every carried pair and every add candidate; writes a work file of all candidates."""
    from models.advice.assortment import candidate_pairs
    from models.demand import DemandModel, forecast_demand

    tables = load_tables(lake)
    candidates = candidate_pairs(tables, pl.read_parquet(patterns_path))
    write_table(candidates, out.work / "candidates.parquet")
    model = DemandModel.load(Path(model_path))
    fc = forecast_demand(model, tables, candidates.select("store_id", "sku"), horizon=settings.horizon)
    path = out.work / "forecast_candidates.parquet"
    write_table(conform(fc, FORECAST_COLUMNS), path)
    _log(f"forecast: {candidates.height:,} store x SKU pairs x {settings.horizon} days")
    return path


@task(name="recommend", cache_policy=NO_CACHE)
def recommend(
    lake: LakePaths, out: OutPaths, settings: Settings, as_of: date, forecast_path: Path, patterns_path: Path
) -> dict[str, int]:
    """Choose each store's assortment and the pre-stock plan; writes assortment, prestock and forecast."""
    from models.advice.assortment import recommend_assortment
    from models.advice.prestock import plan_prestock

    tables = load_tables(lake)
    patterns = pl.read_parquet(patterns_path)
    fc_all = pl.read_parquet(forecast_path)
    candidates = pl.read_parquet(out.work / "candidates.parquet")
    advice = conform(
        recommend_assortment(tables, candidates, fc_all, patterns, settings=settings.assortment),
        ASSORTMENT_COLUMNS,
    )
    write_table(advice, out.assortment, csv=out.assortment_csv)
    plan = conform(
        plan_prestock(
            tables,
            patterns,
            fc_all,
            advice,
            as_of=as_of,
            settings=settings.assortment,
            lead_days=settings.mining.event_lead_days,
            fdr_alpha=settings.mining.fdr_alpha,
        ),
        PRESTOCK_COLUMNS,
    )
    write_table(plan, out.prestock, csv=out.prestock_csv)
    # The contract's forecast covers what each store carries today (keep, drop) or is advised to add.
    shown = advice.select("store_id", "sku")
    fc = fc_all.join(shown, on=["store_id", "sku"], how="semi").sort("store_id", "sku", "date")
    write_table(conform(fc, FORECAST_COLUMNS), out.forecast)
    counts = {a: int(n) for a, n in advice.group_by("action").len().rows()}
    _log(f"recommend: {counts}; pre-stock lines {plan.height:,}")
    return {**counts, "prestock_lines": plan.height}


@task(name="report", cache_policy=NO_CACHE)
def report(out: OutPaths, run_info: dict[str, Any]) -> Path:
    """Write report.html from the output tables and run.json."""
    from flows.report.report import render_report

    path = render_report(out, run_info)
    _log(f"report: {path}")
    return path
