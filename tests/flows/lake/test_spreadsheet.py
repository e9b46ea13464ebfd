"""The files merchandisers open in a spreadsheet: rounded, formula-safe CSV and an .xlsx that keeps
identifiers as text."""

from __future__ import annotations

import re
import zipfile
from datetime import date
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from flows.lake.outputs import write_table
from flows.lake.spreadsheet import formula_safe, rounded


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": ["0028", "0102"],
            "sku": ['=HYPERLINK("http://x")', "00123"],
            "reason": ["-5 units", "@home +1"],
            "units": [13.227827, 0.000123456],
            "stock_by": [date(2025, 7, 1), None],
            "order_units": [3, 4],
        }
    )


def test_rounded_keeps_two_decimals_or_three_significant_digits() -> None:
    assert rounded(_frame())["units"].to_list() == [13.23, 0.000123]


def test_formula_safe_prefixes_what_a_spreadsheet_would_run() -> None:
    safe = formula_safe(_frame())
    assert safe["sku"].to_list() == ['\'=HYPERLINK("http://x")', "00123"]
    assert safe["reason"].to_list() == ["'-5 units", "'@home +1"]
    assert safe["store_id"].to_list() == ["0028", "0102"]
    assert_frame_equal(safe.select("units", "order_units"), _frame().select("units", "order_units"))


def test_write_table_writes_parquet_csv_and_xlsx(tmp_path: Path) -> None:
    df = _frame()
    write_table(df, tmp_path / "t.parquet", csv=tmp_path / "t.csv")
    assert_frame_equal(pl.read_parquet(tmp_path / "t.parquet"), df)  # full precision kept
    csv = (tmp_path / "t.csv").read_text()
    assert csv.splitlines()[1] == '0028,"\'=HYPERLINK(""http://x"")",\'-5 units,13.23,2025-07-01,3'
    with zipfile.ZipFile(tmp_path / "t.xlsx") as xlsx:
        strings = re.findall(r"<t[^>]*>([^<]*)</t>", xlsx.read("xl/sharedStrings.xml").decode())
        sheet = xlsx.read("xl/worksheets/sheet1.xml").decode()
    # identifiers are text cells (t="s"), so "0028" keeps its zeros; a formula stays text, never <f>
    assert "0028" in strings and "00123" in strings and '=HYPERLINK("http://x")' in strings
    a2 = re.search(r'<c r="A2"[^>]*>', sheet)
    assert a2 is not None and 't="s"' in a2.group(0)
    assert "<f>" not in sheet
    assert re.search(r'<c r="D2"[^>]*><v>13.23</v>', sheet)  # numbers stay numbers, rounded


def test_write_table_without_csv_writes_only_parquet(tmp_path: Path) -> None:
    write_table(_frame(), tmp_path / "t.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
