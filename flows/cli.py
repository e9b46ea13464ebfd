"""The `localshelf` command line: demo, run, ingest, backtest, prestock."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.runners import Runner, RunnerChoice

# Quiet third-party phoning home before anything imports them.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    name="localshelf",
    help="Tell each store what to carry: localized assortments and event pre-stock plans.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()


class Size(StrEnum):
    small = "small"
    medium = "medium"
    large = "large"
    m5 = "m5"


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date of the form YYYY-MM-DD") from exc


AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Forecast origin YYYY-MM-DD (default: last sales date).")
]


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


RunnerOpt = Annotated[
    Runner, typer.Option(help="Where tasks run: local (this process) or dask (a Dask cluster).")
]
DaskAddress = Annotated[
    str | None,
    typer.Option(help="Scheduler of an existing Dask cluster (tcp://host:8786); default: a local one."),
]


def _run_job(
    drop: Path | str,
    out: Path | str,
    lake: Path | str | None,
    as_of: date | None,
    horizon: int | None,
    runner: RunnerChoice = RunnerChoice(),
) -> Path:
    from flows.lake.ingest import ContractError
    from flows.pipeline import localshelf_run
    from flows.runners import with_runner

    try:
        run_flow = with_runner(localshelf_run, runner)
        report = run_flow(drop=drop, out=out, lake=lake, as_of=as_of, horizon=horizon)
    except ContractError as exc:
        _fail(str(exc))
    return Path(report)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo drop, lake and outputs.")] = Path("demo"),
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 42,
    size: Annotated[
        Size, typer.Option(help="small (tests), medium (default), large, m5 (72 x 420 x 1,941 days).")
    ] = Size.medium,
    stores: Annotated[
        int | None, typer.Option(help="Stores (with --skus and --days: overrides --size).")
    ] = None,
    skus: Annotated[int | None, typer.Option(help="SKUs of the catalogue.")] = None,
    days: Annotated[int | None, typer.Option(help="Days of history.")] = None,
    runner: RunnerOpt = Runner.local,
    dask_address: DaskAddress = None,
) -> None:
    """Generate a demo drop with planted patterns and run the whole job on it."""
    from flows.demo.catalog import scaled_size
    from flows.demo.generate import generate_demo
    from flows.demo.truth import compare_with_truth

    name = size.value
    if stores or skus or days:
        if not (stores and skus and days):
            _fail("--stores, --skus and --days go together")
        name = scaled_size(stores, skus, days)  # type: ignore[arg-type]
    console.print(f"[bold]1/2[/] generating the {name} demo world (seed {seed}) in {out}/ ...")
    paths = generate_demo(out, size=name, seed=seed)
    os.environ["LOCALSHELF_HMAC_SECRET"] = paths.secret.read_text().strip()
    console.print(f"[bold]2/2[/] running the job on {paths.drop} ...")
    choice = RunnerChoice(runner, dask_address)
    report = _run_job(paths.drop, out / "out", out / "lake", None, None, choice)
    found = compare_with_truth(out / "out" / "patterns.parquet", paths.truth)
    console.print(f"planted patterns recovered: {found['summary']}")
    console.print(f"\n[bold green]Report:[/] {report.resolve()}")
    console.print(f"Outputs: {(out / 'out').resolve()}")


@app.command()
def run(
    drop: Annotated[str, typer.Option(help="The drop folder or URL (input contract).")],
    out: Annotated[str, typer.Option(help="The output folder or URL (output contract).")],
    lake: Annotated[
        str | None, typer.Option(help="The lake folder or URL (default: settings.lake_dir).")
    ] = None,
    as_of: AsOf = None,
    horizon: Annotated[
        int | None, typer.Option(help="Forecast horizon in days (default: settings.horizon).", min=1)
    ] = None,
    runner: RunnerOpt = Runner.local,
    dask_address: DaskAddress = None,
) -> None:
    """Run the whole job on a drop: ingest, validate, model, mine, recommend, report."""
    from flows.lake.fs import is_url

    if not is_url(drop) and not Path(drop).is_dir():
        raise typer.BadParameter(f"{drop!r} is not a folder", param_hint="'--drop'")
    report = _run_job(drop, out, lake, _parse_date(as_of), horizon, RunnerChoice(runner, dask_address))
    console.print(
        f"\n[bold green]Report:[/] {out.rstrip('/') + '/report.html' if is_url(out) else report.resolve()}"
    )


def _files_table(files: list[dict[str, Any]]) -> Table:
    table = Table(title="Files")
    table.add_column("file", overflow="fold", ratio=3)
    table.add_column("table", overflow="fold", ratio=1)
    for col in ("read", "loaded", "quarantined", "duplicate", "corrected"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in files:
        table.add_row(
            str(f.get("path")),
            str(f.get("table", "")),
            *(
                f"{int(f.get(k, 0) or 0):,}"
                for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "rows_corrected")
            ),
        )
    return table


@app.command()
def ingest(
    drop: Annotated[
        Path, typer.Option(help="The drop folder (input contract).", exists=True, file_okay=False)
    ],
    lake: Annotated[str, typer.Option(help="The lake folder or URL.")],
    report: Annotated[Path | None, typer.Option(help="Write the counts as JSON here.")] = None,
    as_of: AsOf = None,
) -> None:
    """Load a drop into the lake, validate what the load touched (Great Expectations) and print what
    happened to every row of every file. Exits 1 when the drop or the loaded data breaks its contract."""
    from flows.lake.ingest import ContractError, ingest_drop
    from flows.lake.paths import LakePaths
    from flows.lake.remote import local_lake, publish_docs
    from flows.lake.validation import validate_lake
    from flows.settings import load_settings

    settings = load_settings(as_of=_parse_date(as_of))
    lake_paths = LakePaths(lake)  # a URL lake: loaded in its local copy, published by a ref switch
    with local_lake(lake_paths, timeout_s=settings.ingest.lock_timeout_s) as target:
        try:
            result = ingest_drop(
                drop, target, settings, as_of=settings.as_of, progress=console.print, keep_rows=True
            )
        except ContractError as exc:
            _fail(str(exc))
    with local_lake(lake_paths, timeout_s=settings.ingest.lock_timeout_s) as target:
        validation = validate_lake(
            target,
            as_of=settings.as_of,
            min_date=settings.ingest.min_date,
            max_future_days=settings.ingest.max_future_days,
            partitions=result.changed_partitions,
            progress=console.print,
            loaded=result,
        )
    publish_docs(lake_paths)
    console.print(_files_table(result.files))
    for reason, n in sorted(result.quarantine_reasons.items(), key=lambda kv: -kv[1]):
        console.print(f"quarantined {n:,} rows: {reason}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning.get('message')}")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        counts = {**result.to_json(), "validation": validation.to_json()}
        report.write_text(json.dumps(counts, indent=2, default=str))
        console.print(f"counts written to {report}")
    console.print(f"Data Docs: {validation.docs_index}")
    if not validation.success:
        _fail("the loaded data breaks its contract:\n" + "\n".join(validation.failure_lines()))
    console.print("[bold green]validation passed[/]")


@app.command()
def backtest(
    drop: Annotated[
        Path, typer.Option(help="The drop folder (input contract).", exists=True, file_okay=False)
    ],
    out: Annotated[Path, typer.Option(help="The output folder; results go to OUT/backtest/.")],
    folds: Annotated[int, typer.Option(help="Number of held-out windows.", min=1)] = 3,
    horizon: Annotated[
        int | None, typer.Option(help="Days per held-out window (default: settings.horizon).", min=1)
    ] = None,
    lake: Annotated[Path | None, typer.Option(help="The lake folder (default: OUT/lake).")] = None,
    runner: RunnerOpt = Runner.local,
    dask_address: DaskAddress = None,
) -> None:
    """Did the model and the advice beat simple baselines on held-out time?"""
    from flows.backtest import localshelf_backtest
    from flows.runners import with_runner

    run_flow = with_runner(localshelf_backtest, RunnerChoice(runner, dask_address))
    path = run_flow(drop=drop, out=out, lake=lake, folds=folds, horizon=horizon)
    console.print(f"\n[bold green]Backtest report:[/] {Path(path).resolve()}")


def _plan_table(plan_path: Path, limit: int = 10) -> Table:
    import polars as pl

    plan = pl.read_parquet(plan_path)
    table = Table(title=f"First {min(limit, plan.height)} of {plan.height} order lines")
    for col in ("stock_by", "store_id", "sku", "name", "order_units", "extra_units"):
        table.add_column(col, overflow="fold", justify="right" if col.endswith("units") else "left")
    for r in plan.head(limit).iter_rows(named=True):
        table.add_row(
            str(r["stock_by"]), r["store_id"], r["sku"], str(r.get("name") or ""), str(r["order_units"]),
            f"{r['extra_units']:.1f}",
        )  # fmt: skip
    return table


@app.command()
def prestock(
    from_: Annotated[
        Path,
        typer.Option("--from", help="The output folder of a finished run.", exists=True, file_okay=False),
    ],
    event_type: Annotated[str, typer.Option(help="The event's type, e.g. hurricane.")],
    region: Annotated[str, typer.Option(help="The region it hits, e.g. GULF_COAST, or ALL.")],
    start: Annotated[str, typer.Option(help="First day of the event, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day of the event, YYYY-MM-DD.")],
    to: Annotated[
        Path | None, typer.Option(help="Folder for the plan (default: OUT/prestock-TYPE-REGION-START).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The event's name (default: its type).")] = None,
) -> None:
    """Plan the pre-stock for an upcoming or hypothetical event from the last run: no ingest, no training."""
    from flows.prestock import UnknownEventError, prestock_from_run

    first, last = _parse_date(start), _parse_date(end)
    try:
        if first is None or last is None:
            raise ValueError("--start and --end are both required")
        result = prestock_from_run(
            from_, event_type=event_type, region=region, start=first, end=last, to=to, name=name
        )
    except (UnknownEventError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    console.print(result.message)
    if result.lines:
        console.print(_plan_table(result.parquet))
    console.print(f"\n[bold green]Plan:[/] {result.parquet.resolve()} and {result.csv.name}")


if __name__ == "__main__":  # pragma: no cover
    app()
