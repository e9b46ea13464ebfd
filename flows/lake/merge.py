"""Merging a load's rows into one monthly partition: duplicates, corrections, newest wins.

Rows are compared by natural key and by a hash of their value columns (lineage columns aside).
Walking the versions of one key oldest first (the lake's row, then the load's files in order),
a version equal to the one before it is a duplicate; a different one is loaded, and a correction
when there was one before. The last loaded version (or the lake's row) is what the partition keeps.
Within one file, the same key twice with the same values is a duplicate; with other values the file
contradicts itself, and those rows are quarantined ("duplicate key in file with other values").
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from data_contracts.schemas import LINEAGE

FILE_IDX = "_file_idx"  # order of the file within the load; the lake's rows are -1
LAKE_IDX = -1
CONFLICT_RULE = "duplicate key in file with other values"
_H = "__h"


@dataclass(frozen=True)
class MergeResult:
    """The outcome of merging one partition."""

    rows: pl.DataFrame  # the partition after the merge, lake schema, sorted by key
    counts: pl.DataFrame  # per _file_idx: loaded, duplicate, corrected, conflict
    conflicts: pl.DataFrame  # _file_idx, _source_row, column, raw (JSON of the typed values)
    changed: bool  # False: the partition's content is what the lake already holds


def _flag_in_file(rows: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Number key groups (rows are sorted by key, file, row) and flag, per key and file, contradicting
    rows (conflict) and exact repeats after the first. Uses shifts, not windows over string keys: fast."""
    new_key = ~pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in key)
    new_file = new_key | pl.col(FILE_IDX).ne_missing(pl.col(FILE_IDX).shift(1))
    rows = rows.with_columns(new_key.cum_sum().alias("__kid"), new_file.alias("__new_file"))
    rows = rows.with_columns(pl.col("__new_file").cum_sum().alias("__fid"))
    if rows["__new_file"].all():  # every key once per source: nothing to contradict or repeat
        return rows.with_columns(pl.lit(False).alias("__conflict"), pl.lit(False).alias("__repeat"))
    conflict = (pl.col(_H).n_unique().over("__fid") > 1) & (pl.col(FILE_IDX) != LAKE_IDX)
    return rows.with_columns(conflict.alias("__conflict")).with_columns(
        (~pl.col("__new_file") & ~pl.col("__conflict")).alias("__repeat")
    )


def _versions(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per key and source, oldest first, flagged duplicate of / correction to the one before."""
    rows = rows.filter(~pl.col("__conflict") & ~pl.col("__repeat"))
    prev = pl.when(pl.col("__kid") == pl.col("__kid").shift(1)).then(pl.col(_H).shift(1))
    return rows.with_columns(
        (prev == pl.col(_H)).fill_null(False).alias("__dup"),
        prev.is_not_null().alias("__has_prev"),
    )


def _counts(flagged: pl.DataFrame, versions: pl.DataFrame) -> pl.DataFrame:
    staged = pl.col(FILE_IDX) != LAKE_IDX
    a = (
        flagged.filter(staged)
        .group_by(FILE_IDX)
        .agg(pl.col("__conflict").sum().alias("conflict"), pl.col("__repeat").sum().alias("repeat"))
    )
    b = (
        versions.filter(staged)
        .group_by(FILE_IDX)
        .agg(
            (~pl.col("__dup")).sum().alias("loaded"),
            pl.col("__dup").sum().alias("dup"),
            (~pl.col("__dup") & pl.col("__has_prev")).sum().alias("corrected"),
        )
    )
    return (
        a.join(b, on=FILE_IDX, how="full", coalesce=True)
        .fill_null(0)
        .select(
            FILE_IDX,
            pl.col("loaded").cast(pl.Int64),
            (pl.col("dup") + pl.col("repeat")).cast(pl.Int64).alias("duplicate"),
            pl.col("corrected").cast(pl.Int64),
            pl.col("conflict").cast(pl.Int64),
        )
    )


PART = "__part"  # "year-month" of the partition a row lies in (the spool folder's name)
WINNER = "__winner"  # the partition a key's newest version lies in


def value_columns(schema: pl.Schema, key: tuple[str, ...]) -> list[str]:
    """The columns compared to tell a duplicate from a correction (key and lineage aside)."""
    return [c for c in schema.names() if c not in key and c not in LINEAGE.names()]


def cross_partition_moves(
    staged: pl.LazyFrame, lake_keys: pl.LazyFrame, *, key: tuple[str, ...], values: list[str]
) -> pl.DataFrame:
    """Where a key's versions lie in other partitions than its newest version (tables whose key does
    not hold the partition date: a corrected online order may move to another month).

    ``staged``: the load's rows (key, values, _file_idx, _source_row, __part); ``lake_keys``: the lake's
    keys with their __part. The newest staged version of a key wins, leaving out rows that contradict
    another row of the same key in their own file (they are quarantined, never win). Returns one row
    per (key, __part) holding a version outside the winner's partition, with __winner and ``in_lake``
    (the version is the lake's); every version of such a key is to be merged in the winner's partition.
    """
    keys = list(key)
    rows = staged.with_columns(pl.struct(values).hash().alias(_H))
    contradicted = (pl.col(_H).n_unique().over([*keys, FILE_IDX]) > 1).alias("__conflict")
    winners = (
        rows.with_columns(contradicted)
        .filter(~pl.col("__conflict"))
        .sort([*keys, FILE_IDX, "_source_row"])
        .group_by(keys)
        .agg(pl.col(PART).last().alias(WINNER))
    )
    in_staged = rows.select(*keys, PART).unique().with_columns(pl.lit(False).alias("in_lake"))
    in_lake = lake_keys.select(*keys, PART).with_columns(pl.lit(True).alias("in_lake"))
    return (
        pl.concat([in_staged, in_lake])
        .join(winners, on=keys, how="inner")
        .filter(pl.col(PART) != pl.col(WINNER))
        .unique(maintain_order=False)
        .sort([PART, *keys, "in_lake"])
        .collect()
    )


def merge_partition(
    existing: pl.LazyFrame | None, staged: pl.LazyFrame, *, key: tuple[str, ...], schema: pl.Schema
) -> MergeResult:
    """Merge the load's ``staged`` rows (lake schema + _file_idx) into the ``existing`` partition.

    Returns the partition's new rows, per-file counts and the rows quarantined as conflicts.
    """
    keys = list(key)
    values = value_columns(schema, key)
    parts = [staged.with_columns(pl.col(FILE_IDX).cast(pl.Int64))]
    if existing is not None:
        parts.insert(
            0, existing.select(*schema.names()).with_columns(pl.lit(LAKE_IDX, pl.Int64).alias(FILE_IDX))
        )
    rows = (
        pl.concat(parts, how="vertical")
        .with_columns(pl.struct(values).hash().alias(_H))
        .sort([*keys, FILE_IDX, "_source_row"])
        .collect()
    )
    flagged = _flag_in_file(rows, keys)
    versions = _versions(flagged)
    counts = _counts(flagged, versions)
    kept = versions.filter(~pl.col("__dup"))
    last = pl.col("__kid").ne_missing(pl.col("__kid").shift(-1))  # sorted: the key's newest version
    merged = kept.filter(last).select(schema.names()).cast(schema)
    conflicts = flagged.filter(pl.col("__conflict")).select(
        FILE_IDX,
        "_source_row",
        pl.lit(", ".join(key)).alias("column"),
        pl.struct(pl.col([*keys, *values]).cast(pl.String)).struct.json_encode().alias("raw"),
    )
    return MergeResult(
        rows=merged, counts=counts, conflicts=conflicts, changed=int(counts["loaded"].sum()) > 0
    )
