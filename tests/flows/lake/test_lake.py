from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.lake.outputs import OutPaths
from flows.lake.paths import LakePaths


def test_paths_are_absolute_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lake, out = LakePaths(Path("demo/lake")), OutPaths(Path("demo/out"))
    assert lake.root == tmp_path / "demo" / "lake"
    assert lake.docs.is_absolute() and out.report == tmp_path / "demo" / "out" / "report.html"
    assert lake.partition("store_sales", 2024, 8) == lake.root / "table=store_sales" / "year=2024" / "month=8"


def test_the_lake_reads_without_localshelf(tmp_path: Path) -> None:
    """Any Parquet tool reads the lake as Hive-partitioned tables: pyarrow datasets and DuckDB."""
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds

    from flows.lake.ingest import ingest_drop
    from tests.flows.lake.ingest_drops import make_drop, settings

    lake = LakePaths(tmp_path / "lake")
    report = ingest_drop(make_drop(tmp_path / "drop"), lake, settings(), as_of=date(2024, 12, 31))
    sales = ds.dataset(lake.table("store_sales"), format="parquet", partitioning="hive").to_table()
    assert sales.num_rows == report.tables["store_sales"]["rows_loaded"] == 4
    assert sorted(set(zip(sales["year"].to_pylist(), sales["month"].to_pylist(), strict=True))) == [
        (2024, 8),
        (2024, 9),
    ]
    assert pa.types.is_large_string(sales.schema.field("store_id").type)  # ids stay text
    assert sorted(set(sales["store_id"].to_pylist())) == ["001", "002"]  # leading zeros kept
    glob = str(lake.root / "table=online_orders" / "**" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT year, month, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL"
    ).fetchall()
    assert rows == [(2024, 8, 3)]
    stores = duckdb.sql(f"SELECT store_id FROM '{lake.table('stores') / 'part-0.parquet'}' ORDER BY 1")
    assert stores.fetchall() == [("001",), ("002",)]
