"""Ingest: what bad input gets (errors before anything is written, quarantine, warnings) and formats."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.lake.ingest import ContractError, IngestReport, ingest_drop
from flows.lake.paths import LakePaths, read_reference, scan_fact
from tests.flows.lake.ingest_drops import SALES, make_drop, settings, write

AS_OF = date(2024, 12, 31)
HEADER = SALES.splitlines()[0]


def _load(drop: Path, lake: LakePaths, **ingest: object) -> IngestReport:
    return ingest_drop(drop, lake, settings(**ingest), as_of=AS_OF)


def _lake_files(lake: LakePaths) -> list[Path]:
    return sorted(p for p in lake.root.rglob("*.parquet"))


def _quarantine(lake: LakePaths) -> pl.DataFrame:
    return scan_fact(lake, "quarantine").collect().sort("file", "row_number")


def _assert_counts_add_up(report: IngestReport) -> None:
    for counts in [*report.tables.values(), *report.files]:
        assert (
            counts["rows_read"]
            == counts["rows_loaded"] + counts["rows_quarantined"] + counts["rows_duplicate"]
        )


@pytest.mark.parametrize(
    ("file", "text", "rule", "named"),
    [
        (
            "store_sales/pos.csv",
            "date,store_id,sku,units\n2024-08-01,001,A1,1\n",
            "missing required column",
            "revenue",
        ),
        ("stores.csv", "store_id,region\n001,GULF\n", "missing required column", "postal_code"),
        ("store_sales/pos.csv", SALES.replace(",", ";"), "missing required column", "comma-separated"),
        (
            "stores.csv",
            "store_id,region,state,postal_code\n001,G,FL,1\n001,G,FL,1\n",
            "duplicate key",
            "'001'",
        ),
        ("assortment.csv", "store_id,sku\n001,A1\n001,A1\n", "duplicate key", "store_id='001'"),
    ],
)
def test_header_and_key_errors_stop_before_anything_is_written(
    tmp_path: Path, file: str, text: str, rule: str, named: str
) -> None:
    drop = make_drop(tmp_path / "drop")
    write(drop / file, text)
    lake = LakePaths(tmp_path / "lake")
    with pytest.raises(ContractError) as err:
        _load(drop, lake)
    assert err.value.rule == rule and err.value.file == file
    assert file in str(err.value) and named in str(err.value)
    assert _lake_files(lake) == []


def test_missing_required_reference_file(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    (drop / "postal_regions.csv").unlink()  # required because the drop has online orders
    with pytest.raises(ContractError, match="postal_regions.csv is missing"):
        _load(drop, LakePaths(tmp_path / "lake"))


@pytest.mark.parametrize(
    ("row", "rule", "column"),
    [
        ("2024-02-30,001,A1,1,1.5,,", "unparseable date", "date"),
        ("2024-08-03,001,A1,lots,1.5,,", "not a number", "units"),
        ("2024-08-03,999,A1,1,1.5,,", "unknown store_id", "store_id"),
        ("2024-08-03,001,ZZ9,1,1.5,,", "unknown sku", "sku"),
    ],
)
def test_broken_row_is_quarantined_and_the_rest_loads(
    tmp_path: Path, row: str, rule: str, column: str
) -> None:
    drop = make_drop(tmp_path / "drop", sales=SALES + row + "\n")
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    assert report.tables["store_sales"]["rows_loaded"] == 4
    assert report.tables["store_sales"]["rows_quarantined"] == 1
    assert report.quarantine_reasons == {rule: 1}
    q = _quarantine(lake)
    assert q.select("table", "file", "row_number", "rule", "column").rows() == [
        ("store_sales", "store_sales/pos.csv", 5, rule, column)
    ]
    assert json.loads(q["raw"][0])["store_id"] == row.split(",")[1]
    _assert_counts_add_up(report)


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("bad.csv.gz", gzip.compress(SALES.encode() * 50)[:-40], "unreadable file"),
        ("latin.csv", (SALES + "2024-08-03,001,A1,1,1.5,,caf\xe9\n").encode("latin-1"), "not UTF-8"),
        ("fake.parquet", b"PAR1 this is not parquet", "unreadable file"),
    ],
)
def test_unreadable_file_stops_the_load_and_names_it(
    tmp_path: Path, name: str, content: bytes, rule: str
) -> None:
    drop = make_drop(tmp_path / "drop")
    write(drop / "store_sales" / name, content)
    lake = LakePaths(tmp_path / "lake")
    with pytest.raises(ContractError) as err:
        _load(drop, lake, batch_rows=1000)
    assert err.value.rule == rule and err.value.file == f"store_sales/{name}"
    assert _lake_files(lake) == []
    assert not any(lake.staging.rglob("*")), "staging must be cleaned up"


def test_parquet_with_uncastable_type_is_an_error(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    table = pa.table(
        {"date": [20240801], "store_id": ["001"], "sku": ["A1"], "units": [1.0], "revenue": [1.5]}
    )
    pq.write_table(table, drop / "store_sales" / "typed.parquet")
    with pytest.raises(ContractError, match=r"typed.parquet.*column 'date' is Int64"):
        _load(drop, LakePaths(tmp_path / "lake"))


def test_parquet_and_gzip_load_like_csv(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop", sales=None)
    table = pa.table(
        {
            "Date": pa.array([date(2024, 7, 31)]),
            "store_id": ["001"],
            "SKU": ["A1"],
            "units": pa.array([2], pa.int32()),
            "revenue": [3.0],
        }
    )
    write(drop / "store_sales" / "b.csv.gz", gzip.compress(SALES.encode()))
    pq.write_table(table, drop / "store_sales" / "a.parquet")
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    assert [f["rows_loaded"] for f in report.files if f["table"] == "store_sales"] == [1, 4]
    row = scan_fact(lake, "store_sales").filter(pl.col("date") == date(2024, 7, 31)).collect()
    assert row.select("store_id", "units", "_source_file").rows() == [("001", 2.0, "store_sales/a.parquet")]


@pytest.mark.parametrize("content", [b"", HEADER.encode() + b"\n"], ids=["zero-bytes", "header-only"])
def test_empty_fact_file_is_a_warning(tmp_path: Path, content: bytes) -> None:
    drop = make_drop(tmp_path / "drop")
    write(drop / "store_sales" / "empty.csv", content)
    report = _load(drop, LakePaths(tmp_path / "lake"))
    assert {"table": "store_sales", "rule": "no rows", "file": "store_sales/empty.csv"}.items() <= next(
        w for w in report.warnings if w["rule"] == "no rows"
    ).items()
    assert report.tables["store_sales"]["rows_loaded"] == 4


def test_bom_mixed_case_headers_extra_column_odd_file_name(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop", sales=None)
    text = " Date ,STORE_ID,Sku,Units,REVENUE,Cashier\n2024-08-01,00012,A1,1,1.0,x\n"
    write(drop / "store_sales" / "Ventes été 2024 (copie).csv", b"\xef\xbb\xbf" + text.encode())
    stores = "store_id,region,state,postal_code\n00012,GULF,FL,02134\n001,GULF,FL,02134\n"
    write(drop / "stores.csv", stores)
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    rel = "store_sales/Ventes été 2024 (copie).csv"
    assert report.files[-2]["path"] == rel and report.files[-2]["rows_loaded"] == 1
    assert any(w["rule"] == "extra columns" and "Cashier" in w["message"] for w in report.warnings)
    sales = scan_fact(lake, "store_sales").collect()
    assert sales.select("store_id", "_source_file").rows() == [("00012", rel)]  # leading zeros kept
    assert read_reference(lake, "postal_regions")["postal_code"].to_list() == ["02134", "55401"]


def test_customer_ids_need_a_secret(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    plain = settings().model_copy(update={"hmac_secret": None})
    with pytest.raises(ContractError, match="LOCALSHELF_HMAC_SECRET"):
        ingest_drop(drop, LakePaths(tmp_path / "lake"), plain, as_of=AS_OF)


def test_unmapped_postal_codes_warn(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop", postal_regions="postal_code,region\n99999,X\n")
    report = _load(drop, LakePaths(tmp_path / "lake"))
    assert [w["rule"] for w in report.warnings] == ["unmapped ship_postal_code"]
    assert (
        report.tables["online_orders"]["rows_loaded"] == 3
    )  # still loaded: the region is unknown, not the row


def test_load_under_half_the_previous_warns(tmp_path: Path) -> None:
    lake = LakePaths(tmp_path / "lake")
    assert _load(make_drop(tmp_path / "d1"), lake).warnings == []
    small = make_drop(tmp_path / "d2", sales=HEADER + "\n2024-08-01,001,A1,3,4.5,10,no\n")
    report = _load(small, lake)
    assert [w["rule"] for w in report.warnings] == ["load much smaller than the previous one"]


@pytest.mark.parametrize("batch_rows", [2, 1000])
def test_rows_with_the_wrong_number_of_fields_are_quarantined_in_place(
    tmp_path: Path, batch_rows: int
) -> None:
    lines = SALES.splitlines()
    # data rows: 1 good, 2 short, 3 good, 4 long, 5 good, 6 good, 7 short (last line)
    text = "\n".join(
        [lines[0], lines[1], "2024-08-01,001", lines[2], lines[3] + ",x,y", lines[4]]
        + ["2024-08-05,002,B2,1,2.0,5,no", "2024-08-06,002"]
    )
    drop = make_drop(tmp_path / "drop", sales=text + "\n")
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake, batch_rows=batch_rows)
    sales = report.tables["store_sales"]
    assert (sales["rows_read"], sales["rows_loaded"], sales["rows_quarantined"]) == (7, 4, 3)
    assert report.quarantine_reasons == {"wrong number of fields": 3}
    q = _quarantine(lake)
    assert q["row_number"].to_list() == [2, 4, 7]
    assert json.loads(q["raw"][1]) == {"expected_fields": 7, "fields": 9, "line": lines[3] + ",x,y"}
    # the good rows keep their own row numbers
    loaded = scan_fact(lake, "store_sales").collect().sort("_source_row")
    assert loaded["_source_row"].to_list() == [1, 3, 5, 6]
    _assert_counts_add_up(report)


def test_a_malformed_order_line_does_not_show_the_customer(tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop")
    with (drop / "online_orders" / "web.csv").open("a") as fh:
        fh.write("o9,1,2024-08-29T10:00:00+00:00,A1,1,1.5,02134,CUST-SECRET-9,ship\n")  # 9 of 10 fields
    lake = LakePaths(tmp_path / "lake")
    report = _load(drop, lake)
    assert report.quarantine_reasons == {"wrong number of fields": 1}
    raw = _quarantine(lake)["raw"][0]
    assert "CUST-SECRET" not in raw and json.loads(raw)["fields"] == 9
