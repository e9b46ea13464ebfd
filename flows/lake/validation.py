"""Validate the lake: read the tables a load touched and hand them to the suites' runner.

Reference tables are one batch each. A fact table's touched partitions are read into few batches of
whole partitions (up to ``max_batch_rows`` rows each: one per table for a small load), each row
carrying the first and last day of the partition it was read from, so the suite can check that it
lies in that month. ``per_partition`` makes one batch per partition instead (a failure then names
its month). A key is unique within its batch: store-sales keys hold their date, so they cannot repeat
across partitions; an online order line is checked within the months of its batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from data_contracts.rules import latest_allowed
from data_contracts.schemas import FACT_TABLES, REFERENCE_TABLES, TableContract
from data_contracts.suites import KEY_CODE, PARTITION_END, PARTITION_START, derived_columns, key_code
from data_contracts.validate import (
    DICTIONARY_COLUMNS,
    Batch,
    ValidationSummary,
    preload_gx,
    validate_frames,
)
from flows.lake.load_report import IngestReport, LoadedPart
from flows.lake.paths import PART_FILE, LakePaths, fact_partitions, partition_files

__all__ = ["ValidationSummary", "preload_gx", "validate_lake"]

# Rows per fact batch (whole partitions; a partition larger than this is one batch of its own). GX
# costs about 0.15 s a batch whatever its size, and the next batch is prepared while one is checked.
# Large demo (17.6 M store-sales rows from memory, 2 cores, quiet, 2026-12-06): validation 3.0-3.2 s
# with batches of 3 M rows (peak 2.2-2.3 GB), 2.9-3.0 s with 4.5-6 M (2.4-2.7 GB), 3.2-3.5 s with 9 M
# (the checks wait for the first, larger batch). Before GX got frames without copies (2026-12-05),
# larger batches cost more per row.
MAX_BATCH_ROWS = 6_000_000


def _reference_values(lake: LakePaths, contract: TableContract) -> dict[str, set[str]]:
    """Column -> the ids the lake's reference tables hold for it (empty when a table is unreadable)."""
    out = {}
    for col, (table, ref) in contract.references.items():
        try:
            values = pl.read_parquet(lake.table(table) / PART_FILE, columns=[ref]).get_column(ref)
        except (OSError, pl.exceptions.PolarsError):
            values = pl.Series(ref, [], pl.String)  # a missing table fails its own suite; no ids known
        out[col] = set(values.drop_nulls().cast(pl.String).unique().to_list())
    return out


@dataclass
class _InMemory:
    """The rows a load wrote, by table and partition (taken out of its report), and its files."""

    parts: dict[str, dict[tuple[int, int], list[LoadedPart]]]
    written: set[Path]

    @classmethod
    def take(cls, report: IngestReport | None) -> _InMemory | None:
        if report is None or report.loaded_rows is None:
            return None
        parts: dict[str, dict[tuple[int, int], list[LoadedPart]]] = {}
        for table, loaded in report.loaded_rows.items():
            for item in loaded:
                parts.setdefault(table, {}).setdefault(item[0], []).append(item)
        report.loaded_rows = None  # from here on only this walk holds them: freed as validated
        return cls(parts, {f for files in report.loaded_files.values() for f in files})


def _partition_rows(
    lake: LakePaths, contract: TableContract, part: tuple[int, int], memory: _InMemory | None
) -> pl.DataFrame | None:
    """All rows of one partition with its first and last day and the suite's derived columns (None
    when it holds no rows): the rows the load wrote from ``memory`` (with the key hashes ingest
    computed), the rest read from the lake.

    Columns are added to each part (the load's files, the lake's) before they are joined: on the
    joined frame, whose columns are split in different places (a column ingest set to one value is
    one piece), polars first copies every column into one piece (0.5 CPU-s for the 17.5 M rows of the
    large demo, copied once more on the way to pandas) and computes the derived columns several
    times slower.
    """
    files = partition_files(lake, contract.name, *part)
    compound = len(contract.key) > 1
    frames = []
    if memory is not None:
        files = [f for f in files if f not in memory.written]
        for _, rows, keys in memory.parts.get(contract.name, {}).pop(part, []):
            if compound:
                rows = rows.with_columns(keys.alias(KEY_CODE) if keys is not None else key_code(contract.key))
            frames.append(rows)
    if files:
        read = pl.read_parquet(files, hive_partitioning=False)
        frames.insert(0, read.with_columns(key_code(contract.key)) if compound else read)
    year, month = part
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    bounds = (pl.lit(date(year, month, 1)).alias(PARTITION_START), pl.lit(last).alias(PARTITION_END))
    frames = [f.with_columns(bounds) for f in frames if f.height]
    frames = [f.with_columns(*derived_columns(f.schema), *_encoded(f, contract)) for f in frames]
    return pl.concat(frames, rechunk=False) if frames else None


def _encoded(part: pl.DataFrame, contract: TableContract) -> list[pl.Series | pl.Expr]:
    """The text columns GX gets dictionary-encoded (see data_contracts.validate.to_gx_frame) as polars
    categoricals (expressions: the casts run side by side in polars' pool). A lineage column that
    holds one value in this part (the source file of a file's rows) is checked to (one comparison per
    row) and repeated as one code, without hashing each row's text."""
    out: list[pl.Series | pl.Expr] = []
    for name in (*contract.references, *DICTIONARY_COLUMNS):
        col = part.get_column(name) if name in part.columns else None
        if col is None or col.dtype != pl.String:
            continue
        first = col[0] if name in DICTIONARY_COLUMNS else None  # ids: mostly many values per part
        if first is not None and col.null_count() == 0 and bool((col == first).all()):
            out.append(pl.repeat(first, part.height, dtype=pl.Categorical, eager=True).alias(name))
        else:
            out.append(pl.col(name).cast(pl.Categorical))
    return out


def _drain(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The frames as one (sharing their memory), emptying the list: once the runner drops the batch,
    nothing here holds its rows while the next batch is read."""
    batch = pl.concat(frames, rechunk=False)
    frames.clear()
    return batch


def _span(parts: list[tuple[int, int]]) -> str:
    first, last = (f"{y:04d}-{m:02d}" for y, m in (parts[0], parts[-1]))
    return first if first == last else f"{first}..{last}"


def _fact_batches(
    lake: LakePaths,
    contract: TableContract,
    months: Iterable[tuple[int, int]],
    *,
    per_partition: bool,
    max_rows: int,
    unreadable: list[tuple[str, str, str]],
    memory: _InMemory | None,
) -> Iterator[Batch]:
    """Batches of a fact table's partitions ``months``: one per partition, or as few as ``max_rows``
    allows. A partition that cannot be read goes into ``unreadable`` (table, month, error)."""
    frames: list[pl.DataFrame] = []
    parts: list[tuple[int, int]] = []
    for part in sorted(set(months)):
        try:
            df = _partition_rows(lake, contract, part, memory)
        except (OSError, pl.exceptions.PolarsError) as exc:
            unreadable.append((contract.name, _span([part]), str(exc)[:300]))
            continue
        if df is None:
            continue  # a partition a load touched but left empty has nothing to check
        if frames and (per_partition or sum(f.height for f in frames) + df.height > max_rows):
            yield contract, _span(parts), _drain(frames)
            parts = []
        frames.append(df)
        parts.append(part)
        del df
    if frames:
        yield contract, _span(parts), _drain(frames)


def _batches(
    lake: LakePaths,
    partitions: Mapping[str, Iterable[tuple[int, int]]] | None,
    *,
    per_partition: bool,
    max_rows: int,
    unreadable: list[tuple[str, str, str]],
    memory: _InMemory | None,
) -> Iterator[Batch]:
    for contract in REFERENCE_TABLES:
        path = lake.table(contract.name) / PART_FILE
        if path.exists():
            yield contract, "all", pl.read_parquet(path, hive_partitioning=False)
    for contract in FACT_TABLES:
        months = (
            fact_partitions(lake, contract.name) if partitions is None else partitions.get(contract.name, ())
        )
        yield from _fact_batches(
            lake,
            contract,
            months,
            per_partition=per_partition,
            max_rows=max_rows,
            unreadable=unreadable,
            memory=memory,
        )


def validate_lake(
    lake: LakePaths,
    *,
    as_of: date | None = None,
    min_date: date = date(2000, 1, 1),
    partitions: Mapping[str, Iterable[tuple[int, int]]] | None = None,
    progress: Callable[[str], None] | None = None,
    max_future_days: int = 0,
    per_partition: bool = False,
    max_batch_rows: int = MAX_BATCH_ROWS,
    loaded: IngestReport | None = None,
) -> ValidationSummary:
    """Validate every reference table and the fact partitions; write Data Docs into ``lake.docs``.

    ``partitions`` limits the facts to the (year, month) pairs given per table (those a load touched;
    a table not named is not validated). Fact dates may not lie after ``as_of`` (default: today) plus
    ``max_future_days`` (the bound ingest quarantines by) nor before ``min_date``. The Data Docs
    show this run's batches only: GX drops pages whose results it no longer holds, so a fixed
    partition's old failure does not linger. Returns the summary; never raises on a failed expectation.

    ``loaded``: the report of the load just made; its partitions are validated when ``partitions`` is
    not given, and the rows it kept in memory (ingest_drop's ``keep_rows``) are validated from there
    instead of being read back (the partitions' other files are read as before); the report's
    ``loaded_rows`` are released as they are validated.

    On Dask (``--runner dask``) flows.fanout.validate_lake runs the same batches in parts, one per
    worker, each with its own Data Docs site (flows/lake/validation_parts.py): the same summary.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    preload_gx()
    contracts = (*REFERENCE_TABLES, *FACT_TABLES)
    refs = {c.name: _reference_values(lake, c) for c in contracts if c.references}
    unreadable: list[tuple[str, str, str]] = []
    memory = _InMemory.take(loaded)
    if partitions is None and loaded is not None:
        partitions = loaded.changed_partitions
    batches = _batches(
        lake,
        partitions,
        per_partition=per_partition,
        max_rows=max_batch_rows,
        unreadable=unreadable,
        memory=memory,
    )
    summary = validate_frames(
        contracts,
        batches,
        docs_dir=lake.docs,
        reference_values=refs,
        as_of=latest_allowed(as_of, max_future_days),
        min_date=min_date,
        progress=progress,
    )
    record_unreadable(summary, unreadable)
    return summary


def record_unreadable(summary: ValidationSummary, unreadable: Iterable[tuple[str, str, str]]) -> None:
    """Add each partition that could not be read, (table, month, error), to ``summary`` as a failure."""
    for table, batch, error in unreadable:
        rec = summary.tables[table]
        rec["failures"].append({"batch": batch, "rule": "partition is readable Parquet", "error": error})
        rec["failed"] = list(dict.fromkeys([*rec["failed"], "partition is readable Parquet"]))
        rec["success"] = False
        summary.success = False
