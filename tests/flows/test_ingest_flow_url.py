"""The `localshelf-ingest` flow with its drop and lake at URLs (fsspec's in-memory filesystem)."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from flows.lake.fs import CACHE_ENV, committed_files, filesystem, publish
from tests.flows.lake.ingest_drops import SECRET, make_drop


def test_the_nightly_ingest_reads_a_url_drop_into_a_url_lake_twice_without_adding_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from flows.ingest_flow import localshelf_ingest
    from flows.lake.paths import LakePaths, load_tables

    monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", SECRET)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    tag = uuid.uuid4().hex
    drop, lake = f"memory://drop-{tag}", f"memory://lake-{tag}"
    try:
        publish(make_drop(tmp_path / "drop"), drop)
        first = localshelf_ingest(drop=drop, lake=lake, as_of="2024-09-30")
        assert first["validation"] is True and first["tables"]["store_sales"]["rows_loaded"] == 4
        fs, root = filesystem(lake)
        assert fs.exists(f"{root}/_docs/index.html")  # the Data Docs go to the lake's URL too
        manifest, files = committed_files(lake)
        assert manifest is not None and "table=stores/part-0.parquet" in files
        again = localshelf_ingest(drop=drop, lake=lake, as_of="2024-09-30")
        assert again["tables"]["store_sales"]["rows_loaded"] == 0
        assert again["tables"]["store_sales"]["rows_duplicate"] == 4
        assert load_tables(LakePaths(lake)).store_sales.collect().height == 4
    finally:
        memory = fsspec.filesystem("memory")
        for url in (drop, lake):
            if memory.exists(url.removeprefix("memory://")):
                memory.rm(url.removeprefix("memory://"), recursive=True)
