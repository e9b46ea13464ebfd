"""A load's new rows as lake files, and the keys that collide with other rows.

Each batch of checked rows is written straight into the lake's format, one file per source file,
batch and monthly partition, staged for the commit: a first load into empty partitions is never read
back nor sorted. Beside each file the load keeps one 64-bit hash of every row's natural key. After
all files are read, the keys that occur twice in the load, or that the lake already holds, name the
partitions to merge (duplicates, corrections, a key moving to another month); every other staged
file is published as it was written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from data_contracts.rules import ROW
from data_contracts.schemas import FACT_SCHEMAS, PARTITION_DATE, TableContract
from flows.lake.commit import Commit
from flows.lake.merge import FILE_IDX, PART, WINNER, cross_partition_moves, value_columns
from flows.lake.paths import LakePaths, fact_partitions, partition_file, partition_files

# Written once, read by every later stage: lz4 decodes fast and costs little to write.
LAKE_COMPRESSION: Final = "lz4"
_K = "__key_hash"


@dataclass(frozen=True)
class Chunk:
    """One staged lake file: the rows of one source file's batch that fall in one partition."""

    file_idx: int  # order of the source file within its table's files
    part: tuple[int, int]  # (year, month)
    temp: Path  # where it is staged
    final: Path  # where the commit puts it
    rows: int
    keys: pl.Series  # the 64-bit hash of each row's natural key


def label(part: tuple[int, int]) -> str:
    """The partition's label "year-month"."""
    return f"{part[0]}-{part[1]}"


def key_hash(key: tuple[str, ...]) -> pl.Expr:
    """One 64-bit hash of a row's natural key (equal keys, equal hashes; the rare equal hash of two
    different keys only sends them to the merge, which compares the keys themselves)."""
    return pl.struct(list(key)).hash().alias(_K)


def _by_month(rows: pl.DataFrame, date_col: str) -> list[tuple[tuple[int, int], pl.DataFrame]]:
    """``rows`` split by the (year, month) of ``date_col``, in month order. Exports are mostly written
    in date order: then each month is a slice of the batch (no copy); otherwise rows are grouped."""
    if rows.height == 0:
        return []
    date = pl.col(date_col)
    month = rows.select((date.dt.year() * 12 + date.dt.month() - 1).alias("__ym")).to_series()
    if month.null_count() == 0 and month.is_sorted():
        starts = month.search_sorted(month.unique(maintain_order=True), side="left").to_list()
        ends = [*starts[1:], rows.height]
        return [(_year_month(month[a]), rows.slice(a, b - a)) for a, b in zip(starts, ends, strict=True)]
    groups = rows.with_columns(month).partition_by("__ym", as_dict=True, include_key=False)
    return [(_year_month(ym), part) for (ym,), part in sorted(groups.items())]


def _year_month(months: object) -> tuple[int, int]:
    """(year, month) of a month count year * 12 + month - 1."""
    year, month0 = divmod(int(months), 12)  # type: ignore[call-overload]
    return year, month0 + 1


def write_chunks(
    rows: pl.DataFrame,
    contract: TableContract,
    file_idx: int,
    seq: int,
    lake: LakePaths,
    commit: Commit,
    keep: Callable[[Chunk, pl.DataFrame], None] | None = None,
) -> list[Chunk]:
    """Stage ``rows`` (lake schema) as one lake file per monthly partition; returns the files.
    ``seq`` numbers this source file's files (a file read in several batches writes several);
    ``keep`` is handed each file with its rows (to keep them for validation)."""
    chunks: list[Chunk] = []
    for (year, month), part in _by_month(rows, PARTITION_DATE[contract.name]):
        n = seq + len(chunks)
        final = partition_file(lake, contract.name, year, month, commit.load_id, file_idx, n)
        temp = commit.stage(final)
        part.write_parquet(temp, compression=LAKE_COMPRESSION)
        keys = part.select(key_hash(contract.key)).to_series()
        chunks.append(Chunk(file_idx, (year, month), temp, final, part.height, keys))
        if keep is not None:
            keep(chunks[-1], part)
    return chunks


def scan_chunks(chunks: list[Chunk]) -> pl.LazyFrame:
    """The staged rows of ``chunks`` with their file order (``_file_idx``), for the merge."""
    return pl.concat(
        [pl.scan_parquet(c.temp).with_columns(pl.lit(c.file_idx, pl.Int64).alias(FILE_IDX)) for c in chunks]
    )


def _distinct(sorted_keys: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (NumPy's ``unique`` hashes: many times slower here)."""
    if sorted_keys.size == 0:
        return sorted_keys
    return sorted_keys[np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]]


def _holds_any(keys: np.ndarray, found: np.ndarray) -> bool:
    """Whether ``keys`` holds any value of the sorted, distinct ``found`` (binary search)."""
    at = np.minimum(np.searchsorted(found, keys), found.size - 1)
    return bool((found[at] == keys).any())


def colliding_partitions(
    lake: LakePaths, contract: TableContract, chunks: list[Chunk]
) -> set[tuple[int, int]]:
    """The partitions of ``chunks`` holding a key that occurs twice in the load or that the lake holds
    (in the same partition when the key holds the partition date, in any otherwise).

    Sorting the 64-bit hashes finds repeats at a fraction of a hash table's cost (NumPy's vectorized
    sort: about 0.3 s for 17 M keys against 3 s for polars' ``is_duplicated``)."""
    table, key = contract.name, contract.key
    ordered = np.sort(np.concatenate([c.keys.to_numpy() for c in chunks]))
    repeated = ordered[1:] == ordered[:-1]
    found = _distinct(ordered[1:][repeated])
    if PARTITION_DATE[table] in key:  # a key lives in the partition of its date only
        lake_parts = sorted({c.part for c in chunks if partition_files(lake, table, *c.part)})
    else:
        lake_parts = fact_partitions(lake, table)
    if lake_parts:
        files = [f for p in lake_parts for f in partition_files(lake, table, *p)]
        held = _distinct(
            np.sort(pl.scan_parquet(files).select(key_hash(key)).collect().to_series().to_numpy())
        )
        both = np.intersect1d(_distinct(ordered), held, assume_unique=True)
        found = _distinct(np.sort(np.concatenate([found, both])))
    if found.size == 0:
        return set()
    return {c.part for c in chunks if _holds_any(c.keys.to_numpy(), found)}


def label_key(part_label: str) -> tuple[int, int]:
    """(year, month) of a partition label "year-month"."""
    year, month = (int(x) for x in part_label.split("-"))
    return year, month


def key_moves(
    lake: LakePaths, contract: TableContract, spooled: dict[str, list[Chunk]]
) -> pl.DataFrame | None:
    """For a table whose key does not hold its partition date, the versions of keys that the load
    moves to another month (see merge.cross_partition_moves); None when keys cannot move."""
    if PARTITION_DATE[contract.name] in contract.key or not spooled:
        return None
    keys = list(contract.key)
    values = value_columns(FACT_SCHEMAS[contract.name], contract.key)
    staged = pl.concat(
        [
            scan_chunks(chunks).select(*keys, *values, FILE_IDX, ROW, pl.lit(part_label).alias(PART))
            for part_label, chunks in spooled.items()
        ]
    )
    lake_keys = [
        pl.scan_parquet(files).select(keys).with_columns(pl.lit(f"{year}-{month}").alias(PART))
        for year, month in fact_partitions(lake, contract.name)
        if (files := partition_files(lake, contract.name, year, month))
    ]
    empty = pl.LazyFrame(schema={**{k: FACT_SCHEMAS[contract.name][k] for k in keys}, PART: pl.String})
    in_lake = pl.concat(lake_keys) if lake_keys else empty
    return cross_partition_moves(staged, in_lake, key=contract.key, values=values)


def merge_inputs(
    lake: LakePaths,
    table: str,
    key: list[str],
    part_label: str,
    spooled: dict[str, list[Chunk]],
    moves: pl.DataFrame | None,
) -> tuple[pl.LazyFrame | None, pl.LazyFrame | None, bool]:
    """The lake's and the load's rows to merge into partition ``part_label``: its own, less the keys
    whose newest version lies in another month, plus the versions of keys whose newest version lies
    here. Returns (existing, staged, whether lake rows leave this partition)."""
    year, month = label_key(part_label)
    files = partition_files(lake, table, year, month)
    existing = pl.scan_parquet(files) if files else None
    staged = scan_chunks(spooled[part_label]) if part_label in spooled else None
    if moves is None or moves.height == 0:
        return existing, staged, False
    leaving = moves.filter(pl.col(PART) == part_label)
    lake_out = leaving.filter(pl.col("in_lake")).select(key)
    staged_out = leaving.filter(~pl.col("in_lake")).select(key)
    if existing is not None and lake_out.height:
        existing = existing.join(lake_out.lazy(), on=key, how="anti")
    if staged is not None and staged_out.height:
        staged = staged.join(staged_out.lazy(), on=key, how="anti")
    for (source, in_lake), arriving in moves.filter(pl.col(WINNER) == part_label).group_by(PART, "in_lake"):
        keys = arriving.select(key).lazy()
        if in_lake:
            lake_files = partition_files(lake, table, *label_key(str(source)))
            rows = pl.scan_parquet(lake_files).join(keys, on=key, how="semi")
            existing = rows if existing is None else pl.concat([existing, rows])
        else:
            rows = scan_chunks(spooled[str(source)]).join(keys, on=key, how="semi")
            staged = rows if staged is None else pl.concat([staged, rows])
    return existing, staged, lake_out.height > 0
