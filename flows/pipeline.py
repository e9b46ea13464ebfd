"""The `localshelf-run` flow: drop -> lake -> validated lake -> model -> patterns -> advice -> report."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from flows import tasks
from flows.lake.outputs import OutPaths, write_text
from flows.lake.paths import LakePaths
from flows.settings import Settings, load_settings

VERSIONED_PACKAGES = (
    "localshelf",
    "polars",
    "pyarrow",
    "lightgbm",
    "great_expectations",
    "prefect",
    "pandas",
    "numpy",
    "scipy",
)


class RunParams(BaseModel):
    """What one run is told (validated by Prefect). Secrets never travel as parameters: they come
    from the settings (environment or TOML)."""

    drop: Path = Field(description="The drop folder (input contract).")
    out: Path = Field(description="The output folder (output contract).")
    lake: Path | None = Field(None, description="The lake; default: settings.lake_dir.")
    as_of: date | None = Field(None, description="Forecast origin; default: the last sales date.")
    horizon: int | None = Field(None, gt=0, description="Forecast days; default: settings.horizon.")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a run's results."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_run_json(out: OutPaths, info: dict[str, Any]) -> None:
    """Write run.json atomically."""
    write_text(out.run_json, json.dumps(info, indent=2, default=str))


def _timed(timings: dict[str, float], stage: str, started: float) -> None:
    timings[stage] = round(time.perf_counter() - started, 3)


@flow(name="localshelf-run", log_prints=True)
def localshelf_run(params: RunParams, settings: Settings | None = None) -> str:
    """Run the whole job on one drop; returns the path of report.html."""
    settings = settings or load_settings(as_of=params.as_of, horizon=params.horizon)
    if params.horizon is not None:
        settings = settings.model_copy(update={"horizon": params.horizon})
    lake = LakePaths(params.lake or settings.lake_dir)
    requested_as_of = params.as_of or settings.as_of
    out = OutPaths(params.out)
    out.root.mkdir(parents=True, exist_ok=True)
    logger = get_run_logger()
    started_at = datetime.now(UTC)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    loaded = tasks.ingest(params.drop, lake, settings, requested_as_of)
    _timed(timings, "ingest", t)
    t = time.perf_counter()
    validation = tasks.validate(lake, settings, requested_as_of, loaded.get("changed_partitions"))
    _timed(timings, "validate", t)
    as_of = tasks.resolve_as_of(lake, requested_as_of)
    logger.info(f"as-of date {as_of}, horizon {settings.horizon} days")

    t = time.perf_counter()
    model = tasks.train(lake, out, settings, as_of)
    _timed(timings, "train", t)
    # the model task builds its features itself: split its time so run.json shows both stages
    timings["features"] = model["metrics"].get("features_s", 0.0)
    timings["train"] = round(timings["train"] - timings["features"], 3)
    t = time.perf_counter()
    patterns_path = tasks.mine(lake, out, settings, as_of)
    _timed(timings, "mine", t)
    t = time.perf_counter()
    forecast_path = tasks.forecast(lake, out, settings, Path(model["path"]), patterns_path)
    _timed(timings, "forecast", t)
    t = time.perf_counter()
    advice = tasks.recommend(lake, out, settings, as_of, forecast_path, patterns_path)
    _timed(timings, "recommend", t)

    info: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon": settings.horizon,
        "started_at": started_at.isoformat(),
        "inputs": {"drop": str(params.drop), "lake": str(lake.root)},
        "versions": package_versions(),
        "tables": loaded["tables"],
        "files": loaded["files"],
        "quarantine_reasons": loaded["quarantine_reasons"],
        "warnings": loaded.get("warnings", []),
        "validation": validation,
        "model": model["metrics"],
        "advice": advice,
        "timings_s": timings,
    }
    t = time.perf_counter()
    report_path = tasks.report(out, info)
    _timed(timings, "report", t)
    info["finished_at"] = datetime.now(UTC).isoformat()
    write_run_json(out, info)
    shutil.rmtree(out.work, ignore_errors=True)
    logger.info(f"done: report at {report_path}")
    return str(report_path)
