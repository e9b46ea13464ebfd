"""What both HTML pages share: number formatting, the Jinja2 environment, atomic writes, reading an
output table, and the run.json section (data quality, timings, versions)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, Undefined

from data_contracts.outputs import conform
from flows.lake.outputs import write_text

TEMPLATES = Path(__file__).parent / "templates"


# --------------------------------------------------------------------------------------------- formatting
# A person reads at most three significant digits: "12.3k units", "$1.23M", "0.46". Exact figures
# stay in the CSV/Parquet files; identifiers (store, SKU, dates) are never formatted as numbers.
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3", "JPY": "\u00a5", "CAD": "CA$", "AUD": "A$"}
_SUFFIXES = ((1e9, "B"), (1e6, "M"), (1e4, "k"))  # below 10,000 a number reads fine in full: 1,230
DASH = "\u2013"


def _missing(value: Any) -> bool:
    # run.json parts may lack a key (an older or partial run): the template then gets an Undefined
    return (
        value is None
        or isinstance(value, Undefined)
        or (isinstance(value, float) and not math.isfinite(value))
    )


def _plain(value: float, digits: int) -> str:
    """``value`` (already rounded) with thousands separators and only the decimals it needs."""
    if value == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_sig(value: Any, digits: int = 3) -> str:
    """Return ``value`` rounded to ``digits`` significant digits, large ones with k/M/B: 0.456 ->
    "0.456", 1234 -> "1,230", 12345 -> "12.3k", 1234567 -> "1.23M" ("–" when missing; anything not
    a number, e.g. a hand-edited run.json value, as text)."""
    if _missing(value):
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    rounded = float(f"{value:.{digits}g}")
    sign = "\u2212" if rounded < 0 else ""
    size = abs(rounded)
    for limit, suffix in _SUFFIXES:
        if size >= limit:
            scale = 1e3 if suffix == "k" else limit
            return f"{sign}{_plain(float(f'{size / scale:.{digits}g}'), digits)}{suffix}"
    return sign + _plain(size, digits)


def fmt_num(value: Any, digits: int = 0) -> str:
    """Return a count or quantity for reading: up to 3 significant digits (``digits`` is kept for
    templates that ask for decimals: a quantity under 1 keeps 2 significant digits)."""
    if not _missing(value) and isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) < 1 and value != 0:
            return fmt_sig(value, 2)
    return fmt_sig(value, 3)


def fmt_money(value: Any, currency: str = "USD") -> str:
    """Return an amount with its currency: "$12.3k", "\u20ac950", "CHF 1.2k" ("–" when missing)."""
    if _missing(value):
        return DASH
    text = fmt_sig(value, 3)
    sign, digits = (text[0], text[1:]) if text.startswith("\u2212") else ("", text)
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{currency.upper()} {digits}"


def fmt_times(value: Any) -> str:
    """Return a lift as a multiple: "6.8x", "0.45x", "12x" ("–" when missing)."""
    if _missing(value):
        return DASH
    return f"{value:,.0f}x" if abs(value) >= 10 else f"{value:.2g}x" if abs(value) < 1 else f"{value:.1f}x"


def fmt_pct(value: Any) -> str:
    """Return a share as a percentage with at most 2 significant digits: "63%", "5.2%" ("–" when
    missing)."""
    if _missing(value):
        return DASH
    pct = value * 100
    return f"{pct:.0f}%" if abs(pct) >= 10 or pct == 0 else f"{float(f'{pct:.2g}'):g}%"


def fmt_p(value: Any) -> str:
    """Return a p/q-value compactly ("<0.001" for tiny ones, else 2 significant digits)."""
    if _missing(value):
        return DASH
    return "<0.001" if value < 0.001 else f"{float(f'{value:.2g}'):g}"


def fmt_offset(value: Any) -> str:
    """Return an event-relative day in words: "2 days before", "on the day", "1 day after"."""
    if _missing(value):
        return DASH
    days = abs(int(value))
    unit = "day" if days == 1 else "days"
    return "on the day" if days == 0 else f"{days} {unit} {'before' if value < 0 else 'after'}"


def fmt_date(value: Any) -> str:
    """Return a date as "Mon 7 Jul 2025" (weekday helps plan a delivery), "–" when missing."""
    if _missing(value):
        return DASH
    return value.strftime("%a %-d %b %Y") if hasattr(value, "strftime") else str(value)


def fmt_exact(value: Any) -> str:
    """Return a count in full ("1,006"), for a tooltip beside its rounded form."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else fmt_sig(value)


def fmt_span(start: Any, end: Any) -> str:
    """Return a date range briefly: "14\u201317 Jul", "30 Jun \u2013 2 Jul" ("" when the start is missing)."""
    if _missing(start) or not hasattr(start, "strftime"):
        return ""
    if _missing(end) or not hasattr(end, "strftime") or end == start:
        return start.strftime("%-d %b")
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}\u2013{end.strftime('%-d %b')}"
    return f"{start.strftime('%-d %b')} \u2013 {end.strftime('%-d %b')}"


def environment() -> Environment:
    """Return the Jinja2 environment of the report templates, autoescaping, with the number filters."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value from the data is escaped; only our own SVG is marked safe
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt_num,
        sig=fmt_sig,
        money=fmt_money,
        times=fmt_times,
        pct=fmt_pct,
        pval=fmt_p,
        offset=fmt_offset,
        day=fmt_date,
        span=fmt_span,
        exact=fmt_exact,
    )
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
            adds_up = c["rows_read"] == sum(p for p in parts if p is not None)
        rows.append({"table": name, **c, "adds_up": adds_up})
    return rows


def _validation(validation: Any, page: Path | None = None) -> dict[str, Any] | None:
    """Return the validation summary as success flag, per-table lines and the Data Docs location."""
    if not isinstance(validation, dict) or not validation:
        return None
    tables: dict[str, Any] = validation["tables"] if isinstance(validation.get("tables"), dict) else {}
    lines = []
    for name, result in sorted(tables.items()):
        result = result if isinstance(result, dict) else {"success": result}
        details = {k: v for k, v in result.items() if k not in ("success", "failures")}
        # the failed expectations as a count; their list is in the Data Docs
        if isinstance(details.get("failed"), list):
            details["failed"] = len(details["failed"])
        lines.append({"table": name, "success": result.get("success"), "details": details})
    docs = validation.get("docs_index")
    href = None
    if docs and "://" in str(docs):  # a URL lake's Data Docs (http(s) opens; s3:// and such are shown)
        href = str(docs) if str(docs).startswith(("http://", "https://")) else None
    elif docs and page is not None:
        # a relative link keeps working when the run's folder (output and lake) is moved or shared
        href = Path(os.path.relpath(docs, page.parent)).as_posix()
    return {"success": validation.get("success"), "tables": lines, "docs": docs, "docs_href": href}


def _scalars(mapping: Any) -> list[tuple[str, Any]]:
    """Return the (key, value) pairs of ``mapping`` whose values are plain scalars, for key/value lists."""
    if not isinstance(mapping, dict):
        return []
    return [(str(k), v) for k, v in mapping.items() if isinstance(v, str | int | float | bool) or v is None]


MODEL_TEXT = {
    "valid_wape": ("error on held-back days, share of units (WAPE)", "pct"),
    "valid_mae": ("mean absolute error, units a day", "num"),
    "valid_rmse": ("root mean squared error, units a day", "num"),
    "valid_bias": ("bias, units a day (+ = over-forecast)", "num"),
    "best_iteration": ("boosting rounds", "num"),
    "train_rows": ("training rows", "num"),
    "valid_rows": ("held-back rows", "num"),
    "dispersion": ("dispersion of the intervals", "num"),
}


def _model(model: Any) -> list[tuple[str, Any]]:
    """Return the demand model's figures in words, rounded ("error on held-back days ...: 64%")."""
    out = []
    for key, value in _scalars(model):
        text, kind = MODEL_TEXT.get(key, (key.replace("_", " "), "num"))
        out.append((text, fmt_pct(value) if kind == "pct" else fmt_num(value)))
    return out


def quality(run_info: dict[str, Any], page: Path | None = None) -> dict[str, Any]:
    """Return the data quality and run details sections built from run_info (any part may be absent);
    links (the Data Docs) are made relative to ``page``, the HTML file they appear on."""
    reasons = run_info.get("quarantine_reasons") or {}
    timings = run_info.get("timings_s") or {}
    return {
        "tables": _table_counts(run_info.get("tables") or {}),
        "files": [f for f in run_info.get("files") or [] if isinstance(f, dict)],
        "reasons": sorted(reasons.items(), key=lambda kv: (-(kv[1] or 0), kv[0])),
        "warnings": [_warning_text(w) for w in run_info.get("warnings") or []],
        "validation": _validation(run_info.get("validation"), page),
        "timings": [(k, v) for k, v in timings.items() if isinstance(v, int | float)],
        "total_s": sum(v for v in timings.values() if isinstance(v, int | float)),
        "versions": _scalars(run_info.get("versions")),
        "version": (run_info.get("versions") or {}).get("localshelf"),
        "model": _model(run_info.get("model")),
        "started_at": run_info.get("started_at"),
        "finished_at": run_info.get("finished_at"),
    }
