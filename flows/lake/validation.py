"""Validate the lake: walk its reference tables and monthly fact partitions, hand each to the runner.

Every reference table is one batch; every fact table is validated one monthly partition at a time, so
memory stays bounded by the largest partition. The Data Docs site is written into ``lake/_docs``.
Nothing raises on a failed expectation: :func:`validate_lake` returns a summary and the caller decides
(the flow stops, since ingest should have quarantined every bad row).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data_contracts.rules import latest_allowed
from data_contracts.schemas import FACT_TABLES, REFERENCE_TABLES, TableContract
from data_contracts.suites import PARTITION_END, PARTITION_START
from data_contracts.validate import (
    DATA_SOURCE,
    DOCS_SITE,
    TableRun,
    ValidationSummary,
    gx_context,
    month_bounds,
    no_batch_fingerprint,
    run_batch,
    validation_definition,
)
from flows.lake.paths import PART_FILE, LakePaths, fact_partitions

if TYPE_CHECKING:
    from great_expectations.core.validation_definition import ValidationDefinition


def _reference_ids(lake: LakePaths, table: str, column: str) -> set[str]:
    """Return the distinct non-null values of ``table.column`` in the lake (empty when unreadable)."""
    path = lake.table(table) / PART_FILE
    try:
        values = pl.read_parquet(path, columns=[column], hive_partitioning=False).get_column(column)
    except (OSError, pl.exceptions.PolarsError):
        # a missing or broken reference table fails its own suite; here it just knows no ids
        return set()
    return set(values.drop_nulls().cast(pl.String).unique().to_list())


def _read_partition(folder: Path) -> pl.DataFrame | None:
    """Return all rows of one partition folder (None when it holds no data file)."""
    files = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith((".", "_")))
    return pl.read_parquet(files, hive_partitioning=False) if files else None


def _validate_reference(
    vd: ValidationDefinition, lake: LakePaths, contract: TableContract, run: TableRun, started: datetime
) -> None:
    """Validate one reference table as a single batch (skipped when it was never dropped)."""
    path = lake.table(contract.name) / PART_FILE
    if not path.exists():
        return
    df = pl.read_parquet(path, hive_partitioning=False)
    run.batches, run.rows = 1, df.height
    run.failures += run_batch(vd, df, label=f"{contract.name} all", run_started=started)


def _validate_fact(
    vd: ValidationDefinition,
    lake: LakePaths,
    contract: TableContract,
    months: Iterable[tuple[int, int]],
    run: TableRun,
    started: datetime,
    progress: Callable[[str], None],
) -> None:
    """Validate the given monthly partitions of one fact table, one batch each.

    Unique-key checks run per partition: store-sales keys contain the date, so they cannot repeat across
    months; an online order's (order_id, line_number) is only checked within its order_date's month.
    """
    for year, month in sorted(set(months)):
        label = f"{year:04d}-{month:02d}"
        try:
            df = _read_partition(lake.partition(contract.name, year, month))
        except (OSError, pl.exceptions.PolarsError) as exc:
            run.failures.append(
                {"batch": label, "rule": "partition is readable Parquet", "error": str(exc)[:300]}
            )
            continue
        if df is None or df.height == 0:
            continue  # a partition a load touched but left empty has nothing to check
        start, end = month_bounds(year, month)
        run.batches += 1
        run.rows += df.height
        run.failures += run_batch(
            vd,
            df,
            label=f"{contract.name} {label}",
            run_started=started,
            params={PARTITION_START: start, PARTITION_END: end},
        )
        del df  # free the partition before reading the next one
        progress(f"validated {contract.name} {label}")


def validate_lake(
    lake: LakePaths,
    *,
    as_of: date | None = None,
    min_date: date = date(2000, 1, 1),
    partitions: Mapping[str, Iterable[tuple[int, int]]] | None = None,
    progress: Callable[[str], None] | None = None,
    max_future_days: int = 0,
) -> ValidationSummary:
    """Validate every reference table and each fact partition; write Data Docs into ``lake.docs``.

    ``partitions`` limits the facts to the (year, month) pairs given per table (those a load touched;
    a table not named is not validated). Fact dates may not lie after ``as_of`` (default: today) plus
    ``max_future_days`` (the bound ingest quarantines by) nor before ``min_date``. The Data Docs
    show this run's batches only: GX drops pages whose results it no longer holds, so a fixed
    partition's old failure does not linger. Returns the summary; never raises on a failed expectation.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with no_batch_fingerprint():
        return _validate_lake(lake, latest_allowed(as_of, max_future_days), min_date, partitions, progress)


def _validate_lake(
    lake: LakePaths,
    as_of: date,
    min_date: date,
    partitions: Mapping[str, Iterable[tuple[int, int]]] | None,
    progress: Callable[[str], None] | None,
) -> ValidationSummary:
    """:func:`validate_lake` with its defaults resolved."""
    say = progress or (lambda _msg: None)
    context = gx_context(lake.docs)
    context.data_sources.add_pandas(DATA_SOURCE)
    started = datetime.now(UTC)
    tables: dict[str, dict] = {}
    for contract in (*REFERENCE_TABLES, *FACT_TABLES):
        refs = {col: _reference_ids(lake, t, ref) for col, (t, ref) in contract.references.items()}
        vd = validation_definition(context, contract, refs, as_of, min_date)
        run = TableRun(expectations=len(vd.suite.expectations))
        if contract.kind == "reference":
            _validate_reference(vd, lake, contract, run, started)
            say(f"validated {contract.name}")
        else:
            months = (
                fact_partitions(lake, contract.name)
                if partitions is None
                else partitions.get(contract.name, ())
            )
            _validate_fact(vd, lake, contract, months, run, started, say)
        tables[contract.name] = run.record()
    lake.docs.mkdir(parents=True, exist_ok=True)
    urls = context.build_data_docs(site_names=[DOCS_SITE])
    docs_index = str(lake.docs / "index.html") if DOCS_SITE in urls else None
    return ValidationSummary(
        success=all(t["success"] for t in tables.values()), tables=tables, docs_index=docs_index
    )
