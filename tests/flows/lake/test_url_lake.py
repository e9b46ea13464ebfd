"""A lake at a URL (fsspec's in-memory filesystem standing in for S3/GCS) and on a local disk: the same
load guarantees, and readers that see only what a load committed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import fsspec
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.lake import remote
from flows.lake.commit import CRASH_ENV
from flows.lake.fs import CACHE_ENV, REF, committed_files, filesystem, publish
from flows.lake.ingest import IngestReport, ingest_drop
from flows.lake.outputs import OutPaths
from flows.lake.paths import LakePaths, load_tables
from flows.lake.remote import LakeChangedError, local_lake, publish_outputs
from flows.runtime import writer_limit_name
from tests.flows.lake import disk_store
from tests.flows.lake.ingest_drops import SALES, make_drop, settings

AS_OF = date(2024, 12, 31)
CHANGED = SALES.replace("2024-08-01,001,B2,1,2.0,5,yes", "2024-08-01,001,B2,2,4.0,5,yes")
MEMORY = fsspec.filesystem("memory")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://lake-{uuid.uuid4().hex}"
    yield url
    path = url.removeprefix("memory://")
    if MEMORY.exists(path):
        MEMORY.rm(path, recursive=True)


@pytest.fixture(params=["local", "memory"])
def location(request: pytest.FixtureRequest, tmp_path: Path, memory_url: str) -> str:
    return str(tmp_path / "lake") if request.param == "local" else memory_url


def _load(drop: Path, lake: LakePaths) -> IngestReport:
    with local_lake(lake) as target:
        return ingest_drop(drop, target, settings(), as_of=AS_OF)


def _tables(lake: LakePaths) -> dict[str, pl.DataFrame]:
    tables = load_tables(lake)
    sales = tables.store_sales.collect().drop("_loaded_at").sort("date", "store_id", "sku")
    orders = tables.online_orders.collect().drop("_loaded_at").sort("order_id", "line_number")
    return {"stores": tables.stores, "products": tables.products, "sales": sales, "orders": orders}


def _same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert_frame_equal(a[name], b[name])


def _objects(url: str, *, state: bool = True) -> dict[str, bytes]:
    """Every object of the URL lake (with ``state=False``, the tables' only: no ref, manifest, history)."""
    fs, root = filesystem(url)
    return {p: fs.cat_file(p) for p in fs.find(root) if state or "/_state/" not in p}


def test_a_load_is_read_back_and_a_reload_adds_nothing(tmp_path: Path, location: str) -> None:
    drop, lake = make_drop(tmp_path / "drop"), LakePaths(location)
    assert (lake.url is not None) == location.startswith("memory://")
    first = _load(drop, lake)
    assert (
        first.tables["store_sales"]["rows_loaded"] == 4 and first.tables["online_orders"]["rows_loaded"] == 3
    )
    loaded = _tables(lake)
    assert loaded["sales"].height == 4 and loaded["orders"].height == 3 and loaded["stores"].height == 2
    assert loaded["stores"]["store_id"].to_list() == ["001", "002"]  # identifiers keep their zeros
    before = _objects(location, state=False) if lake.url else None
    second = _load(drop, lake)
    for name in ("store_sales", "online_orders"):
        counts = second.tables[name]
        assert counts["rows_loaded"] == 0 and counts["rows_duplicate"] == counts["rows_read"] > 0
    _same(_tables(lake), loaded)
    if lake.url:
        assert _objects(location, state=False) == before  # not a table object added or rewritten


def test_a_correction_replaces_the_row_and_the_url_lake_keeps_no_stale_object(
    tmp_path: Path, location: str
) -> None:
    lake = LakePaths(location)
    _load(make_drop(tmp_path / "a"), lake)
    report = _load(make_drop(tmp_path / "b", sales=CHANGED), lake)
    assert report.tables["store_sales"]["rows_corrected"] == 1
    sales = _tables(lake)["sales"]
    assert sales.filter(pl.col("sku") == "B2")["units"].to_list() == [2.0]
    if lake.url:
        _, files = committed_files(location)
        fs, root = filesystem(location)
        parquet = {p[len(root) + 1 :] for p in fs.find(root) if p.endswith(".parquet")}
        assert parquet == {o for o in files.values() if o.endswith(".parquet")}  # the rewritten one is gone


def test_a_failed_upload_leaves_the_url_lake_as_it_was(
    tmp_path: Path, memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LakePaths(memory_url)
    _load(make_drop(tmp_path / "a"), lake)
    before, ref = _tables(lake), committed_files(memory_url)[0]
    real_upload, uploaded = remote._upload, []

    def dies_after_one(url: str, local: Path, obj: str) -> None:
        if len(uploaded) == 1:
            raise OSError("connection reset (simulated)")
        uploaded.append(obj)
        real_upload(url, local, obj)

    monkeypatch.setattr(remote, "_upload", dies_after_one)
    changed = make_drop(tmp_path / "b", sales=CHANGED)
    with pytest.raises(OSError, match="simulated"):
        _load(changed, lake)
    assert len(uploaded) == 1  # an object reached the store, but the ref was never switched
    assert committed_files(memory_url)[0] == ref
    _same(_tables(lake), before)
    # the next load drops the unpublished one from the local copy, counts from the lake as committed,
    # and removes the orphaned uploads
    monkeypatch.setattr(remote, "_upload", real_upload)
    again = _load(changed, lake)
    assert again.tables["store_sales"]["rows_corrected"] == 1
    assert _tables(lake)["sales"].filter(pl.col("sku") == "B2")["units"].to_list() == [2.0]
    _, files = committed_files(memory_url)
    fs, root = filesystem(memory_url)
    assert not [o for o in uploaded if o not in files.values() and fs.exists(f"{root}/{o}")]


ROOT = Path(__file__).resolve().parents[3]
KILLED_LOAD = """
import sys
from datetime import date
from pathlib import Path
from flows.lake.ingest import ingest_drop
from flows.lake.paths import LakePaths
from flows.lake.remote import local_lake
from tests.flows.lake import disk_store
from tests.flows.lake.ingest_drops import settings
disk_store.register()
with local_lake(LakePaths(sys.argv[2])) as target:
    ingest_drop(Path(sys.argv[1]), target, settings(), as_of=date(2024, 12, 31))
"""


@pytest.mark.parametrize(
    ("point", "committed"),
    [("url_mid_upload", False), ("url_before_ref", False), ("url_after_ref", True)],
)
def test_a_load_killed_while_publishing_leaves_the_lake_as_it_was_or_as_committed(
    tmp_path: Path, point: str, committed: bool
) -> None:
    disk_store.register()
    url = f"testdisk://{tmp_path}/store/lake"
    lake = LakePaths(url)
    _load(make_drop(tmp_path / "a"), lake)
    before = _tables(lake)
    changed = make_drop(tmp_path / "b", sales=CHANGED)
    env = {**os.environ, CRASH_ENV: point, CACHE_ENV: os.environ[CACHE_ENV], "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", KILLED_LOAD, str(changed), url], env=env, cwd=ROOT)
    assert done.returncode == 137  # killed at that point
    b2 = _tables(lake)["sales"].filter(pl.col("sku") == "B2")["units"].to_list()
    if committed:  # the ref had switched: the load is in
        assert b2 == [2.0]
    else:
        _same(_tables(lake), before)
    again = _load(changed, lake)  # the same machine's copy holds the killed load: it is dropped first
    assert again.tables["store_sales"]["rows_corrected"] == (0 if committed else 1)
    assert _tables(lake)["sales"].filter(pl.col("sku") == "B2")["units"].to_list() == [2.0]
    _, files = committed_files(url)
    fs, root = filesystem(url)
    stray = [p for p in fs.find(root) if p.endswith(".parquet") and p[len(root) + 1 :] not in files.values()]
    assert stray == []


def test_a_load_in_error_publishes_nothing(tmp_path: Path, memory_url: str) -> None:
    lake = LakePaths(memory_url)
    _load(make_drop(tmp_path / "a"), lake)
    before = _objects(memory_url)
    with pytest.raises(RuntimeError, match="stop"), local_lake(lake) as target:
        ingest_drop(make_drop(tmp_path / "b", sales=CHANGED), target, settings(), as_of=AS_OF)
        raise RuntimeError("stop")  # after the local commit, before the upload
    assert _objects(memory_url) == before


def test_a_load_refuses_to_commit_over_another_that_committed_meanwhile(
    tmp_path: Path, memory_url: str
) -> None:
    lake = LakePaths(memory_url)
    _load(make_drop(tmp_path / "a"), lake)
    with pytest.raises(LakeChangedError), local_lake(lake) as target:
        ingest_drop(make_drop(tmp_path / "b", sales=CHANGED), target, settings(), as_of=AS_OF)
        fs, root = filesystem(memory_url)  # another writer switches the ref in between
        ref = json.loads(fs.cat_file(f"{root}/{REF}"))
        fs.pipe_file(f"{root}/{REF}", json.dumps({**ref, "load_id": "other"}).encode())
        fs.pipe_file(f"{root}/{ref['manifest']}.other", fs.cat_file(f"{root}/{ref['manifest']}"))
        fs.pipe_file(f"{root}/{REF}", json.dumps({**ref, "manifest": ref["manifest"] + ".other"}).encode())
    assert _tables(lake)["sales"].filter(pl.col("sku") == "B2")["units"].to_list() == [1.0]


def test_another_machine_copies_the_lake_down_and_loads_the_same_drop_as_duplicates(
    tmp_path: Path, memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = make_drop(tmp_path / "drop")
    _load(drop, LakePaths(memory_url))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "other-machine"))
    other = LakePaths(memory_url)
    assert other.root.is_relative_to(tmp_path / "other-machine")
    report = _load(drop, other)
    assert (
        report.tables["store_sales"]["rows_loaded"] == 0
        and report.tables["store_sales"]["rows_duplicate"] == 4
    )


def test_a_lake_copied_to_the_store_by_hand_is_read_and_loaded_into(tmp_path: Path, memory_url: str) -> None:
    local = LakePaths(tmp_path / "lake")
    drop = make_drop(tmp_path / "drop")
    _load(drop, local)
    publish(local.root, memory_url)  # no ref: the table files found there are the lake
    _same(_tables(LakePaths(memory_url)), _tables(local))
    report = _load(drop, LakePaths(memory_url))
    assert report.tables["store_sales"]["rows_duplicate"] == 4
    assert committed_files(memory_url)[0] is not None  # now it has a ref


def test_file_urls_and_plain_paths_are_local_lakes(tmp_path: Path) -> None:
    assert (
        LakePaths(f"file://{tmp_path}/lake")
        == LakePaths(tmp_path / "lake")
        == LakePaths(str(tmp_path / "lake"))
    )
    assert LakePaths(tmp_path / "lake").url is None
    assert LakePaths("memory://x/").location == "memory://x"


def test_writer_slots_are_named_after_the_url() -> None:
    assert writer_limit_name("lake", "s3://bucket/shelf/lake/") == "localshelf-lake:s3:bucket:shelf:lake"
    assert writer_limit_name("out", "memory://out") == "localshelf-out:memory:out"
    assert writer_limit_name("lake", "memory://a&b") != writer_limit_name("lake", "memory://a")


def test_url_outputs_are_written_locally_and_copied_with_run_json_last(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = OutPaths(memory_url)
    assert out.url == memory_url and not str(out.root).startswith("memory")
    out.root.mkdir(parents=True)
    (out.root / "run.json").write_text("{}")
    (out.root / "report.html").write_text("<html/>")
    (out.work / "x").mkdir(parents=True)
    (out.work / "x" / "tmp.parquet").write_bytes(b"intermediate")
    order: list[str] = []
    real = remote._upload
    monkeypatch.setattr(remote, "_upload", lambda url, local, obj: (order.append(obj), real(url, local, obj)))
    assert publish_outputs(out) == ["report.html", "run.json"]
    assert order == ["report.html", "run.json"]
    assert out.at(out.report) == f"{memory_url}/report.html"
    fs, root = filesystem(memory_url)
    assert fs.cat_file(f"{root}/report.html") == b"<html/>" and not fs.exists(f"{root}/_work")
