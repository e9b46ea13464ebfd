"""The plan for one upcoming or hypothetical event, from the tables a finished run left in OUT.

No ingest and no training: the run's patterns, forecast and assortment, plus the lake's stores and
products (names, case packs) and last stock counts, are read and handed to
``models.advice.advise.plan_event``. Prefect-free, so the CLI answers in seconds and a deployment can
wrap it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from flows.lake.outputs import OutPaths, write_table
from flows.lake.paths import LakePaths, read_reference, scan_fact
from flows.settings import Settings, load_settings
from models.advice.advise import UnknownEventError, advised_pairs, check_event, plan_event
from models.advice.prestock import hypothetical_event, latest_on_hand

__all__ = ["PrestockResult", "UnknownEventError", "prestock_from_run"]


@dataclass(frozen=True)
class PrestockResult:
    """Where the plan went, how many order lines it has, and one sentence about it."""

    folder: Path
    parquet: Path
    csv: Path
    lines: int
    message: str


@dataclass(frozen=True)
class RunTables:
    """What a finished run left behind that a pre-stock plan needs."""

    as_of: date
    patterns: pl.DataFrame
    forecast: pl.DataFrame
    assortment: pl.DataFrame
    stores: pl.DataFrame | None  # None: the run's lake is gone (regions then come from the assortment)
    products: pl.DataFrame
    events: pl.DataFrame
    on_hand: pl.DataFrame | None


def read_run(out: Path) -> RunTables:
    """Read the run in ``out`` (run.json, patterns, forecast, assortment) and, when its lake is still
    there, the stores, products, events and last stock counts. Raises FileNotFoundError naming what is
    missing."""
    paths = OutPaths(out)
    missing = [
        p.name for p in (paths.run_json, paths.patterns, paths.forecast, paths.assortment) if not p.exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"{paths.root} is not a finished run's output folder: {', '.join(missing)} missing."
        )
    run = json.loads(paths.run_json.read_text())
    as_of = date.fromisoformat(run["as_of"])
    assortment = pl.read_parquet(paths.assortment)
    lake_dir = run.get("inputs", {}).get("lake")
    lake = LakePaths(Path(lake_dir)) if lake_dir and Path(lake_dir).exists() else None
    if lake is None:
        names = assortment.select("sku", "name").unique("sku") if "name" in assortment.columns else None
        products = names if names is not None else pl.DataFrame(schema={"sku": pl.String})
        return RunTables(as_of, pl.read_parquet(paths.patterns), pl.read_parquet(paths.forecast), assortment,
                         None, products, pl.DataFrame(schema={"event_type": pl.String}), None)  # fmt: skip
    return RunTables(
        as_of=as_of,
        patterns=pl.read_parquet(paths.patterns),
        forecast=pl.read_parquet(paths.forecast),
        assortment=assortment,
        stores=read_reference(lake, "stores"),
        products=read_reference(lake, "products"),
        events=read_reference(lake, "events"),
        on_hand=latest_on_hand(scan_fact(lake, "store_sales"), as_of=as_of),
    )


def known_names(run: RunTables) -> tuple[set[str], set[str]]:
    """Return (event types, regions) the run knows: types listed in events.csv or mined, store regions."""
    mined = run.patterns.filter(pl.col("kind") == "event_uplift")["event_type"].drop_nulls()
    types = set(mined.to_list()) | set(run.events["event_type"].drop_nulls().to_list())
    source = run.stores if run.stores is not None else run.assortment
    return types, set(source["region"].drop_nulls().to_list())


def prestock_from_run(
    out: Path,
    *,
    event_type: str,
    region: str,
    start: date,
    end: date,
    to: Path | None = None,
    name: str | None = None,
    settings: Settings | None = None,
) -> PrestockResult:
    """Write prestock.parquet and prestock.csv for one event to ``to`` (default: a folder named after
    the event under ``out``) from the run in ``out``; returns where, how many lines and a sentence
    (why the plan is empty, when it is). Raises UnknownEventError for an event type or region the run
    does not know, ValueError when end is before start."""
    if end < start:
        raise ValueError(f"The event ends ({end}) before it starts ({start}).")
    settings = settings or load_settings()
    run = read_run(out)
    types, regions = known_names(run)
    check_event(event_type, region, known_types=types, known_regions=regions)
    pairs = advised_pairs(run.assortment, run.stores)
    answer = plan_event(
        run.patterns, run.forecast, pairs, run.products,
        event=hypothetical_event(event_type, region, start, end, name),
        as_of=run.as_of, settings=settings.assortment, on_hand=run.on_hand,
        lead_days=settings.mining.event_lead_days, fdr_alpha=settings.mining.fdr_alpha,
    )  # fmt: skip
    message = answer.message
    if start <= run.as_of + timedelta(days=1):
        message += (
            f" Note: the run's data end on {run.as_of}; stock-by dates cannot be earlier than the next day."
        )
    folder = (
        Path(to)
        if to is not None
        else OutPaths(out).root / f"prestock-{event_type}-{region}-{start.isoformat()}"
    )
    parquet, csv = folder / "prestock.parquet", folder / "prestock.csv"
    write_table(answer.plan, parquet, csv=csv)
    return PrestockResult(folder, parquet, csv, answer.plan.height, message)
