"""Great Expectations over the frames it is handed: one suite per table, one batch per frame.

The runner reads nothing itself: the caller (the lake's validation walk) hands it each table's rows
as polars frames, one batch at a time, and says where the Data Docs go. Frames become pandas at one
adapter (:func:`to_gx_frame`): numbers as NumPy, everything else Arrow-backed, so no value becomes a
Python object. The GX context is
ephemeral, with one suite and one validation definition per table; only the Data Docs site is on
disk.

Importing GX takes seconds (``gx_import``): :func:`preload_gx` starts it in a thread, and the runner
reads and hands over its first batches while it waits for it. Nothing here raises on a failed
expectation: the summary says what failed.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from data_contracts.gx_import import preload_gx, short_gil_slices, wait_for_gx
from data_contracts.schemas import TableContract
from data_contracts.suites import (
    KEY_CODE,
    KEY_ONCE,
    build_suite,
    derived_columns,
    key_code,
    key_once,
    rule_name,
)

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.validation_definition import ValidationDefinition
    from great_expectations.data_context import AbstractDataContext

DOCS_SITE = "lake_docs"
# "SUMMARY" keeps a few unexpected values per failed rule for the Data Docs, without the full row lists
RESULT_FORMAT: Final = "SUMMARY"
# A batch is first checked for the verdict alone: GX then evaluates each row rule once, where SUMMARY
# evaluates it a second time to list unexpected values (2.2 of 12.9 CPU-s on 17.5 M rows). A batch
# that fails is checked again with SUMMARY, so its failures come with their details.
VERDICT_FORMAT: Final = "BOOLEAN_ONLY"

_ARROW_COMPAT = pl.CompatLevel.oldest()
# Text columns handed to GX dictionary-encoded (besides each table's references): few distinct values
DICTIONARY_COLUMNS: Final = ("_source_file",)
__all__ = ["ValidationSummary", "preload_gx", "to_gx_frame", "validate_frames"]


@dataclass
class ValidationSummary:
    """What a validation run found: overall success, per-table results, where the docs are, timings."""

    success: bool
    # table -> {"batches", "rows", "expectations", "failed": [rule names], "success", "failures": [...]}
    tables: dict[str, dict] = field(default_factory=dict)
    docs_index: str | None = None
    # seconds: import (waiting for GX), read (the caller's frames) and handover (both in a thread,
    # overlapping the checks), waited (for the next frame), validate, data_docs
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Return the summary as JSON-ready data (goes into run.json under "validation")."""
        return {
            "success": self.success,
            "tables": self.tables,
            "docs_index": self.docs_index,
            "timings_s": self.timings_s,
        }

    def failure_lines(self) -> list[str]:
        """Return one readable line per failed rule and batch, e.g. for the flow's error message."""
        return [
            f"{table} [{f['batch']}]: {f['rule']}"
            + (f" ({f['unexpected']} rows)" if f.get("unexpected") else "")
            + (f" (observed {f['observed']})" if f.get("observed") else "")
            + (f" - {f['error']}" if f.get("error") else "")
            for table, rec in self.tables.items()
            for f in rec.get("failures", [])
        ]


def to_gx_frame(df: pl.DataFrame, contract: TableContract | None = None) -> pd.DataFrame:
    """Return ``df`` with the suites' derived columns as a pandas frame (the one adapter).

    Numbers become NumPy columns (floats with NaN for null; integers only when they hold no null): GX's
    pandas engine tests them vectorized there, row by row in Python on Arrow-backed ones. The
    contract's reference columns and the lineage's source file (few distinct values) become pandas
    categoricals whose dtype says ``str`` (see :func:`_text_categories`): a small code per row, each
    distinct text once, and GX's distinct-value checks count codes instead of hashing every row's
    text (0.35-0.45 CPU-s less on the large demo); other text is Arrow ``large_string``; dates,
    booleans and instants stay Arrow-backed, chunk by chunk (no Python objects). Derived columns the
    caller handed over (computed on each part before they were joined: see flows.lake.validation) are
    kept. With a compound key the frame gets one 64-bit hash of it per row (see suites.key_code),
    unless the caller handed it over as KEY_CODE, and whether each row's hash is the batch's only one
    of its value (KEY_ONCE, see suites.key_once). Nothing is copied on the way into pandas but a
    column of several chunks into one NumPy array and the text that is not encoded.
    """
    import pandas as pd
    import pyarrow as pa

    derived = [e for e in derived_columns(df.schema) if e.meta.output_name() not in df.columns]
    key = contract.key if contract is not None and len(contract.key) > 1 else ()
    if key and KEY_CODE not in df.columns and all(k in df.columns for k in key):
        derived.append(key_code(key))
    if derived:  # hstack: with_columns would copy every column of a many-chunk frame into one chunk
        df = df.hstack(df.select(derived).get_columns())
    encoded = {*contract.references, *DICTIONARY_COLUMNS} if contract is not None else set()
    columns: dict[str, Any] = {}
    for name, dtype in df.schema.items():
        col = df.get_column(name)
        if dtype.is_float() or (dtype.is_integer() and col.null_count() == 0):  # hashes too
            columns[name] = col.to_numpy()  # one copy where the column has several chunks
        elif dtype == pl.Categorical or (dtype == pl.String and name in encoded):
            columns[name] = _categorical(col)
        elif dtype == pl.String:  # large_string, not string_view: GX knows the former's Python type
            columns[name] = pd.arrays.ArrowExtensionArray(col.to_arrow(compat_level=_ARROW_COMPAT))
        else:  # dates, booleans, instants: Arrow chunk by chunk, nothing copied
            chunks = [c.to_arrow(compat_level=_ARROW_COMPAT) for c in col.get_chunks() if c.len()]
            chunks = chunks or [col.to_arrow(compat_level=_ARROW_COMPAT)]
            columns[name] = pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks, chunks[0].type))
    if key and KEY_CODE in columns:
        columns[KEY_ONCE] = key_once(columns[KEY_CODE])
    return pd.DataFrame(columns, index=pd.RangeIndex(df.height), copy=False)


@functools.cache
def _text_categories() -> type[pd.CategoricalDtype]:
    """The dtype of the dictionary-encoded text columns (pandas' categorical dtype, whose ``type``
    GX's type check compares with the expected one): it is the Python type of the dictionary's
    values (``str`` for text) where pandas' own says "categorical". Every value of the column is one
    of the dictionary's, so the dictionary's type is the column's; a column that is not text in the
    lake is never dictionary-encoded here, and fails "is str" as before."""
    import pandas as pd

    class TextCategories(pd.CategoricalDtype):
        @property
        def type(self) -> type:  # type: ignore[override]
            return self.categories.dtype.type

    return TextCategories


def _categorical(col: pl.Series) -> pd.Categorical:
    """``col`` (text) as a pandas categorical: one small code per row and its distinct values once,
    instead of every row's text copied into Arrow (and hashed again by GX's distinct-value checks)."""
    import pandas as pd
    import pyarrow as pa

    arr = col.cast(pl.Categorical).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    codes = arr.indices.cast(pa.int32()).fill_null(-1).to_numpy()
    categories = pd.Index(pd.arrays.ArrowStringArray(arr.dictionary.cast(pa.large_string())))
    return pd.Categorical.from_codes(codes, dtype=_text_categories()(categories), validate=False)


def _gx_context(docs_dir: Path) -> AbstractDataContext:
    """Return an ephemeral GX context whose only Data Docs site is ``docs_dir``, progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    for site in list(context.list_data_docs_sites()):
        context.delete_data_docs_site(site)  # the default site would write into a temp folder
    context.add_data_docs_site(
        DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            # GX stub lacks this key; SiteBuilder accepts it at runtime
            "show_how_to_buttons": False,  # type: ignore[typeddict-unknown-key]
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


@contextmanager
def _no_batch_fingerprint() -> Iterator[None]:
    """Within the block, GX does not fingerprint pandas batches; restores its setting on exit.

    GX hashes every batch under ``HASH_THRESHOLD`` bytes (1 GB) row by row for a batch marker nothing
    here reads; on Arrow-backed frames that turns each column into Python objects: about a second and a
    full copy of the data per 500k rows. There is no public switch, so the module constant is lowered.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    saved = engine.HASH_THRESHOLD
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = saved


def _exception_message(result: Any) -> str | None:
    """Return the exception GX caught while evaluating one expectation, if any."""
    info = result.exception_info or {}
    # GX 1.x keeps either one {"raised_exception": ...} dict or one such dict per failed metric
    candidates = [info] if "raised_exception" in info else list(info.values())
    for item in candidates:
        if isinstance(item, dict) and item.get("raised_exception"):
            return str(item.get("exception_message") or "error")
    return None


def _failures(result: ExpectationSuiteValidationResult, batch: str) -> list[dict]:
    """Return one record per failed expectation of a batch's validation result."""
    out: list[dict] = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        assert config is not None  # GX sets it on every result of a suite run
        rec: dict[str, Any] = {"batch": batch, "rule": rule_name(config)}
        rec["column"] = config.kwargs.get("column")
        details = r.result or {}
        if config.type == "expect_column_distinct_values_to_be_in_set":
            # counts distinct values, not rows: name the unknown values themselves
            unknown = details.get("partial_unexpected_list") or []
            if not unknown and isinstance(details.get("observed_value"), list):
                known = {str(v) for v in config.kwargs.get("value_set") or []}
                unknown = sorted({str(v) for v in details["observed_value"]} - known)
            if unknown:
                rec["observed"] = ", ".join(str(v) for v in unknown[:20])
        elif details.get("unexpected_count") is not None:
            rec["unexpected"] = int(details["unexpected_count"])
        elif details.get("observed_value") is not None:
            rec["observed"] = str(details["observed_value"])  # aggregate rules: the offending min/max
        error = _exception_message(r)
        if error:
            rec["error"] = error[:300]
        out.append(rec)
    return out


@dataclass
class _TableRun:
    """One table's validation definition and the summary record its batches add up to."""

    vd: ValidationDefinition
    batches: int = 0
    rows: int = 0
    failures: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        failed = list(dict.fromkeys(f["rule"] for f in self.failures))
        return {
            "batches": self.batches,
            "rows": self.rows,
            "expectations": len(self.vd.suite.expectations),
            "failed": failed,
            "success": not failed,
            "failures": self.failures,
        }


# One batch: the table's contract, the batch's label (e.g. "all", "2024-06", "load") and its rows.
Batch = tuple[TableContract, str, pl.DataFrame]
_END = object()


class _Prepared:
    """The batches as GX frames, in order, prepared by two threads in a chain while GX checks the
    frame before: one reads each batch (the caller's iterator), the other hands it over
    (``to_gx_frame``). Polars and pyarrow work outside the GIL and GX is mostly Python, so on two
    cores the reading of one batch, the handover of the one before and the checks of the one before
    that overlap (one thread doing both kept the checks waiting: 2.8 s of preparing against 1.5 s of
    checks on the large demo). The threads start at once, so the first frames are prepared while GX
    is still being imported. At most ``SLOTS`` batches exist at once (read, handed over, checked).
    Iterate once; ``close`` (also at the end of the iteration) stops the threads.

    ``timings``: "read" and "handover" are the threads' own (they overlap the checks), "waited" is
    the time the checks waited for a frame."""

    SLOTS: Final = 3

    def __init__(self, batches: Iterable[Batch], timings: dict[str, float]) -> None:
        self._read: queue.Queue[Any] = queue.Queue()
        self._ready: queue.Queue[Any] = queue.Queue()
        self._slots = threading.Semaphore(self.SLOTS)
        self._stop = threading.Event()
        self._timings = timings
        self._threads = [
            threading.Thread(target=self._reader, args=(batches,), name="gx-read", daemon=True),
            threading.Thread(target=self._handover, name="gx-handover", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _reader(self, batches: Iterable[Batch]) -> None:
        try:
            items = iter(batches)
            while True:
                self._slots.acquire()
                if self._stop.is_set():
                    break
                t = time.perf_counter()
                item = next(items, None)
                self._timings["read"] += time.perf_counter() - t
                if item is None:
                    break
                self._read.put(item)
                del item
            self._read.put(_END)
        except BaseException as exc:  # handed on to the caller's thread
            self._read.put(exc)

    def _handover(self) -> None:
        try:
            while True:
                got = self._read.get()
                if got is _END or isinstance(got, BaseException) or self._stop.is_set():
                    self._ready.put(got)
                    break
                contract, label, df = got
                t = time.perf_counter()
                self._ready.put((contract, label, to_gx_frame(df, contract)))
                del got, df
                self._timings["handover"] += time.perf_counter() - t
        except BaseException as exc:  # handed to the caller's thread
            self._ready.put(exc)

    def __iter__(self) -> Iterator[tuple[TableContract, str, Any]]:
        try:
            while True:
                t = time.perf_counter()
                got = self._ready.get()
                self._timings["waited"] += time.perf_counter() - t
                if got is _END:
                    break
                if isinstance(got, BaseException):
                    raise got
                yield got
                del got  # the checked frame is freed before another batch is read
                self._slots.release()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the threads (each finishes the batch it holds) and wait for them."""
        if any(thread.is_alive() for thread in self._threads):
            self._stop.set()
            self._slots.release(self.SLOTS)  # however many the reader waits for
            self._read.put(_END)  # wakes the handover thread if it waits for a batch
            for thread in self._threads:
                thread.join()


def _set_up(
    contracts: Iterable[TableContract],
    docs_dir: Path,
    reference_values: Mapping[str, Mapping[str, Collection[str]]],
    *,
    as_of: date | None,
    min_date: date,
) -> tuple[AbstractDataContext, dict[str, _TableRun]]:
    """Wait for GX; return its context and each table's validation definition."""
    wait_for_gx()
    import great_expectations as gx

    context = _gx_context(docs_dir)
    source = context.data_sources.add_pandas("lake")
    runs: dict[str, _TableRun] = {}
    for contract in contracts:
        suite = build_suite(
            contract, reference_values=reference_values.get(contract.name), as_of=as_of, min_date=min_date
        )
        batch_def = source.add_dataframe_asset(name=contract.name).add_batch_definition_whole_dataframe("b")
        vd = gx.ValidationDefinition(
            name=f"validate.{contract.name}", data=batch_def, suite=context.suites.add(suite)
        )
        runs[contract.name] = _TableRun(context.validation_definitions.add(vd))
    return context, runs


def _check(
    prepared: _Prepared, runs: dict[str, _TableRun], timings: dict[str, float], say: Callable[[str], None]
) -> None:
    """Check each prepared frame against its table's suite; failures go into its run's record."""
    from great_expectations.core.run_identifier import RunIdentifier

    started = datetime.now(UTC)
    with _no_batch_fingerprint():
        for contract, label, frame in prepared:
            t = time.perf_counter()
            run = runs[contract.name]
            run_id = RunIdentifier(run_name=f"{contract.name} {label}", run_time=started)
            params = {"dataframe": frame}
            result = run.vd.run(batch_parameters=params, result_format=VERDICT_FORMAT, run_id=run_id)
            if not result.success:  # the same rules again, with what they found (same run: replaces it)
                result = run.vd.run(batch_parameters=params, result_format=RESULT_FORMAT, run_id=run_id)
            run.batches += 1
            run.rows += len(frame)
            run.failures += _failures(result, label)
            del frame
            timings["validate"] += time.perf_counter() - t
            say(f"validated {contract.name} {label}")


def validate_frames(
    contracts: Iterable[TableContract],
    batches: Iterable[Batch],
    *,
    docs_dir: Path,
    reference_values: Mapping[str, Mapping[str, Collection[str]]],
    as_of: date | None,
    min_date: date,
    progress: Callable[[str], None] | None = None,
) -> ValidationSummary:
    """Validate each batch against its table's suite; write Data Docs into ``docs_dir``.

    ``contracts``: every table to report (a table with no batch reports 0 batches); ``batches`` is
    consumed one at a time, so only one frame is held at once; ``reference_values``: per table, column
    -> the ids it may hold. Returns the summary (``timings_s``: where the time went); never raises on
    a failed expectation.
    """
    say = progress or (lambda _msg: None)
    timings = dict.fromkeys(("import", "read", "handover", "waited", "validate", "data_docs"), 0.0)
    # the first frames are read and handed over while GX is imported (if it still is); GX's checks
    # are pure Python, the threads preparing the next frames need the GIL only between native calls
    with short_gil_slices(), closing(_Prepared(batches, timings)) as prepared:
        t = time.perf_counter()
        context, runs = _set_up(contracts, docs_dir, reference_values, as_of=as_of, min_date=min_date)
        timings["import"] = time.perf_counter() - t
        _check(prepared, runs, timings, say)
    t = time.perf_counter()
    docs_dir.mkdir(parents=True, exist_ok=True)
    urls = context.build_data_docs(site_names=[DOCS_SITE])
    timings["data_docs"] = time.perf_counter() - t
    tables = {name: run.record() for name, run in runs.items()}
    return ValidationSummary(
        success=all(t["success"] for t in tables.values()),
        tables=tables,
        docs_index=str(docs_dir / "index.html") if DOCS_SITE in urls else None,
        timings_s={k: round(v, 3) for k, v in timings.items()},
    )
