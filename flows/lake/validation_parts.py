"""Validate the lake in parts, side by side (``--runner dask``): the batches of validate_lake, split.

The fact partitions a load touched are cut into the batches the local walk would make (whole
partitions, up to ``max_batch_rows`` rows each, or one per partition; row counts from the Parquet
footers), and those batches are dealt out into about one part per worker, balanced by rows; the
reference tables go into the first part. Each part runs where it is sent (``run``: a Dask worker): it
reads its partitions from the lake itself (the ingest's in-memory rows are never shipped), checks them
in its own ephemeral Great Expectations context and writes its own Data Docs site into
``lake.docs/parts/<i>/``. The parts' results are merged into one ValidationSummary: the same success
flag, failure lines, batch and row counts as validate_lake's, since every batch is the same one. A
plain index page at ``lake.docs/index.html`` (the summary's ``docs_index``) links the parts' sites.

One difference: a partition whose footer reads but whose rows do not is counted by its footer here,
so the batches after it may be cut elsewhere than in the local walk (the failures are the same).
"""

from __future__ import annotations

import html
import os
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.rules import latest_allowed
from data_contracts.schemas import CONTRACTS, FACT_TABLES, REFERENCE_TABLES
from data_contracts.validate import Batch, ValidationSummary, preload_gx, validate_frames
from flows.lake.load_report import IngestReport
from flows.lake.paths import PART_FILE, LakePaths, fact_partitions, partition_files
from flows.lake.validation import (
    MAX_BATCH_ROWS,
    _batches,
    _fact_batches,
    _reference_values,
    record_unreadable,
)

__all__ = ["Part", "plan_parts", "validate_in_parts", "validate_part"]

PARTS_DIR = "parts"
# one fact batch: (table, its partitions in order); read on the worker into exactly one batch
Unit = tuple[str, tuple[tuple[int, int], ...]]
# (function, one keyword-argument dict per call) -> results in order: each call on a worker
Run = Callable[[Callable[..., Any], Sequence[dict[str, Any]]], list[Any]]


@dataclass
class Part:
    """What one worker validates: the reference tables (or not) and fact batches, in the local order."""

    references: bool = False
    units: list[Unit] = field(default_factory=list)
    rows: int = 0  # of the facts and reference tables it holds (from the Parquet footers)


def _row_count(files: Sequence[Path]) -> int:
    """Rows in ``files`` from their footers (0 when there are none or one cannot be read: the local
    walk skips such a partition without counting it, and so does the plan)."""
    if not files:
        return 0
    try:
        return int(pl.scan_parquet(list(files), hive_partitioning=False).select(pl.len()).collect().item())
    except (OSError, pl.exceptions.PolarsError):
        return 0


def _units(
    lake: LakePaths, table: str, months: Iterable[tuple[int, int]], *, per_partition: bool, max_rows: int
) -> list[tuple[Unit, int]]:
    """A fact table's batches as the local walk (flows.lake.validation._fact_batches) cuts them, each
    with its rows. A partition without rows goes with the batch before it (it adds nothing to it)."""
    out: list[tuple[Unit, int]] = []
    parts: list[tuple[int, int]] = []
    rows = 0
    for part in sorted(set(months)):
        n = _row_count(partition_files(lake, table, *part))
        if n and rows and (per_partition or rows + n > max_rows):
            out.append(((table, tuple(parts)), rows))
            parts, rows = [], 0
        parts.append(part)
        rows += n
    if parts:
        out.append(((table, tuple(parts)), rows))
    return out


def plan_parts(
    lake: LakePaths,
    partitions: Mapping[str, Iterable[tuple[int, int]]] | None,
    *,
    n_parts: int,
    per_partition: bool = False,
    max_batch_rows: int = MAX_BATCH_ROWS,
) -> list[Part]:
    """Deal the batches of ``partitions`` (None: every partition in the lake) into at most ``n_parts``
    parts of about equal rows, the largest batch first; the reference tables into the first part.
    Each part keeps its batches in the local walk's order. Parts left empty are dropped (one remains)."""
    ref_rows = sum(_row_count([lake.table(c.name) / PART_FILE]) for c in REFERENCE_TABLES)
    parts = [Part(references=True, rows=ref_rows)] + [Part() for _ in range(max(1, n_parts) - 1)]
    order: dict[Unit, int] = {}
    sized: list[tuple[Unit, int]] = []
    for contract in FACT_TABLES:
        months = (
            fact_partitions(lake, contract.name) if partitions is None else partitions.get(contract.name, ())
        )
        for unit, rows in _units(
            lake, contract.name, months, per_partition=per_partition, max_rows=max_batch_rows
        ):
            order[unit] = len(order)
            sized.append((unit, rows))
    for unit, rows in sorted(sized, key=lambda u: -u[1]):  # stable: equal rows keep the local order
        target = min(parts, key=lambda p: p.rows)
        target.units.append(unit)
        target.rows += rows
    for part in parts:
        part.units.sort(key=order.__getitem__)
    return [p for p in parts if p.references or p.units]


def _part_batches(lake: LakePaths, part: Part, unreadable: list[tuple[str, str, str]]) -> Iterator[Batch]:
    if part.references:  # with no fact partitions named, the walk yields the reference tables only
        yield from _batches(
            lake, {}, per_partition=False, max_rows=sys.maxsize, unreadable=unreadable, memory=None
        )
    for table, months in part.units:
        yield from _fact_batches(
            lake,
            CONTRACTS[table],
            months,
            per_partition=False,  # the unit is one batch of the local walk
            max_rows=sys.maxsize,
            unreadable=unreadable,
            memory=None,
        )


def validate_part(
    lake: LakePaths,
    part: Part,
    *,
    docs_dir: Path,
    reference_values: Mapping[str, Mapping[str, Collection[str]]],
    as_of: date,
    min_date: date,
) -> tuple[ValidationSummary, list[tuple[str, str, str]]]:
    """Validate one part (on a worker) in its own GX context, its Data Docs into ``docs_dir``; returns
    the summary and the partitions that could not be read, (table, month, error)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    preload_gx()
    unreadable: list[tuple[str, str, str]] = []
    summary = validate_frames(
        (*REFERENCE_TABLES, *FACT_TABLES),
        _part_batches(lake, part, unreadable),
        docs_dir=docs_dir,
        reference_values=reference_values,
        as_of=as_of,
        min_date=min_date,
    )
    return summary, unreadable


def merge(results: Sequence[tuple[ValidationSummary, list[tuple[str, str, str]]]]) -> ValidationSummary:
    """One summary of the parts' results: what validate_lake returns for the same batches (failures in
    the local walk's order: by batch, which parts never share; unreadable partitions last). Its
    ``docs_index`` is unset; its timings are the slowest part's, step by step."""
    summaries = [s for s, _ in results]
    tables: dict[str, dict] = {}
    for name in summaries[0].tables:
        recs = [s.tables[name] for s in summaries]
        failures = sorted((f for r in recs for f in r["failures"]), key=lambda f: f["batch"])
        failed = list(dict.fromkeys(f["rule"] for f in failures))
        tables[name] = {
            "batches": sum(r["batches"] for r in recs),
            "rows": sum(r["rows"] for r in recs),
            "expectations": recs[0]["expectations"],
            "failed": failed,
            "success": not failed,
            "failures": failures,
        }
    keys = dict.fromkeys(k for s in summaries for k in s.timings_s)
    timings = {k: max(s.timings_s.get(k, 0.0) for s in summaries) for k in keys}
    success = all(t["success"] for t in tables.values())
    summary = ValidationSummary(success=success, tables=tables, timings_s=timings)
    order = {c.name: i for i, c in enumerate((*REFERENCE_TABLES, *FACT_TABLES))}
    unreadable = sorted((u for _, us in results for u in us), key=lambda u: (order[u[0]], u[1]))
    record_unreadable(summary, unreadable)
    return summary


def _describe(part: Part) -> str:
    def span(months: tuple[tuple[int, int], ...]) -> str:
        first, last = (f"{y:04d}-{m:02d}" for y, m in (months[0], months[-1]))
        return first if first == last else f"{first}..{last}"

    pieces = ["reference tables"] if part.references else []
    pieces += [f"{table} {span(months)}" for table, months in part.units]
    return ", ".join(pieces) or "nothing"


def write_index(docs: Path, parts: Sequence[Part], results: Sequence[tuple[ValidationSummary, Any]]) -> Path:
    """The top page of the Data Docs: one link per part's site, with what it holds and its verdict.
    The parts' static images go to ``docs``/static/images, where make_offline points the pages."""
    items = []
    for i, (part, (summary, unreadable)) in enumerate(zip(parts, results, strict=True)):
        ok = summary.success and not unreadable
        href = f"{PARTS_DIR}/{i}/index.html"
        verdict = "passed" if ok else "FAILED"
        items.append(f'<li><a href="{href}">part {i}</a>: {verdict}; {html.escape(_describe(part))}</li>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>localshelf Data Docs</title></head>\n<body>\n<h1>localshelf Data Docs</h1>\n"
        f"<p>This validation ran in {len(parts)} parts side by side, each with its own Great "
        "Expectations site:</p>\n<ul>\n" + "\n".join(items) + "\n</ul>\n</body></html>\n"
    )
    index = docs / "index.html"
    index.write_text(page, encoding="utf-8")
    images = docs / PARTS_DIR / "0" / "static" / "images"
    if images.is_dir():
        shutil.copytree(images, docs / "static" / "images", dirs_exist_ok=True)
    return index


def _clear_docs(docs: Path) -> None:
    """Drop the last run's parts and the last local run's site: the Data Docs show this run only."""
    for name in (PARTS_DIR, "validations", "expectations"):
        shutil.rmtree(docs / name, ignore_errors=True)
    (docs / "index.html").unlink(missing_ok=True)


def validate_in_parts(
    lake: LakePaths,
    *,
    run: Run,
    n_parts: int,
    as_of: date | None = None,
    min_date: date = date(2000, 1, 1),
    partitions: Mapping[str, Iterable[tuple[int, int]]] | None = None,
    progress: Callable[[str], None] | None = None,
    max_future_days: int = 0,
    per_partition: bool = False,
    max_batch_rows: int = MAX_BATCH_ROWS,
    loaded: IngestReport | None = None,
) -> ValidationSummary:
    """flows.lake.validation.validate_lake in about ``n_parts`` parts, each run by ``run`` (on a worker)
    with its own Data Docs site; the arguments are validate_lake's. ``loaded``'s in-memory rows are
    released, not used: each part reads its partitions from the lake."""
    say = progress or (lambda _msg: None)
    if loaded is not None:
        loaded.loaded_rows = None
        if partitions is None:
            partitions = loaded.changed_partitions
    t = time.perf_counter()
    parts = plan_parts(
        lake, partitions, n_parts=n_parts, per_partition=per_partition, max_batch_rows=max_batch_rows
    )
    contracts = (*REFERENCE_TABLES, *FACT_TABLES)
    refs = {c.name: _reference_values(lake, c) for c in contracts if c.references}
    _clear_docs(lake.docs)
    for i, part in enumerate(parts):
        say(f"validation part {i}: {_describe(part)}")
    common = {"lake": lake, "reference_values": refs, "min_date": min_date}
    common["as_of"] = latest_allowed(as_of, max_future_days)
    calls = [{**common, "part": p, "docs_dir": lake.docs / PARTS_DIR / str(i)} for i, p in enumerate(parts)]
    results = run(validate_part, calls)
    summary = merge(results)
    lake.docs.mkdir(parents=True, exist_ok=True)
    summary.docs_index = str(write_index(lake.docs, parts, results))
    summary.timings_s["parts_wall"] = round(time.perf_counter() - t, 3)
    say(f"validated {len(parts)} parts")
    return summary
