"""The typed fast path of fact files and its fallback to the strings path (flows.lake.readers)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from flows.lake import ingest as ingest_module
from flows.lake.ingest import IngestReport, ingest_drop
from flows.lake.paths import LakePaths, scan_fact
from flows.lake.readers import SourceFile, iter_raw
from tests.flows.lake.ingest_drops import SALES, make_drop, settings, write

AS_OF = date(2024, 12, 31)
HEADER = SALES.splitlines()[0]
GOOD = [
    "2024-08-03,001,A1,1,1.5,,",
    "2024-08-04,002,B2,2, 3.0 ,1e1,TRUE",
    "2024-08-05,001,B2,0,0,0,N",
    "2024-08-06,002,A1,-2,-3,,f",
]


@pytest.fixture
def raw_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files read through the strings path during the test."""
    seen: list[str] = []

    def counting(src: SourceFile, batch_rows: int) -> Iterator[pl.DataFrame]:
        seen.append(src.rel)
        yield from iter_raw(src, batch_rows)

    monkeypatch.setattr(ingest_module, "iter_raw", counting)
    return seen


def _load(drop: Path, lake: LakePaths, batch_rows: int = 2) -> IngestReport:
    return ingest_drop(drop, lake, settings(batch_rows=batch_rows), as_of=AS_OF)


def _sales(lake: LakePaths) -> pl.DataFrame:
    return scan_fact(lake, "store_sales").collect().sort("_source_file", "_source_row").drop("_loaded_at")


def _counts_add_up(report: IngestReport) -> None:
    for counts in [*report.tables.values(), *report.files]:
        assert (
            counts["rows_read"]
            == counts["rows_loaded"] + counts["rows_quarantined"] + counts["rows_duplicate"]
        )


def test_clean_files_are_read_typed_and_load_what_the_strings_path_loads(
    tmp_path: Path, raw_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "\n".join([HEADER, *SALES.splitlines()[1:], *GOOD]) + "\n"
    drop = make_drop(tmp_path / "drop", sales=text, orders=None)
    write(drop / "store_sales" / "b.csv.gz", gzip.compress(text.replace("2024-", "2023-").encode()))
    typed = LakePaths(tmp_path / "typed")
    report = _load(drop, typed)
    assert raw_reads == [], "clean files need no second reading"
    assert report.tables["store_sales"]["rows_loaded"] == 16
    # the same drop through the strings path only
    monkeypatch.setattr(ingest_module, "check_typed", lambda *_: None)
    strings = LakePaths(tmp_path / "strings")
    _load(drop, strings)
    assert sorted(raw_reads) == ["store_sales/b.csv.gz", "store_sales/pos.csv"]
    assert_frame_equal(_sales(typed), _sales(strings))


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("2024-08-07,001,A1,1,1.5,inf,", "not a number"),
        ("2024-08-07,001,A1, ,1.5,,", "missing required value"),
        ("2024-08-07,001,A1,1,1.5,,maybe", "not a boolean"),
        ("2024-08-07,009,A1,1,1.5,,", "unknown store_id"),
        ("2024-08-07,001,A1,1,-1.5,,", "revenue sign differs from units"),
        ("2024-08-07,001", "wrong number of fields"),
        ("2024-8-7x,001,A1,1,1.5,,", "unparseable date"),
    ],
)
def test_a_file_with_a_broken_row_late_in_it_is_read_again_as_strings(
    tmp_path: Path, raw_reads: list[str], bad: str, rule: str
) -> None:
    # batches of 2 rows: the typed pass has staged the first batches when it meets the broken row
    text = "\n".join([HEADER, *SALES.splitlines()[1:], *GOOD, bad]) + "\n"
    drop = make_drop(tmp_path / "drop", sales=text, orders=None)
    write(drop / "store_sales" / "clean.csv", SALES.replace("2024-", "2022-"))
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    assert raw_reads == ["store_sales/pos.csv"]
    sales = report.tables["store_sales"]
    assert (sales["rows_read"], sales["rows_loaded"], sales["rows_quarantined"]) == (13, 12, 1)
    _counts_add_up(report)
    q = scan_fact(lake, "quarantine").collect()
    assert q.select("file", "row_number", "rule").rows() == [("store_sales/pos.csv", 9, rule)]
    loaded = _sales(lake).filter(pl.col("_source_file") == "store_sales/pos.csv")
    assert loaded["_source_row"].to_list() == list(range(1, 9)), "each good row once, nothing staged twice"
    raw = json.loads(q["raw"][0])  # the values as written: the strings path tagged the row
    assert raw["line"] == bad if rule == "wrong number of fields" else raw["units"] == bad.split(",")[3]
    # a re-load adds nothing
    again = _load(drop, lake)
    assert again.tables["store_sales"]["rows_loaded"] == 0
    assert _sales(lake).height == 12


def test_parquet_of_another_type_is_read_as_strings(tmp_path: Path, raw_reads: list[str]) -> None:
    drop = make_drop(tmp_path / "drop", sales=None, orders=None)
    (drop / "store_sales").mkdir()
    base = {"date": pa.array([date(2024, 7, 31)]), "store_id": ["001"], "sku": ["A1"], "revenue": [3.0]}
    pq.write_table(pa.table({**base, "units": pa.array([2], pa.int32())}), drop / "store_sales" / "a.parquet")
    pq.write_table(
        pa.table({**base, "units": pa.array([2.0], pa.float32())}), drop / "store_sales" / "b.parquet"
    )
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    assert raw_reads == ["store_sales/b.parquet"]
    assert (
        report.tables["store_sales"]["rows_loaded"] == 1
        and report.tables["store_sales"]["rows_duplicate"] == 1
    )
    assert _sales(lake)["units"].to_list() == [2.0]
