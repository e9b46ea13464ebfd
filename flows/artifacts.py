"""What a run shows in the Prefect UI: the load's accounting and validation, the top recommendations,
and links to the report and the Data Docs (artifacts with stable keys, so each run adds a version)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from data_contracts.validate import ValidationSummary
from flows.lake.ingest import IngestReport

COUNT_COLUMNS = ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "rows_corrected")
TOP_COLUMNS = ("store_id", "sku", "name", "action", "expected_weekly_revenue", "replaces", "reason")


def _uri(path: str | Path) -> str:
    text = str(path)
    return text if "://" in text else Path(text).resolve().as_uri()


def load_markdown(loaded: IngestReport, validation: ValidationSummary) -> str:
    """Return the load's accounting (rows per table, quarantine reasons, warnings) and the validation
    summary (per table: batches, rows, failed rules) as markdown."""
    lines = ["## Load", "", "| table | " + " | ".join(c[5:] for c in COUNT_COLUMNS) + " |"]
    lines.append("|---|" + "---:|" * len(COUNT_COLUMNS))
    for table, counts in sorted(loaded.tables.items()):
        lines.append(f"| {table} | " + " | ".join(f"{counts.get(c, 0):,}" for c in COUNT_COLUMNS) + " |")
    if loaded.quarantine_reasons:
        lines += ["", "Quarantined:"]
        lines += [f"- {n:,} rows: {reason}" for reason, n in sorted(loaded.quarantine_reasons.items())]
    if loaded.warnings:
        lines += ["", "Warnings:"]
        lines += [f"- {w.get('table')}: {w.get('message')}" for w in loaded.warnings]
    verdict = "passed" if validation.success else "FAILED"
    lines += [
        "",
        f"## Validation: {verdict}",
        "",
        "| table | batches | rows | failed rules |",
        "|---|---:|---:|---|",
    ]
    for table, rec in sorted(validation.tables.items()):
        failed = ", ".join(rec.get("failed") or []) or "none"
        lines.append(f"| {table} | {rec.get('batches', 0):,} | {rec.get('rows', 0):,} | {failed} |")
    if validation.docs_index:
        lines += ["", f"[Data Docs]({_uri(validation.docs_index)})"]
    return "\n".join(lines) + "\n"


def publish_load(loaded: IngestReport, validation: ValidationSummary) -> None:
    """Markdown artifact of the load and its validation; a link artifact to the Data Docs."""
    create_markdown_artifact(
        load_markdown(loaded, validation),
        key="localshelf-load",
        description="Rows read, loaded, quarantined per table; Great Expectations results.",
    )
    if validation.docs_index:
        create_link_artifact(
            _uri(validation.docs_index),
            link_text="Great Expectations Data Docs",
            key="localshelf-data-docs",
            description="Validation results of the tables this load touched.",
        )


def top_recommendations(assortment: pl.DataFrame, n: int = 25) -> list[dict]:
    """Return the ``n`` adds and drops worth the most expected weekly revenue, as table rows."""
    changes = assortment.filter(pl.col("action").is_in(["add", "drop"]))
    columns = [c for c in TOP_COLUMNS if c in changes.columns]
    return (
        changes.sort("expected_weekly_revenue", descending=True, nulls_last=True)
        .head(n)
        .select(columns)
        .with_columns(pl.col(pl.Float64).round(2))
        .to_dicts()
    )


def publish_run(assortment_path: Path, report_path: Path) -> None:
    """Table artifact of the top recommendations; a link artifact to report.html."""
    create_table_artifact(
        top_recommendations(pl.read_parquet(assortment_path)),
        key="localshelf-top-recommendations",
        description="Adds and drops worth the most expected weekly revenue.",
    )
    create_link_artifact(
        _uri(report_path),
        link_text="localshelf report",
        key="localshelf-report",
        description="The run's report.html (open on the worker host or its shared folder).",
    )
