"""The `localshelf-run` flow: drop -> lake -> validated lake -> model -> patterns -> advice -> report."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypeVar

from prefect import flow, get_run_logger
from pydantic import BeforeValidator, Field

from flows import tasks
from flows.artifacts import publish_run
from flows.lake.outputs import OutPaths, write_text
from flows.lake.paths import LakePaths
from flows.lake.remote import begin_outputs, local_drop, publish_outputs
from flows.runners import fan_out
from flows.runtime import one_writer, run_work_folder, with_hmac_secret
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
HOUR = 3600.0
T = TypeVar("T")


def not_empty(value: Any) -> Any:
    # `prefect deploy` turns an unset {{ $VAR }} into "", which Path would read as the working folder
    if isinstance(value, str) and not value.strip():
        raise ValueError(
            "empty path: set LOCALSHELF_DROP, LOCALSHELF_OUT, LOCALSHELF_LAKE before `prefect deploy`"
        )
    return value


# Typed flow parameters, shown with their descriptions in the Prefect UI. Secrets are never parameters
# (the server stores parameters with each run): see flows/runtime.py.
# Each a local folder or a URL (s3://, gs://, memory://...: flows/lake/fs.py); a string stays a string.
DropDir = Annotated[
    Path | str, BeforeValidator(not_empty), Field(description="The drop folder (input contract).")
]
OutDir = Annotated[
    Path | str, BeforeValidator(not_empty), Field(description="The output folder (output contract).")
]
LakeDir = Annotated[
    Path | str | None, BeforeValidator(not_empty), Field(description="The lake; default: settings.lake_dir.")
]
AsOf = Annotated[date | None, Field(description="Forecast origin; default: the last sales date.")]
Horizon = Annotated[int | None, Field(gt=0, description="Forecast days; default: settings.horizon.")]


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


class StageTimer:
    """Runs stages and keeps each one's wall time in seconds (run.json "timings_s")."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        result = fn(*args)
        self.timings[stage] = round(time.perf_counter() - started, 3)
        return result


@flow(name="localshelf-run", log_prints=True, timeout_seconds=24 * HOUR)
def localshelf_run(
    drop: DropDir, out: OutDir, lake: LakeDir = None, as_of: AsOf = None, horizon: Horizon = None
) -> str:
    """Run the whole job on one drop; returns the path of report.html.

    Holds the writer slot of the lake and of the output folder for the whole run: a second run on the
    same folders waits (in the log: "waiting for the writer slot") instead of writing beside this one.
    """
    settings = with_hmac_secret(load_settings(as_of=as_of, horizon=horizon))
    lake_paths = LakePaths(lake or settings.lake_dir)
    out_paths = OutPaths(out)
    with one_writer({"lake": lake_paths.location, "out": out_paths.location}):
        begin_outputs(out_paths)  # a URL output is written locally, then copied whole (flows/lake/remote.py)
        work = run_work_folder(out_paths)
        with local_drop(drop) as drop_dir:
            report = _run_job(drop_dir, lake_paths, out_paths, work, settings, drop_location=str(drop))
        shutil.rmtree(work, ignore_errors=True)  # a failed run's folder stays for inspection
        publish_outputs(out_paths, get_run_logger().info)
    return out_paths.at(report)


def _run_job(
    drop: Path,
    lake: LakePaths,
    out: OutPaths,
    work: Path,
    settings: Settings,
    *,
    drop_location: str | None = None,
) -> Path:
    """The stages of one run; ``drop_location`` is the drop as given (a URL drop is read from a local
    copy, ``drop``), for run.json."""
    logger = get_run_logger()
    started_at = datetime.now(UTC)
    stage = StageTimer()
    loaded = stage("ingest", tasks.ingest, drop, lake, settings, settings.as_of)
    validation = stage("validate", tasks.validate, lake, settings, settings.as_of, loaded)
    as_of = tasks.resolve_as_of(lake, settings.as_of)
    logger.info(f"as-of date {as_of}, horizon {settings.horizon} days, work folder {work}")
    # the model builds its own features; "train" is both (the model's metrics split them)
    # independent stages: one after the other locally, side by side on Dask (flows/runners.py)
    model, patterns = fan_out(
        stage,
        ("train", tasks.train, (lake, work, settings, as_of)),
        ("mine", tasks.mine, (lake, out, settings, as_of)),
    )
    forecasts = stage("forecast", tasks.forecast, lake, work, settings, model, patterns)
    advice = stage("recommend", tasks.recommend, lake, out, settings, as_of, forecasts, patterns)
    info: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon": settings.horizon,
        "started_at": started_at.isoformat(),
        "inputs": {"drop": drop_location or str(drop), "lake": lake.location},
        "versions": package_versions(),
        **loaded.to_json(),
        "validation": validation.to_json(),
        "model": model.metrics,
        "advice": advice.to_json(),
        "timings_s": stage.timings,
    }
    report = stage("report", tasks.report, out, info, lake, settings)
    info["finished_at"] = datetime.now(UTC).isoformat()
    write_run_json(out, info)
    publish_run(out.assortment, report)
    logger.info(f"done: report at {report}")
    return report
