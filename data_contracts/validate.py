"""The Great Expectations runner: validate frames it is handed against the generated suites.

Every reference table is one batch; every fact table is validated one monthly partition at a time, so
memory stays bounded by the largest partition. Polars frames become pandas at one adapter
(:func:`to_gx_frame`), Arrow-backed, so strings stay in Arrow memory instead of becoming Python
objects. The GX context is ephemeral and built once per call, with one suite and one validation
definition per table; only the Data Docs site is on disk, in ``lake/_docs``.

Nothing here reads the lake: ``flows.lake.validation`` walks it and hands each batch over. Nothing
raises on a failed expectation: the caller gets a summary and decides.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from data_contracts.schemas import TableContract
from data_contracts.suites import build_suite, derived_columns, rule_name

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.validation_definition import ValidationDefinition
    from great_expectations.data_context import AbstractDataContext

DOCS_SITE = "lake_docs"
DATA_SOURCE = "lake"
# "SUMMARY" keeps a few unexpected values per failed rule for the Data Docs, without the full row lists
RESULT_FORMAT = "SUMMARY"


@dataclass
class ValidationSummary:
    """What :func:`validate_lake` found: overall success, per-table results, and where the docs are."""

    success: bool
    # table -> {"batches", "rows", "expectations", "failed": [rule names], "success", "failures": [...]}
    tables: dict[str, dict] = field(default_factory=dict)
    docs_index: str | None = None

    def to_json(self) -> dict:
        """Return the summary as JSON-ready data (goes into run.json under "validation")."""
        return {"success": self.success, "tables": self.tables, "docs_index": self.docs_index}

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


def to_gx_frame(df: pl.DataFrame) -> pd.DataFrame:
    """Return ``df`` with the suites' derived columns as a pandas frame (the one adapter).

    Strings, dates and booleans stay Arrow-backed (no Python objects). Numbers become NumPy columns
    (floats with NaN for null; integers only when they hold no null): GX's pandas engine tests range
    expectations vectorized on NumPy dtypes but row by row in Python on Arrow-backed ones (about a
    second per million rows).
    """
    df = df.with_columns(derived_columns(df.schema))
    frame = df.to_pandas(use_pyarrow_extension_array=True)
    for name, dtype in df.schema.items():
        if dtype.is_float() or (dtype.is_integer() and df[name].null_count() == 0):
            frame[name] = df[name].to_numpy()
    return frame


def gx_context(docs_dir: Path) -> AbstractDataContext:
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
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


@contextmanager
def no_batch_fingerprint() -> Iterator[None]:
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


def validation_definition(
    context: AbstractDataContext,
    contract: TableContract,
    references: Mapping[str, set[str]],
    as_of: date | None,
    min_date: date,
) -> ValidationDefinition:
    """Register ``contract``'s suite, a dataframe asset and their validation definition in ``context``."""
    import great_expectations as gx

    suite = context.suites.add(
        build_suite(contract, reference_values=dict(references), as_of=as_of, min_date=min_date)
    )
    asset = context.data_sources.get(DATA_SOURCE).add_dataframe_asset(name=contract.name)
    batch = asset.add_batch_definition_whole_dataframe("batch")
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate.{contract.name}", data=batch, suite=suite)
    )


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
        rec: dict[str, Any] = {"batch": batch, "rule": rule_name(r.expectation_config)}
        rec["column"] = r.expectation_config.kwargs.get("column")
        unexpected = (r.result or {}).get("unexpected_count")
        if unexpected is not None:
            rec["unexpected"] = int(unexpected)
        elif (r.result or {}).get("observed_value") is not None:
            rec["observed"] = str(r.result["observed_value"])  # aggregate rules: the offending min/max
        error = _exception_message(r)
        if error:
            rec["error"] = error[:300]
        out.append(rec)
    return out


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """Return the first and last day of a month."""
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


@dataclass
class TableRun:
    """Accumulates one table's batches into its summary record."""

    expectations: int
    batches: int = 0
    rows: int = 0
    failures: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        failed = list(dict.fromkeys(f["rule"] for f in self.failures))
        return {
            "batches": self.batches,
            "rows": self.rows,
            "expectations": self.expectations,
            "failed": failed,
            "success": not failed,
            "failures": self.failures,
        }


def run_batch(
    vd: ValidationDefinition,
    df: pl.DataFrame,
    *,
    label: str,
    run_started: datetime,
    params: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Validate one batch (converted at the adapter) and return its failures."""
    from great_expectations.core.run_identifier import RunIdentifier

    run_id = RunIdentifier(run_name=label, run_time=run_started)
    result = vd.run(
        batch_parameters={"dataframe": to_gx_frame(df)},
        expectation_parameters=dict(params or {}),
        result_format=RESULT_FORMAT,
        run_id=run_id,
    )
    return _failures(result, label.split(" ", 1)[-1])
