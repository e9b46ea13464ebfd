"""Lake and output locations as URLs, on the local filesystem and on fsspec's in-memory one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import fsspec
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.lake.fs import filesystem, join, publish, read_parquet, scan_table, write_parquet, write_text

SALES = pl.DataFrame(
    {
        "date": [date(2024, 1, 3), date(2024, 2, 5), date(2024, 2, 6)],
        "store_id": ["0001", "0001", "0002"],
        "units": [1.0, 2.0, 3.0],
    }
)


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "local":
        yield str(tmp_path / "lake")
    else:
        url = f"memory://lake-{uuid.uuid4().hex}"
        yield url
        fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def test_a_parquet_file_round_trips_and_leaves_no_temporary(root: str) -> None:
    url = join(root, "table=stores", "part-0.parquet")
    write_parquet(SALES, url)
    write_parquet(SALES.head(2), url)  # replaced whole
    assert_frame_equal(read_parquet(url), SALES.head(2))
    fs, path = filesystem(join(root, "table=stores"))
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)] == ["part-0.parquet"]


def test_a_hive_partitioned_table_scans_with_its_partition_keys(root: str) -> None:
    for month in (1, 2):
        part = SALES.filter(pl.col("date").dt.month() == month)
        write_parquet(part, join(root, "table=store_sales", "year=2024", f"month={month}", "part-0.parquet"))
    write_text(join(root, "table=store_sales", "_state", "journal.json"), "{}")  # ignored
    got = scan_table(join(root, "table=store_sales")).sort("date").collect()
    assert_frame_equal(got.select(SALES.columns), SALES)
    assert got.get_column("month").to_list() == [1, 2, 2]


def test_outputs_written_locally_publish_whole_to_a_url(tmp_path: Path, root: str) -> None:
    out = tmp_path / "out"
    (out / "charts").mkdir(parents=True)
    SALES.write_parquet(out / "forecast.parquet")
    (out / "charts" / "a.svg").write_text("<svg/>")
    dest = join(root, "outputs")
    assert publish(out, dest) == ["charts/a.svg", "forecast.parquet"]
    assert_frame_equal(read_parquet(join(dest, "forecast.parquet")), SALES)
    fs, path = filesystem(join(dest, "charts", "a.svg"))
    assert fs.cat_file(path) == b"<svg/>"


def test_a_plain_path_is_the_local_filesystem(tmp_path: Path) -> None:
    fs, path = filesystem(tmp_path)
    assert "file" in fs.protocol
    assert path.rstrip("/") == str(tmp_path)
