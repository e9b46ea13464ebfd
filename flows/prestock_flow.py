"""The `localshelf-prestock` flow: the order-ready pre-stock plan for an upcoming (or hypothetical)
event, from the last run's patterns and forecast; no ingest, no training. Around flows/prestock.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from flows.pipeline import HOUR, OutDir
from flows.runtime import one_writer

EventType = Annotated[str, Field(min_length=1, description="The event's type, e.g. hurricane.")]
Region = Annotated[str, Field(min_length=1, description="The region it hits, e.g. GULF_COAST, or ALL.")]


@flow(name="localshelf-prestock", log_prints=True, timeout_seconds=HOUR)
def localshelf_prestock(
    out: OutDir,
    event_type: EventType,
    region: Region,
    start: Annotated[date, Field(description="First day of the event.")],
    end: Annotated[date, Field(description="Last day of the event.")],
    name: Annotated[str | None, Field(description="The event's name; default: its type.")] = None,
) -> str:
    """Write the plan to OUT/prestock-TYPE-REGION-START/ and show its first lines; returns the Parquet
    path. Holds the output folder's writer slot, so it never reads a run's half-written outputs."""
    from flows.prestock import prestock_from_run

    with one_writer({"out": out}):
        # a local output folder only for now (issue 14: runs write URL outputs; this reads a folder)
        result = prestock_from_run(
            Path(out), event_type=event_type, region=region, start=start, end=end, name=name
        )
    get_run_logger().info(f"prestock: {result.message} ({result.lines:,} lines) in {result.folder}")
    create_markdown_artifact(
        f"## Pre-stock: {name or event_type} in {region}, {start} to {end}\n\n{result.message}\n\n"
        f"{result.lines:,} order lines in `{result.parquet}` and `{result.csv.name}`.\n",
        key="localshelf-prestock",
        description="The plan's verdict and where it was written.",
    )
    if result.lines:
        rows = pl.read_parquet(result.parquet).head(50).with_columns(pl.col(pl.Float64).round(2))
        create_table_artifact(
            rows.with_columns(pl.col(pl.Date).cast(pl.String)).to_dicts(),
            key="localshelf-prestock-lines",
            description="The first 50 order lines, by stock-by date.",
        )
    return str(result.parquet)
