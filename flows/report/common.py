"""What both HTML pages share: number formatting, the Jinja2 environment, atomic writes, reading an
output table, and the run.json section (data quality, timings, versions)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, Undefined

from data_contracts.outputs import conform
from flows.lake.outputs import write_text

TEMPLATES = Path(__file__).parent / "templates"


# --------------------------------------------------------------------------------------------- formatting
def _missing(value: Any) -> bool:
    # run.json parts may lack a key (an older or partial run): the template then gets an Undefined
    return (
        value is None
        or isinstance(value, Undefined)
        or (isinstance(value, float) and not math.isfinite(value))
    )


def fmt_num(value: Any, digits: int = 0) -> str:
    """Return ``value`` with thousands separators and ``digits`` decimals ("–" when missing; anything
    not a number, e.g. a hand-edited run.json value, as text)."""
    if _missing(value):
        return "\u2013"
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def fmt_times(value: Any) -> str:
    """Return a lift as a multiple: "6.8x" ("–" when missing)."""
    if _missing(value):
        return "\u2013"
    return f"{value:,.0f}x" if abs(value) >= 10 else f"{value:.2g}x" if abs(value) < 1 else f"{value:.1f}x"


def fmt_pct(value: Any) -> str:
    """Return a share as a percentage ("–" when missing)."""
    return "\u2013" if _missing(value) else f"{value:.0%}"


def fmt_p(value: Any) -> str:
    """Return a p/q-value compactly ("<0.001" for tiny ones)."""
    if _missing(value):
        return "\u2013"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def fmt_offset(value: Any) -> str:
    """Return an event-relative day in words: "2 days before", "on the day", "1 day after"."""
    if _missing(value):
        return "\u2013"
    days = abs(int(value))
    unit = "day" if days == 1 else "days"
    return "on the day" if days == 0 else f"{days} {unit} {'before' if value < 0 else 'after'}"


def environment() -> Environment:
    """Return the Jinja2 environment of the report templates, autoescaping, with the number filters."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value from the data is escaped; only our own SVG is marked safe
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, times=fmt_times, pct=fmt_pct, pval=fmt_p, offset=fmt_offset)
    return env


def write_page(path: Path, html: str) -> Path:
    """Write ``html`` atomically (a reader never sees half a page); returns ``path``."""
    return write_text(path, html)


def read_table(path: Path, schema: pl.Schema) -> pl.DataFrame | None:
    """Return the Parquet table at ``path`` conformed to ``schema``, or None if the file is absent."""
    return conform(pl.read_parquet(path), schema) if path.exists() else None


# --------------------------------------------------------------------------------------------- run.json
def _warning_text(warning: Any) -> str:
    if isinstance(warning, dict):
        where = warning.get("table") or warning.get("file") or ""
        message = warning.get("message") or ", ".join(f"{k}: {v}" for k, v in warning.items())
        return f"{where}: {message}" if where else str(message)
    return str(warning)


def _table_counts(tables: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one row per table with its counts and whether they add up (read = loaded +
    quarantined + duplicate, the output contract's promise)."""
    rows = []
    for name, c in sorted(tables.items()):
        c = c if isinstance(c, dict) else {}
        parts = [c.get(k) for k in ("rows_loaded", "rows_quarantined", "rows_duplicate")]
        adds_up = None
        if c.get("rows_read") is not None and all(p is not None for p in parts):
            adds_up = c["rows_read"] == sum(parts)
        rows.append({"table": name, **c, "adds_up": adds_up})
    return rows


def _validation(validation: Any) -> dict[str, Any] | None:
    """Return the validation summary as success flag, per-table lines and the Data Docs location."""
    if not isinstance(validation, dict) or not validation:
        return None
    tables = validation.get("tables") if isinstance(validation.get("tables"), dict) else {}
    lines = []
    for name, result in sorted(tables.items()):
        result = result if isinstance(result, dict) else {"success": result}
        details = {k: v for k, v in result.items() if k != "success"}
        lines.append({"table": name, "success": result.get("success"), "details": details})
    return {"success": validation.get("success"), "tables": lines, "docs": validation.get("docs_index")}


def _scalars(mapping: Any) -> list[tuple[str, Any]]:
    """Return the (key, value) pairs of ``mapping`` whose values are plain scalars, for key/value lists."""
    if not isinstance(mapping, dict):
        return []
    return [(str(k), v) for k, v in mapping.items() if isinstance(v, str | int | float | bool) or v is None]


def quality(run_info: dict[str, Any]) -> dict[str, Any]:
    """Return the data quality and run details sections built from run_info (any part may be absent)."""
    reasons = run_info.get("quarantine_reasons") or {}
    timings = run_info.get("timings_s") or {}
    return {
        "tables": _table_counts(run_info.get("tables") or {}),
        "files": [f for f in run_info.get("files") or [] if isinstance(f, dict)],
        "reasons": sorted(reasons.items(), key=lambda kv: (-(kv[1] or 0), kv[0])),
        "warnings": [_warning_text(w) for w in run_info.get("warnings") or []],
        "validation": _validation(run_info.get("validation")),
        "timings": [(k, v) for k, v in timings.items() if isinstance(v, int | float)],
        "total_s": sum(v for v in timings.values() if isinstance(v, int | float)),
        "versions": _scalars(run_info.get("versions")),
        "version": (run_info.get("versions") or {}).get("localshelf"),
        "model": _scalars(run_info.get("model")),
        "started_at": run_info.get("started_at"),
        "finished_at": run_info.get("finished_at"),
    }
