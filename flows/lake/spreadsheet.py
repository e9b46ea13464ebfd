"""The tables merchandisers open by hand, as files a spreadsheet reads right.

CSV: numbers rounded (2 decimals, 3 significant digits below 1: no float noise such as 13.227827), and
text that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) is
prefixed with an apostrophe (OWASP's CSV-injection advice). A CSV cannot say "this is text", so store
"0028" still becomes 28 when a spreadsheet opens the CSV: hence the .xlsx beside it, written with
XlsxWriter, where every identifier is a text cell, numbers are numbers, dates are dates, and no cell is
ever a formula. The Parquet files keep full precision.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import xlsxwriter

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SHEET_NAME = "advice"


def rounded(df: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with float columns rounded for reading: 2 decimals, or 3 significant digits for
    values below 1 (a q-value of 0.000123 stays 0.000123)."""
    floats = [c for c, t in df.schema.items() if t in (pl.Float32, pl.Float64)]
    return df.with_columns(
        pl.when(pl.col(c).abs() < 1).then(pl.col(c).round_sig_figs(3)).otherwise(pl.col(c).round(2)).alias(c)
        for c in floats
    )


def formula_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with every text cell that a spreadsheet would run as a formula prefixed by "'"."""
    texts = [c for c, t in df.schema.items() if t == pl.String]
    starts = "^(?:" + "|".join(_regex_char(ch) for ch in FORMULA_START) + ")"
    return df.with_columns(
        pl.when(pl.col(c).str.contains(starts)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in texts
    )


def _regex_char(ch: str) -> str:
    return {"\t": r"\t", "\r": r"\r", "+": r"\+"}.get(ch, ch)


def write_csv(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as a spreadsheet-safe CSV (rounded, formula-escaped) to ``path``."""
    formula_safe(rounded(df)).write_csv(path)


def write_xlsx(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as one Excel sheet: a filterable table with a frozen header, identifiers and all
    other text as text cells (leading zeros kept, never a formula), numbers rounded."""
    # XlsxWriter would otherwise turn "=..." into a formula and "0028" or "1e5" into a number
    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(str(path), options) as workbook:
        rounded(df).write_excel(
            workbook,
            worksheet=SHEET_NAME,
            autofit=True,
            freeze_panes=(1, 0),
            dtype_formats={pl.Float64: "General", pl.Float32: "General"},  # the rounded value, as is
            table_style="Table Style Light 1",
        )
