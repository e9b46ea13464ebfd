"""Reading a drop's files as all-string batches, whatever their format.

CSV (optionally gzip) is read with pyarrow's streaming reader, every column as a string, so
identifiers keep their leading zeros and memory does not grow with the file. A row with the wrong
number of fields does not stop the file: it comes back in its place (its own row number) with the
line in ``_malformed`` and the rules quarantine it. Parquet is read with
``iter_batches`` and its typed columns are turned into the same strings, so one set of row rules
applies to every format. Headers match the contract case-insensitively and ignoring spaces.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from data_contracts.rules import FALSE_WORDS, MALFORMED, PERSONAL, ROW, TRUE_WORDS
from data_contracts.schemas import TableContract

FACT_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Errors a broken file raises while being read: all become a ContractError naming the file.
_READ_ERRORS = (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError)


class ContractError(Exception):
    """A break of the input contract that stops the run (nothing is written)."""

    def __init__(self, table: str, rule: str, message: str, *, file: str | None = None) -> None:
        self.table = table
        self.rule = rule
        self.file = file
        where = f"{file}: " if file else ""
        super().__init__(f"{table}: {where}{rule}: {message}")


@dataclass(frozen=True)
class SourceFile:
    """One file of the drop, its header matched to the contract."""

    path: Path
    rel: str  # path relative to the drop, as reported
    contract: TableContract
    fmt: str  # "csv", "csv.gz" or "parquet"
    columns: dict[str, str]  # contract column -> column name in the file
    extra: tuple[str, ...]  # columns the contract does not know (ignored)
    empty: bool  # no header at all (0 bytes)


def file_format(path: Path) -> str | None:
    """Return "csv", "csv.gz" or "parquet" for a fact file name, None for anything else."""
    name = path.name.lower()
    return next((s.lstrip(".") for s in FACT_SUFFIXES if name.endswith(s)), None)


def _csv_header(path: Path, fmt: str, rel: str, table: str) -> list[str] | None:
    """Return the header fields of a CSV file, or None when the file holds nothing at all."""
    try:
        opener = gzip.open if fmt == "csv.gz" else open
        with opener(path, "rb") as fh:
            line = fh.readline()
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContractError(table, "not UTF-8", f"the header is not UTF-8 text ({exc})", file=rel) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise ContractError(table, "unreadable file", str(exc), file=rel) from exc
    if not text.strip():
        return None
    return next(csv.reader(io.StringIO(text)))


def _match_header(
    names: list[str], contract: TableContract, rel: str
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Map contract columns to file columns; raise when a required one is missing or one is doubled."""
    wanted = set(contract.schema.names())
    columns: dict[str, str] = {}
    extra: list[str] = []
    for name in names:
        key = name.strip().lower()
        if key in columns:
            raise ContractError(contract.name, "duplicate column", f"column {key!r} appears twice", file=rel)
        if key in wanted:
            columns[key] = name
        else:
            extra.append(name)
    missing = [c for c in contract.required if c not in columns]
    if missing:
        hint = ""
        if len(names) == 1 and any(d in names[0] for d in ";\t|"):
            hint = " (the file does not look comma-separated)"
        raise ContractError(
            contract.name,
            "missing required column",
            f"missing {', '.join(missing)}; found {', '.join(repr(n) for n in names)}{hint}",
            file=rel,
        )
    return columns, tuple(extra)


def open_source(path: Path, rel: str, contract: TableContract) -> SourceFile:
    """Read the header (CSV) or schema (Parquet) of one file and match it to the contract."""
    fmt = file_format(path) or "csv"
    if path.stat().st_size == 0:
        return SourceFile(path, rel, contract, fmt, {}, (), empty=True)
    if fmt == "parquet":
        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except _READ_ERRORS as exc:
            raise ContractError(
                contract.name, "unreadable file", f"not a Parquet file ({exc})", file=rel
            ) from exc
    else:
        header = _csv_header(path, fmt, rel, contract.name)
        if header is None:
            return SourceFile(path, rel, contract, fmt, {}, (), empty=True)
        names = header
    columns, extra = _match_header(names, contract, rel)
    return SourceFile(path, rel, contract, fmt, columns, extra, empty=False)


@dataclass(frozen=True)
class _Malformed:
    """A CSV row with the wrong number of fields (skipped by the parser, kept for the quarantine)."""

    row: int  # 1-based data row number
    raw: str  # JSON: expected and actual field counts and the line (masked if the table is personal)


def _malformed_handler(src: SourceFile, found: list[_Malformed]) -> Callable[[Any], str]:
    """Return pyarrow's invalid-row handler: keep the row in ``found`` and skip it."""
    personal = any(c in PERSONAL for c in src.contract.schema.names())

    def handle(row: Any) -> str:
        if row.number is None:  # pyarrow could not say where: the file is an error, as before
            return "error"
        line = "*** (not shown: the table holds personal data)" if personal else row.text
        raw = {"expected_fields": row.expected_columns, "fields": row.actual_columns, "line": line}
        # pyarrow counts the header as row 1: data row = number - 1
        found.append(_Malformed(row.number - 1, json.dumps(raw, ensure_ascii=False)))
        return "skip"

    return handle


def _csv_batches(src: SourceFile, batch_rows: int, found: list[_Malformed]) -> Iterator[pa.RecordBatch]:
    """Stream the contract's columns as strings; rows with the wrong field count go to ``found``."""
    header = _csv_header(src.path, src.fmt, src.rel, src.contract.name) or []
    # positional names: extra columns may repeat or collide; only the contract's ones are converted
    positional = [f"c{i}" for i in range(len(header))]
    by_name = {name: f"c{i}" for i, name in enumerate(header)}
    wanted = [by_name[src.columns[c]] for c in src.columns]
    stream = pa.input_stream(str(src.path), compression="gzip" if src.fmt == "csv.gz" else None)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            column_names=positional,
            skip_rows=1,
            block_size=min(max(batch_rows * 64, 1 << 16), 1 << 28),
            use_threads=False,  # serial parsing: row numbers of skipped rows are exact
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=_malformed_handler(src, found)),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(wanted, pa.string()),
            include_columns=wanted,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in reader:
        yield batch.rename_columns(list(src.columns))


def _as_string(s: pl.Series, target: pl.DataType, rel: str, table: str) -> pl.Series:
    """Turn a typed Parquet column into the strings a CSV would hold; raise when it cannot stand for
    the contract's type (e.g. a date stored as a number)."""
    dtype = s.dtype
    if dtype == pl.String:
        return s
    ok = (
        (target == pl.String and (dtype.is_integer() or dtype == pl.Categorical))
        or (target == pl.Date and (dtype == pl.Date or isinstance(dtype, pl.Datetime)))
        or (isinstance(target, pl.Datetime) and isinstance(dtype, pl.Datetime))
        or (target.is_numeric() and (dtype.is_numeric() or dtype == pl.Boolean))
        or (target == pl.Boolean and (dtype == pl.Boolean or dtype.is_integer()))
    )
    if not ok:
        raise ContractError(
            table,
            "wrong column type",
            f"column {s.name!r} is {dtype} in the Parquet file, expected {target}",
            file=rel,
        )
    if target == pl.Date:
        return s.dt.date().dt.to_string("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:  # no offset: the rules will say so
            return s.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
        return s.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.f+00:00")
    return s.cast(pl.String)


def _parquet_arrow(src: SourceFile, batch_rows: int) -> Iterator[pa.RecordBatch]:
    pf = pq.ParquetFile(src.path)
    yield from pf.iter_batches(batch_size=batch_rows, columns=list(src.columns.values()))


def _parquet_batches(src: SourceFile, batch_rows: int) -> Iterator[pa.RecordBatch | pl.DataFrame]:
    for batch in _parquet_arrow(src, batch_rows):
        df = pl.from_arrow(batch)
        assert isinstance(df, pl.DataFrame)
        yield pl.DataFrame(
            [
                _as_string(df[src.columns[c]], src.contract.schema[c], src.rel, src.contract.name).alias(c)
                for c in src.columns
            ]
        )


def _numbered(
    df: pl.DataFrame, start: int, skipped: list[_Malformed], *, last: bool = False
) -> tuple[pl.DataFrame, int]:
    """Give ``df``'s rows their data row numbers from ``start`` on, leaving out the numbers of the
    malformed rows, and put those rows (all columns null, ``_malformed`` set) in their places.

    Returns the frame and the next row number. Malformed rows after the batch stay in ``skipped``
    unless ``last`` (the end of the file) takes them all.
    """
    n = df.height
    taken = np.array(sorted(m.row for m in skipped if m.row >= start), dtype=np.int64)
    end = start + n
    while True:  # the good rows take the numbers the parser did not skip: widen until n are free
        inside = int(np.searchsorted(taken, end))
        if start + n + inside == end:
            break
        end = start + n + inside
    numbers = np.arange(start, end, dtype=np.int64)
    if inside:
        numbers = numbers[~np.isin(numbers, taken[:inside])]
    here = list(skipped) if last else [m for m in skipped if m.row < end]
    for m in here:
        skipped.remove(m)
    df = df.with_columns(pl.Series(ROW, numbers), pl.lit(None, pl.String).alias(MALFORMED))
    if here:
        bad = pl.DataFrame(
            {ROW: [m.row for m in here], MALFORMED: [m.raw for m in here]},
            schema={ROW: pl.Int64, MALFORMED: pl.String},
        )
        df = pl.concat([df, bad], how="diagonal_relaxed").sort(ROW)
        end = max(end, int(cast(int, bad[ROW].max())) + 1)
    return df, end


def iter_raw(src: SourceFile, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Yield the file's rows in batches: every contract column as String (absent optional columns
    as nulls), ``_source_row`` (the 1-based data row number) and ``_malformed`` (null, or the JSON of
    a CSV row with the wrong number of fields). Raises ContractError when the file turns out
    unreadable part-way (the caller discards whatever it staged)."""
    if src.empty:
        return
    names = src.contract.schema.names()
    columns = [*names, ROW, MALFORMED]
    start = 1
    skipped: list[_Malformed] = []
    if src.fmt == "parquet":
        batches = _parquet_batches(src, batch_rows)
    else:
        batches = _csv_batches(src, batch_rows, skipped)
    try:
        for batch in batches:
            df = batch if isinstance(batch, pl.DataFrame) else pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            df = df.with_columns(pl.lit(None, pl.String).alias(c) for c in names if c not in src.columns)
            df, start = _numbered(df, start, skipped)
            yield df.select(columns)
        if skipped:  # malformed rows after the last good one
            empty = pl.DataFrame(schema=dict.fromkeys(names, pl.String))
            df, start = _numbered(empty, start, skipped, last=True)
            yield df.select(columns)
    except ContractError:
        raise
    except _READ_ERRORS as exc:
        rule = "not UTF-8" if "UTF8" in str(exc) or "utf-8" in str(exc) else "unreadable file"
        raise ContractError(
            src.contract.name, rule, f"reading stopped near data row {start}: {exc}", file=src.rel
        ) from exc


class NotTyped(Exception):
    """The typed fast path cannot read this file exactly: read it again as strings (``iter_raw``)."""


# Contract dtypes the typed path lets the reader parse (text and timestamps stay as written: the
# rules parse those) and the spellings it reads as booleans (any other sends the file to iter_raw).
_PA_TYPES: dict[type[pl.DataType], pa.DataType] = {
    pl.Date: pa.date32(),
    pl.Float64: pa.float64(),
    pl.Int64: pa.int64(),
    pl.Boolean: pa.bool_(),
}
_TRUE_VALUES = [v for w in TRUE_WORDS for v in dict.fromkeys((w, w.upper(), w.title()))]
_FALSE_VALUES = [v for w in FALSE_WORDS for v in dict.fromkeys((w, w.upper(), w.title()))]


def _typed_csv(src: SourceFile, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Stream the contract's columns, numbers, dates and booleans parsed by pyarrow (an empty field is
    null; a value it cannot parse raises); raises NotTyped at a row with the wrong field count."""
    header = _csv_header(src.path, src.fmt, src.rel, src.contract.name) or []
    positional = [f"c{i}" for i in range(len(header))]
    by_name = {name: f"c{i}" for i, name in enumerate(header)}
    wanted = {by_name[src.columns[c]]: c for c in src.columns}
    types = {col: _PA_TYPES.get(src.contract.schema[c].base_type(), pa.string()) for col, c in wanted.items()}

    def malformed(_row: Any) -> str:
        return "error"  # pyarrow raises: the file is read again as strings

    stream = pa.input_stream(str(src.path), compression="gzip" if src.fmt == "csv.gz" else None)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            column_names=positional, skip_rows=1, block_size=min(max(batch_rows * 64, 1 << 16), 1 << 28)
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=malformed),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=list(wanted),
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            true_values=_TRUE_VALUES,
            false_values=_FALSE_VALUES,
        ),
    )
    for batch in reader:
        yield batch.rename_columns(list(src.columns))


def _typed_parquet(src: SourceFile, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Parquet columns that already hold the contract's type (integers for a float column: the same
    value as their text would give); any other type raises NotTyped."""
    for df in (pl.from_arrow(b) for b in _parquet_arrow(src, batch_rows)):
        assert isinstance(df, pl.DataFrame)
        out = []
        for c in src.columns:
            s, target = df[src.columns[c]].alias(c), src.contract.schema[c]
            if s.dtype == target and not isinstance(target, pl.Datetime):
                out.append(s)
            elif target == pl.Float64 and s.dtype.is_integer():
                out.append(s.cast(pl.Float64))
            else:
                raise NotTyped(f"column {c} is {s.dtype}")
        yield pl.DataFrame(out)


def iter_typed(src: SourceFile, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Yield the file's rows in batches like ``iter_raw`` (no ``_malformed``), with the contract's
    dates, numbers and booleans parsed by the reader. Raises NotTyped as soon as a value, a row or a
    column cannot be read this way (the caller then reads the file with ``iter_raw``)."""
    if src.empty:
        return
    names = src.contract.schema.names()
    start = 1
    batches = _typed_parquet(src, batch_rows) if src.fmt == "parquet" else _typed_csv(src, batch_rows)
    try:
        for batch in batches:
            df = batch if isinstance(batch, pl.DataFrame) else pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            df = df.with_columns(
                pl.lit(None, src.contract.schema[c]).alias(c) for c in names if c not in src.columns
            )
            rows = pl.Series(ROW, np.arange(start, start + df.height, dtype=np.int64))
            start += df.height
            yield df.with_columns(rows).select(*names, ROW)
    except _READ_ERRORS as exc:  # a value pyarrow cannot parse; iter_raw says what a broken file is
        raise NotTyped(str(exc)[:200]) from exc


def read_whole(src: SourceFile, batch_rows: int) -> pl.DataFrame:
    """Return the whole file as one all-string frame (reference tables are small)."""
    schema = {**dict.fromkeys(src.contract.schema.names(), pl.String), ROW: pl.Int64, MALFORMED: pl.String}
    frames = list(iter_raw(src, batch_rows))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)
